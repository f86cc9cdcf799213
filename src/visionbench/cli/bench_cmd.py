"""`visionbench bench MODEL...` and `visionbench run` (the seed suite): thin front ends over bench.suite.

Both write runs/<YYYYMMDD_HHMMSS>/ (run.json, summary.csv, report.md, a folder per model) as each
model finishes, show a progress bar with the model, its phase and the ETA, then a results table.
Exit code: 0 when every model was measured, 1 when some failed (their reasons are in the run), 2 for
bad input, 130 on Ctrl-C (finished models stay on disk; `--resume RUN_DIR` continues).
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from visionbench.bench.suite import SuiteObserver, run_suite
from visionbench.cli import app
from visionbench.cli.common import (
    DeviceOpt,
    DtypeOpt,
    InputSizeOpt,
    JsonOpt,
    SeedOpt,
    TrustOpt,
    WeightsOpt,
    command,
    console,
    err_console,
    print_json,
)
from visionbench.config import SUITE_MODELS, BenchConfig, ModelPlan
from visionbench.errors import UnsupportedOptionError
from visionbench.results import ModelResult, RunResult

_F = BenchConfig.model_fields
ImagesOpt = Annotated[list[str] | None, typer.Option("--images", "--image", help=_F["images"].description)]
CompileOpt = Annotated[bool, typer.Option("--compile", help=_F["compile"].description)]
ChannelsLastOpt = Annotated[bool, typer.Option("--channels-last", help=_F["channels_last"].description)]
BatchOpt = Annotated[
    str, typer.Option("--batch-size", help="Comma-separated batch sizes, e.g. 1,2,4. " + _F["batch_sizes"].description)
]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", help=_F["threads"].description)]
RunsOpt = Annotated[int, typer.Option("--runs", min=1, help=_F["runs"].description)]
BudgetOpt = Annotated[
    float, typer.Option("--budget", min=0, help="Seconds per timed loop: " + _F["budget_s"].description)
]
WarmupOpt = Annotated[int, typer.Option("--warmup", min=1, help=_F["warmup"].description)]
TimeoutOpt = Annotated[
    float | None, typer.Option("--timeout", help="Seconds per model. " + _F["timeout_s"].description)
]
BaselineOpt = Annotated[str, typer.Option("--baseline", help=_F["baseline"].description)]
OutRootOpt = Annotated[Path, typer.Option("--out", help="Folder that receives runs/<YYYYMMDD_HHMMSS>/.")]
ResumeOpt = Annotated[
    Path | None, typer.Option("--resume", help="Continue RUN_DIR: finished models are skipped, its options are reused.")
]
NoE2EOpt = Annotated[bool, typer.Option("--no-e2e", help="Skip the end-to-end loop (model latency only).")]
ModelsOpt = Annotated[
    str | None, typer.Option("--models", help="Comma-separated subset (default: the 8 suite models).")
]
QuickOpt = Annotated[
    bool, typer.Option("--quick", help="Finish in about 5 minutes on a 2-core CPU; prints what it cuts.")
]
ProfileOpt = Annotated[bool, typer.Option("--profile", help=_F["profile"].description)]
CapOpt = Annotated[float | None, typer.Option("--max-loop-time", help=_F["loop_cap_s"].description)]


def parse_batch_sizes(text: str) -> list[int]:
    try:
        sizes = [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise UnsupportedOptionError(
            f"--batch-size {text!r}: use positive integers separated by commas, e.g. 1,2,4"
        ) from None
    if not sizes or min(sizes) < 1:
        raise UnsupportedOptionError(f"--batch-size {text!r}: batch sizes must be at least 1")
    return sizes


def quick_plan(models: list[str], device: str) -> tuple[list[str], dict[str, ModelPlan], list[str]]:
    """What --quick keeps, per-model plans and the cuts in words (the run finishes in ~5 min on 2 CPU cores)."""
    from visionbench.models.registry import resolve_device

    cuts = ["min runs 3 and a 2 s budget per timed loop (instead of 5 and 10 s)", "no dissection"]
    plans: dict[str, ModelPlan] = {}
    keep = list(models)
    if resolve_device(device).type == "cpu" and "depthpro" in keep:
        keep.remove("depthpro")
        cuts.append("depthpro skipped: one full-size fp32 forward takes about 2 minutes on a CPU "
                    "(measure it with `visionbench run` or `visionbench bench depthpro`)")  # fmt: skip
    for name in ("depth-anything-v2-base", "depth-anything-v2-large"):
        if name in keep:
            plans[name] = ModelPlan(input_size=266, reason="--quick: 266 px instead of 518 px (about 4x less work)")
    if plans:
        cuts.append(f"{', '.join(plans)} at 266 px instead of 518 px")
    return keep, plans, cuts


def _config(**kw: object) -> BenchConfig:
    return BenchConfig(**{k: v for k, v in kw.items() if v is not None})  # type: ignore[arg-type]


@command(app, "bench")
def bench(
    models: Annotated[list[str], typer.Argument(help="Models to benchmark (see `visionbench models`).")],
    images: ImagesOpt = None, weights: WeightsOpt = "auto", device: DeviceOpt = "auto", dtype: DtypeOpt = "float32",
    compile: CompileOpt = False, channels_last: ChannelsLastOpt = False, input_size: InputSizeOpt = None,
    batch_size: BatchOpt = "1", threads: ThreadsOpt = None, runs: RunsOpt = 5, budget: BudgetOpt = 10.0,
    warmup: WarmupOpt = 1, timeout: TimeoutOpt = None, seed: SeedOpt = 0, baseline: BaselineOpt = "depthpro",
    out: OutRootOpt = Path("runs"), resume: ResumeOpt = None, no_e2e: NoE2EOpt = False, max_loop_time: CapOpt = None,
    trust_remote_code: TrustOpt = False, profile: ProfileOpt = False, as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Benchmark MODELS, each in its own process: load time, model and end-to-end latency, memory, FLOPs."""
    config = _config(
        models=models, images=images or [], weights=weights, device=device, dtype=dtype, compile=compile,
        channels_last=channels_last, input_size=input_size, batch_sizes=parse_batch_sizes(batch_size), threads=threads,
        runs=runs, budget_s=budget, warmup=warmup, timeout_s=timeout, seed=seed, baseline=baseline,
        e2e=not no_e2e, loop_cap_s=max_loop_time, trust_remote_code=trust_remote_code, profile=profile,
    )  # fmt: skip
    _execute(config, out, resume, as_json)


@command(app, "run")
def run_cmd(
    models: ModelsOpt = None,
    quick: QuickOpt = False,
    no_dissect: Annotated[bool, typer.Option("--no-dissect", help="Skip the per-model layer dissection.")] = False,
    images: ImagesOpt = None, weights: WeightsOpt = "auto", device: DeviceOpt = "auto", dtype: DtypeOpt = "float32",
    compile: CompileOpt = False, channels_last: ChannelsLastOpt = False, input_size: InputSizeOpt = None,
    batch_size: BatchOpt = "1", threads: ThreadsOpt = None, runs: RunsOpt = 5, budget: BudgetOpt = 10.0,
    warmup: WarmupOpt = 1, timeout: TimeoutOpt = 1800.0, seed: SeedOpt = 0, baseline: BaselineOpt = "depthpro",
    out: OutRootOpt = Path("runs"), resume: ResumeOpt = None, no_e2e: NoE2EOpt = False, max_loop_time: CapOpt = 240.0,
    trust_remote_code: TrustOpt = False, profile: ProfileOpt = False, as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """The seed suite: DepthPro, Depth Anything V2 S/B/L, YOLO11n detect/seg/pose, MobileSAM; then the reports.

    On a 2-core CPU the default finishes within 30 minutes: a loop whose calls take minutes (DepthPro fp32,
    about 2 min a forward) stops after 2 samples once another would pass --max-loop-time.
    """
    from visionbench.bench.hooks import dissection_available

    names = [m.strip() for m in models.split(",") if m.strip()] if models else list(SUITE_MODELS)
    plans: dict[str, ModelPlan] = {}
    cuts: list[str] = []
    dissect = not no_dissect
    if quick:
        names, plans, cuts = quick_plan(names, device)
        runs, budget, dissect = min(runs, 3), min(budget, 2.0), False
        max_loop_time = min(max_loop_time or 30.0, 30.0)
        for c in cuts:
            err_console.print(f"[yellow]--quick:[/] {c}", highlight=False)
    if dissect and not dissection_available():
        err_console.print("[yellow]note:[/] layer dissection is not available in this installation; skipped")
        dissect = False
    config = _config(
        models=names, images=images or [], weights=weights, device=device, dtype=dtype, compile=compile,
        channels_last=channels_last, input_size=input_size, batch_sizes=parse_batch_sizes(batch_size), threads=threads,
        runs=runs, budget_s=budget, warmup=warmup, timeout_s=timeout, seed=seed, baseline=baseline, e2e=not no_e2e,
        loop_cap_s=max_loop_time, trust_remote_code=trust_remote_code, dissect=dissect, quick=quick, cuts=cuts,
        plans=plans, profile=profile,
    )  # fmt: skip
    _execute(config, out, resume, as_json)


def _execute(config: BenchConfig, out: Path, resume: Path | None, as_json: bool) -> None:
    cmd = "visionbench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    observer = RichObserver()
    start = time.perf_counter()
    try:
        with observer:
            run, run_dir = run_suite(config, out, resume=resume, observer=observer, command=cmd)
    except KeyboardInterrupt:
        if observer.run_dir is not None:
            _final_report(observer.run_dir)
            err_console.print(f"[yellow]interrupted:[/] finished models are in {observer.run_dir}; "
                              f"continue with --resume {observer.run_dir}")  # fmt: skip
        raise
    _final_report(run_dir)
    wall = time.perf_counter() - start
    if as_json:
        print_json(run.model_dump(mode="json"))
    else:
        console.print(results_table(run))
        console.print(
            f"run folder: [bold]{run_dir}[/] (report.md, report.html, summary.csv, run.json) in {wall:,.0f} s"
        )
    failed = [m for m in run.models if m.status != "ok"]
    if failed:
        for m in failed:
            err_console.print(f"[red]{m.name}: {m.status}[/]: {m.error}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def _final_report(run_dir: Path) -> None:
    """The full report (markdown + self-contained HTML with charts) from the run folder's files.

    A report failure never costs the measurements: run.json and the per-model files are already written.
    """
    from visionbench.report.full import build_report

    try:
        build_report(run_dir)
    except Exception as exc:  # noqa: BLE001
        err_console.print(f"[yellow]warning:[/] report.html could not be built ({exc}); "
                          f"run.json is intact: retry with `visionbench report {run_dir}`")  # fmt: skip


def results_table(run: RunResult) -> Table:
    from visionbench.report import analysis as an
    from visionbench.report.markdown import _bytes, _flop, _ms

    ranks = an.speed_ranks(run)
    t = Table(title=f"visionbench {run.run_id} on {run.environment.device} ({run.config.dtype})", header_style="bold")
    for col in ("model", "rank", "weights", "load", "median", "mean ± std", "p90", "FPS", "end to end", "peak mem",
                "params", "FLOPs", "samples"):  # fmt: skip
        t.add_column(col, justify="left" if col in {"model", "weights"} else "right")
    for m in run.models:
        s, e = an.model_latency(m), an.e2e_latency(m)
        weights = "-" if m.weights is None else ("[yellow]random[/]" if m.weights.mode == "random" else m.weights.mode)
        if m.status != "ok" or s is None:
            t.add_row(m.name, "-", weights, "-", f"[red]{m.status}[/]", *["-"] * 8)
            continue
        t.add_row(
            m.name, str(ranks.get(m.name) or "-"), weights, f"{m.load_time_s:.2f} s", _ms(s.median_ms),
            f"{_ms(s.mean_ms)} ± {_ms(s.std_ms)}", _ms(s.p90_ms), f"{s.fps:.2f}", _ms(e.median_ms) if e else "-",
            _bytes(an.peak_bytes(m)), f"{(m.params or 0) / 1e6:.2f} M", _flop(m.flops), str(s.count),
        )  # fmt: skip
    return t


class RichObserver(SuiteObserver):
    """A progress bar on stderr: one step per model, the current phase, the suite's ETA."""

    def __init__(self) -> None:
        self.bar = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(), TextColumn("ETA {task.fields[eta]}"), console=err_console, transient=False,
        )  # fmt: skip
        self.task = None
        self.run_dir: Path | None = None

    def __enter__(self) -> RichObserver:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)  # type: ignore[arg-type]

    def started(self, run: RunResult, run_dir: Path, todo: list[str], eta_s: float) -> None:
        self.run_dir = run_dir
        done = len(run.config.models) - len(todo)
        self.task = self.bar.add_task("starting", total=len(run.config.models), completed=done, eta=_eta(eta_s))
        if done:
            self.bar.console.print(f"resuming {run_dir}: {done} model(s) already finished, {len(todo)} to run")
        self.bar.console.print(f"{len(todo)} model(s) to run into {run_dir}; first estimate {_eta(eta_s)} "
                               "(refined as models finish)", highlight=False)  # fmt: skip

    def model_started(self, name: str, index: int, total: int, eta_s: float) -> None:
        self._update(f"{name}: starting", eta_s)

    def progress(self, name: str, phase: str, eta_s: float) -> None:
        self._update(f"{name}: {phase}", eta_s)

    def model_finished(self, result: ModelResult, eta_s: float) -> None:
        if self.task is not None:
            self.bar.advance(self.task)
        colour = "green" if result.status == "ok" else "red"
        self.bar.console.print(f"[{colour}]{result.name}: {result.status}[/]"
                                    + (f" ({result.error})" if result.error else ""), highlight=False)  # fmt: skip
        self._update("", eta_s)

    def _update(self, text: str, eta_s: float) -> None:
        if self.task is not None:
            self.bar.update(self.task, description=text, eta=_eta(eta_s))


def _eta(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return (
        f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else f"{seconds // 60}:{seconds % 60:02d}"
    )
