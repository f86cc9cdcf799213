"""The full analysis report of a run folder: report.md (GitHub-flavoured) and a self-contained report.html.

`build_report(run_dir)` reads only the run folder's files (run.json, each model's profile and
layers.json with its pictures), gathers the sections once as blocks, and renders them twice: Markdown
(figures written to `report_files/` beside it) and HTML (figures embedded as data URIs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from visionbench.report import fmt
from visionbench.report.arch import architecture_blocks
from visionbench.report.document import Block, Heading, Note, Table, Text, render_markdown
from visionbench.report.html import render_html
from visionbench.report.runview import RunView, load_run_view
from visionbench.report.sections import (
    baseline_blocks,
    chart_blocks,
    failure_blocks,
    output_blocks,
    suitability_blocks,
    summary_blocks,
    variant_blocks,
)
from visionbench.results import atomic_write_text

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
FILES_DIR = "report_files"


@dataclass
class ReportFiles:
    markdown: Path
    html: Path
    figures: list[Path]


def report_blocks(view: RunView) -> list[Block]:
    """Every section in reading order."""
    return [
        *header_blocks(view),
        *summary_blocks(view),
        *failure_blocks(view),
        *chart_blocks(view),
        *architecture_blocks(view),
        *output_blocks(view),
        *baseline_blocks(view),
        *variant_blocks(view),
        *suitability_blocks(view),
        *method_blocks(view),
    ]


def header_blocks(view: RunView) -> list[Block]:
    """Title, then weights mode and device first: they change what every figure means."""
    run, env = view.run, view.run.environment
    blocks: list[Block] = [Heading(1, f"visionbench report {run.run_id}")]
    modes = {m.name: m.result.weights.mode for m in view.models if m.result.weights}
    random = sorted(n for n, mode in modes.items() if mode == "random")
    if random:
        blocks.append(Note("warning", f"RANDOM weights for {', '.join(random)}: timing, memory, FLOPs and "
                                      "structure are valid; outputs and activation statistics are not those of the "
                                      "trained model."))  # fmt: skip
    elif modes:
        blocks.append(Note("info", "Pretrained weights for every model measured."))
    gpu = f", {env.gpus[0].name}" if env.device.startswith("cuda") and env.gpus else ""
    ok = len(view.ok_models)
    blocks.append(Text(
        f"Device {env.device}{gpu} ({env.cpu_model}, {env.cpu_cores_logical} logical cores, {env.torch_threads} "
        f"torch threads), dtype {run.config.dtype}. Run {run.status}: {ok} of {len(view.models)} models measured; "
        f"started {run.started_at}" + (f", finished {run.finished_at}." if run.finished_at else ".")))  # fmt: skip
    if env.load_average and env.cpu_cores_logical and env.load_average[0] > 0.5 * env.cpu_cores_logical:
        blocks.append(Note("warning", f"The 1-minute load average was {env.load_average[0]:.2f} on "
                                      f"{env.cpu_cores_logical} cores when the run started: other work shared the "
                                      "machine, so latencies are likely inflated."))  # fmt: skip
    if run.config.cuts:
        blocks.append(Note("info", "Shortened run: " + "; ".join(run.config.cuts) + "."))
    for m in view.models:
        for note in m.notes:
            blocks.append(Note("warning", f"{m.name}: {note}"))
    return blocks


def method_blocks(view: RunView) -> list[Block]:
    run = view.run
    rows = fmt.system_rows(run.environment)
    config = [["models", ", ".join(run.config.models)]]
    config += [[k, str(v)] for k, v in run.config.model_dump(exclude={"models", "plans", "cuts"}).items()]
    memory = next((m.primary.memory.method for m in view.ok_models if m.primary and m.primary.memory), None)
    how = [
        "Model latency: one forward on prepared tensors under torch.inference_mode after warmup, device synchronised "
        "in each timed region; end to end adds image decode, preprocessing and postprocessing. Every sample is in "
        "run.json.",
        f"Peak memory: {memory}." if memory else "Peak memory: not measured.",
        "FLOPs: torch.utils.flop_counter, 2 FLOPs per multiply-add.",
        "Component times: forward pre/post hooks on each component's root modules with device synchronisation; "
        "the time outside every component is 'other (glue)', so the rows add up to the hooked forward's total.",
        "Ranks, ratios, cost and suitability: visionbench.report.analysis, the functions behind summary.csv.",
    ]
    return [
        Heading(2, "Method and environment"),
        *[Text(t) for t in how],
        Table(["environment", "value"], rows, align=["left", "left"]),
        Table(["option", "value"], config, align=["left", "left"]),
        *([Text(f"Command: {run.command}")] if run.command else []),
    ]


def build_report(run_dir: str | Path, out_dir: str | Path | None = None) -> ReportFiles:
    """Write report.md (+ report_files/*.png) and report.html for the run in `run_dir` (default: into it)."""
    view = load_run_view(run_dir)
    out = Path(out_dir) if out_dir is not None else view.run_dir
    blocks = report_blocks(view)
    markdown, figures = render_markdown(blocks, FILES_DIR)
    paths = []
    for name, png in figures.items():
        path = out / FILES_DIR / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        paths.append(path)
    atomic_write_text(out / REPORT_MD, markdown)
    footer = (
        f"visionbench report of run {view.run.run_id}, generated only from the files of its run folder "
        f"({view.run_dir.name}: run.json, each model's layers.json and pictures)."
    )
    page = render_html(f"visionbench report {view.run.run_id}", blocks, footer=footer)
    atomic_write_text(out / REPORT_HTML, page)
    return ReportFiles(out / REPORT_MD, out / REPORT_HTML, paths)
