"""`visionbench profile MODEL` (measured compute breakdown), `report RUN_DIR` and `compare RUN_A RUN_B`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from visionbench.cli import app, common
from visionbench.cli.common import command, console, err_console, print_json
from visionbench.errors import UnsupportedOptionError

RunDirArg = Annotated[Path, typer.Argument(help="A run folder written by `visionbench bench` or `visionbench run`.")]


@command(app, "profile")
def profile_cmd(
    model: common.ModelArg,
    input_size: common.InputSizeOpt = None,
    device: common.DeviceOpt = "auto",
    dtype: common.DtypeOpt = "float32",
    weights: common.WeightsOpt = "auto",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per forward (copies of bus.jpg).")] = 1,
    runs: Annotated[int, typer.Option("--runs", help="Timed runs; each times a plain and a hooked forward.")] = 5,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed runs before timing.")] = 1,
    seed: common.SeedOpt = 0,
    as_json: common.JsonOpt = False,
) -> None:
    """Measure where one forward's time, FLOPs and parameters go, component by component.

    Each component's root modules get pre/post forward hooks that synchronise the device; time outside
    every component is 'other (glue)', so the rows add up to the measured total. The plain forward's time is the
    median over --runs; the breakdown is averaged over the middle half of the runs (see docs/report.md).
    """
    from visionbench.measure.profile import profile

    if runs < 1 or warmup < 0 or batch_size < 1:
        raise UnsupportedOptionError("--runs and --batch-size must be at least 1, --warmup at least 0")
    with Progress(
        TextColumn(f"profiling {model}"), BarColumn(), TextColumn("{task.completed}/{task.total} runs"),
        TimeRemainingColumn(), console=err_console, transient=True, disable=as_json,
    ) as bar:  # fmt: skip
        task = bar.add_task("profile", total=runs + warmup)
        result = profile(
            model, input_size=input_size, device=device, dtype=dtype, weights=weights, batch_size=batch_size,
            runs=runs, warmup=warmup, seed=seed, progress=lambda done, _total: bar.update(task, completed=done),
        )  # fmt: skip
    if as_json:
        print_json(result.model_dump())
        return
    from visionbench.report import profile_table, rich_table

    title = (
        f"profile {result.model} ({result.device}, {result.dtype}, input {result.input_size} px, "
        f"batch {result.batch_size}, {result.weights_mode} weights)"
    )
    console.print(rich_table(profile_table(result), title=title))
    console.print(
        f"plain forward (no hooks): median {result.forward_ms:,.2f} ms over {result.runs} runs; "
        f"hooks cost {result.hook_overhead:+.1%}; breakdown averaged over the middle {len(result.used_runs)} runs "
        f"(noise: IQR {result.noise:.1%} of the median).",
        highlight=False,
        markup=False,
    )
    console.print(f"method: {result.method}", style="dim", markup=False)
    if result.noise > 0.10:
        console.print("[yellow]timings are noisy (IQR above 10 % of the median): a busy machine; try more --runs.[/]")


@command(app, "report")
def report_cmd(
    run_dir: RunDirArg,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for report.md/html (default: the run folder).")
    ] = None,
    as_json: common.JsonOpt = False,
) -> None:
    """Write report.md (GitHub Markdown, figures in report_files/) and a self-contained report.html for a run.

    Reads only the run folder's files: run.json, each model's component profile and dissection (layers.json
    and its pictures). The HTML embeds every picture and needs no server and no network.
    """
    from visionbench.report import build_report

    files = build_report(run_dir, out)  # checks RUN_DIR, then --out, before reading or drawing anything
    if as_json:
        print_json(
            {"markdown": str(files.markdown), "html": str(files.html), "figures": [str(p) for p in files.figures]}
        )
        return
    console.print(f"report written: {files.markdown}\n               {files.html} ({len(files.figures)} figures)",
                  markup=False, highlight=False)  # fmt: skip


@command(app, "compare")
def compare_cmd(
    run_a: Annotated[Path, typer.Argument(help="The earlier (reference) run folder.")],
    run_b: Annotated[Path, typer.Argument(help="The later run folder, compared against RUN_A.")],
    out: Annotated[Path | None, typer.Option("--out", help="Folder for compare.md/json (default: RUN_B).")] = None,
    as_json: common.JsonOpt = False,
) -> None:
    """Per-model change in median latency and peak memory between two runs, flagged only beyond the runs' noise.

    Latency is flagged when a Mann-Whitney U test on the raw samples gives p < 0.01 AND the medians differ by
    more than 2x the pooled scaled MAD (and by more than 1 %); memory (one reading a run) beyond 5 % and 16 MiB.
    """
    from visionbench.report import compare_folders, comparison_table, rich_table

    comparison, md, js = compare_folders(run_a, run_b, out)  # both runs read and --out checked before any work
    if as_json:
        print_json(comparison.model_dump())
        return
    colour = {"faster": "green", "slower": "red", "more memory": "red", "less memory": "green"}
    console.print(rich_table(comparison_table(comparison), title=f"compare {run_a} -> {run_b}", styles=colour))
    for d in comparison.models:
        if d.weights_differ:
            console.print(Text.assemble(("different weights: ", "yellow"), f"{d.name}: {d.weights_differ}"))
    for diff in comparison.environment_differences:
        console.print(Text.assemble(("differs: ", "yellow"), diff))
    console.print(Text(f"rule: {comparison.rule}\nwritten: {md}, {js}", style="dim"))
