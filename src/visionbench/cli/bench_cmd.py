"""`visionbench bench MODEL...` and `visionbench run` (the seed suite): one set of options, two presets.

Each option fills the `BenchConfig` field of its name (`BENCH_FIELDS`) and its help is that field's
description; `run` is the same command with the suite's models, `RUN_PRESET`'s defaults and `--quick`.
Exit code: 0 when every model was measured, 1 when some failed (their reasons are in the run), 2 for
bad input, 130 on Ctrl-C (finished models stay on disk; `--out RUN_DIR --resume` continues).
"""

from __future__ import annotations

import inspect
import shlex
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from visionbench.bench.suite import SuiteObserver, check_run_folder, resume_suite, run_suite
from visionbench.cli import app
from visionbench.cli.common import JsonOpt, command, console, err_console, print_json
from visionbench.config import SUITE_MODELS, BenchConfig, ModelPlan
from visionbench.errors import UnsupportedOptionError
from visionbench.files import check_output_dir
from visionbench.results import DevicePeak, ModelResult, RunResult

_F = BenchConfig.model_fields
# The BenchConfig fields that are options, in --help's order. Each is `--field-name` of the field's type,
# described by the field, except where these say otherwise (a list typed as text, a --no- switch).
BENCH_FIELDS = ["images", "weights", "device", "dtype", "input_size", "batch_sizes", "compile", "channels_last",
                "fuse", "variants", "preset", "threads", "runs", "warmup", "budget", "max_loop_time",
                "slow_forward_s", "count_warmup_s", "timeout", "e2e", "dissect", "profile", "seed", "baseline",
                "trust_remote_code"]  # fmt: skip
FLAGS = {"images": ("--images", "--image"), "fuse": ("--fuse/--no-fuse",), "e2e": ("--e2e/--no-e2e",),
         "dissect": ("--dissect/--no-dissect",)}  # fmt: skip
CLI_TYPES: dict[str, Any] = {"images": list[str] | None, "batch_sizes": str, "variants": str | None}
HELP_PREFIX = {"batch_sizes": "Comma-separated, e.g. 1,2,4. ", "variants": "Comma-separated. "}
# Options of the command, not of the run it describes.
OUT_HELP = "Folder that receives <YYYYMMDD_HHMMSS>/; with --resume, the run folder to continue."
RESUME_HELP = (
    "Continue the run in --out: its models not finished run again with the run's own options "
    "(MODELS, if given, narrows them). Trust comes only from this command line's --trust-remote-code."
)
# What `run` changes: a per-model timeout, a loop cap so a forward of minutes gets 2 samples, a dissection and a
# component profile after each benchmark (a slow model's profile hooks ride on its counted warmup, so it costs no
# forward: bench/plan.py), and the dtype/layout variants that suit the device (said when not applicable).
RUN_PRESET: dict[str, Any] = {"timeout": 1800.0, "max_loop_time": 240.0, "dissect": True, "profile": True,
                              "variants": "auto"}  # fmt: skip
# --quick keeps DepthPro where one forward is predicted under this (4 minutes: a quick run of the suite
# then stays within about 10 minutes), with a loop cap for every model.
QUICK_MAX_FORWARD_S = 240.0
QUICK_LOOP_CAP_S = 30.0
QUICK_HELP = "A shorter run (fewer repeats, no dissection, the slowest models cut or shrunk); prints what it cuts."
# Options a resumed run takes from this command line; every other one comes from the run folder.
RESUME_OPTIONS = {"out", "resume", "as_json", "trust_remote_code", "models"}


def _param(name: str, default: Any, kind: Any, option: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[kind, option])


def _field_param(name: str, preset: dict[str, Any]) -> inspect.Parameter:
    """The option that fills the BenchConfig field `name`: named after it, described by it."""
    info = _F[name]
    default = preset.get(name, None if info.default_factory is not None else info.default)
    if name == "batch_sizes":
        default = ",".join(str(b) for b in default)
    flags = FLAGS.get(name, ("--" + name.replace("_", "-"),))
    option = typer.Option(*flags, help=HELP_PREFIX.get(name, "") + (info.description or ""))
    return _param(name, default, CLI_TYPES.get(name, info.annotation), option)


def _signature(models_help: str, preset: dict[str, Any], extra: list[inspect.Parameter]) -> inspect.Signature:
    """The Typer signature of a bench-like command: MODELS, then every option once, with the preset's defaults."""
    return inspect.Signature([
        inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context),
        _param("models", None, list[str] | None, typer.Argument(help=models_help)),
        *extra,
        *(_field_param(name, preset) for name in BENCH_FIELDS),
        _param("out", Path("runs"), Path, typer.Option("--out", help=OUT_HELP)),
        _param("resume", False, bool, typer.Option("--resume", help=RESUME_HELP)),
        inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=JsonOpt),
    ])  # fmt: skip


def parse_batch_sizes(text: str) -> list[int]:
    try:
        sizes = [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise UnsupportedOptionError(
            f"--batch-sizes {text!r}: use positive integers separated by commas, e.g. 1,2,4"
        ) from None
    if not sizes or min(sizes) < 1:
        raise UnsupportedOptionError(f"--batch-sizes {text!r}: batch sizes must be at least 1")
    return sizes


def make_config(**fields: Any) -> BenchConfig:
    """A BenchConfig from option values; a bad value is one line naming its option (before any work)."""
    try:
        return BenchConfig(**fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        msg = str(err["msg"]).removeprefix("Value error, ")
        if msg.startswith("--"):
            raise UnsupportedOptionError(msg) from None
        flag = "--" + field.replace("_", "-")
        raise UnsupportedOptionError(f"{flag} {fields.get(field)!r}: {msg.lower()}") from None


def quick_plan(
    models: list[str],
    device: str,
    dtype: str = "float32",
    threads: int | None = None,
    peak: DevicePeak | None = None,
    input_size: int | None = None,
) -> tuple[list[str], dict[str, ModelPlan], list[str]]:
    """What --quick keeps, per-model plans and the cuts in words.

    DepthPro stays where this machine can afford one forward: its forward predicted from the matmul probe
    (`peak`, measured here in a subprocess when not given) and its FLOPs under `QUICK_MAX_FORWARD_S`. A
    forward that long takes the one-forward plan: the counted warmup is its only sample (bench/plan.py).
    """
    from visionbench.bench.eta import predicted_forward_s, probe_peak
    from visionbench.models.registry import resolve_device

    cuts = ["min runs 3 and a 2 s budget per timed loop (instead of 5 and 10 s)", "no dissection"]
    plans: dict[str, ModelPlan] = {}
    keep = list(models)
    dev = resolve_device(device)
    if "depthpro" in keep:
        peak = peak or probe_peak(str(dev), dtype, threads)
        forward = predicted_forward_s("depthpro", peak, dev.type, input_size)
        probe = f"{peak.matmul_flops_per_s / 1e9:,.0f} GFLOP/s matmul probe" if peak else "no probe"
        if forward > QUICK_MAX_FORWARD_S:
            keep.remove("depthpro")
            cuts.append(f"depthpro skipped: one forward predicted at {forward:,.0f} s ({probe}) > "
                        f"{QUICK_MAX_FORWARD_S:g} s (measure it with `visionbench run` or `visionbench bench "
                        "depthpro`)")  # fmt: skip
        elif forward > QUICK_LOOP_CAP_S / 2:
            why = f"--quick: one forward (predicted {forward:,.0f} s, {probe}), its counted warmup the only sample"
            plans["depthpro"] = ModelPlan(runs=1, budget_s=0.0, reason=why)
            cuts.append(f"depthpro: one forward (predicted {forward:,.0f} s), no end-to-end loop of its own, "
                        "no dissection")  # fmt: skip
    for name in ("depth-anything-v2-base", "depth-anything-v2-large"):
        if name in keep:
            plans[name] = ModelPlan(input_size=266, reason="--quick: 266 px instead of 518 px (about 4x less work)")
    shrunk = [n for n in plans if n != "depthpro"]
    if shrunk:
        cuts.append(f"{', '.join(shrunk)} at 266 px instead of 518 px")
    return keep, plans, cuts


def _bench(ctx: typer.Context, models: list[str] | None = None, **opts: Any) -> None:
    """Benchmark MODELS, each in its own process: load time, model and end-to-end latency, memory, FLOPs."""
    _execute(ctx, models or [], opts)


def _run(ctx: typer.Context, models: list[str] | None = None, quick: bool = False, **opts: Any) -> None:
    """The seed suite: DepthPro, Depth Anything V2 S/B/L, YOLO11n detect/seg/pose, MobileSAM; then the reports.

    The same options as `bench`, with the suite's models and defaults for a long unattended run: a
    per-model --timeout, a --max-loop-time so a model whose forward takes minutes still gets 2 samples,
    and --dissect. How long it takes depends on the machine: see docs/benchmarks.md for measured runs.
    """
    names = list(models or SUITE_MODELS)
    if quick and opts["resume"]:
        raise UnsupportedOptionError("--resume continues the run with its own options; --quick cannot change them")
    if quick:
        names, plans, cuts = quick_plan(names, opts["device"], opts["dtype"], opts["threads"],
                                        input_size=opts["input_size"])  # fmt: skip
        opts.update(runs=min(opts["runs"], 3), budget=min(opts["budget"], 2.0), dissect=False, quick=True,
                    max_loop_time=min(opts["max_loop_time"] or QUICK_LOOP_CAP_S, QUICK_LOOP_CAP_S), plans=plans,
                    cuts=cuts)  # fmt: skip
        for c in cuts:
            err_console.print(f"[yellow]--quick:[/] {escape(c)}", highlight=False)
    _execute(ctx, names if not opts["resume"] else list(models or []), opts)


def _execute(ctx: typer.Context, models: list[str], opts: dict[str, Any]) -> None:
    out, resume, as_json = opts.pop("out"), opts.pop("resume"), opts.pop("as_json")
    cmd = "visionbench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if resume:
        given = [n for n in opts if getattr(ctx.get_parameter_source(n), "name", "") == "COMMANDLINE"]
        if changed := [n for n in given if n not in RESUME_OPTIONS]:
            flags = ", ".join("--" + n.replace("_", "-") for n in changed)
            raise UnsupportedOptionError(f"--resume continues the run with its own options; {flags} cannot change "
                                         "them (start a new run instead)")  # fmt: skip
        check_run_folder(out)
    else:
        opts["batch_sizes"] = parse_batch_sizes(opts["batch_sizes"])
        opts["images"] = opts["images"] or []
        config = make_config(models=models, **opts)
        if not models:
            raise UnsupportedOptionError("name at least one model (see `visionbench models`), or --resume a run")
        check_output_dir(out)
    observer = RichObserver()
    start = time.perf_counter()
    try:
        with observer.bar:
            if resume:
                run, run_dir = resume_suite(out, models=models or None,
                                            trust_remote_code=opts["trust_remote_code"], observer=observer,
                                            command=cmd)  # fmt: skip
            else:
                run, run_dir = run_suite(config, out, observer=observer, command=cmd)
    except KeyboardInterrupt:
        if observer.run_dir is not None:
            _final_report(observer.run_dir)
            err_console.print(f"[yellow]interrupted:[/] finished models are in {escape(str(observer.run_dir))}; "
                              f"continue with --out {escape(shlex.quote(str(observer.run_dir)))} --resume",
                              highlight=False)  # fmt: skip
        raise
    _final_report(run_dir)
    wall = time.perf_counter() - start
    if as_json:
        print_json(run.model_dump(mode="json"))
    else:
        console.print(results_table(run))
        console.print(f"run folder: [bold]{escape(str(run_dir))}[/] (report.md, report.html, summary.csv, "
                      f"run.json) in {wall:,.0f} s", highlight=False)  # fmt: skip
    failed = [m for m in run.models if m.status != "ok"]
    if failed:
        for m in failed:
            err_console.print(f"[red]{escape(m.name)}: {m.status}[/]: {escape(m.error or '')}", highlight=False,
                              soft_wrap=True)  # fmt: skip
        raise typer.Exit(1)


_bench.__signature__ = _signature(  # type: ignore[attr-defined]
    "Models to benchmark (see `visionbench models`); with --resume, the run's models to continue.", {}, []
)
_run.__signature__ = _signature(  # type: ignore[attr-defined]
    "Models to run (default: the 8 suite models); with --resume, the run's models to continue.",
    RUN_PRESET,
    [_param("quick", False, bool, typer.Option("--quick", help=QUICK_HELP))],
)
bench = command(app, "bench")(_bench)
run_cmd = command(app, "run")(_run)


def _final_report(run_dir: Path) -> None:
    """The full report; its failure is a warning, since run.json and the per-model files are already written."""
    from visionbench.report import build_report

    try:
        build_report(run_dir)
    except Exception as exc:  # noqa: BLE001
        err_console.print(f"[yellow]warning:[/] report.html could not be built ({escape(str(exc))}); "
                          f"run.json is intact: retry with `visionbench report {escape(str(run_dir))}`",
                          highlight=False)  # fmt: skip


def results_table(run: RunResult) -> Table:
    from visionbench.report import analysis as an
    from visionbench.report import fmt

    ranks = an.speed_ranks(run)
    title = f"visionbench {run.run_id} on {run.environment.device} ({run.config.dtype})"
    t = Table(title=escape(title), header_style="bold")
    for col in ("model", "rank", "weights", "load", "median", "mean ± std", "p90", "FPS", "end to end", "peak MiB",
                "params", "GFLOP", "samples"):  # fmt: skip
        t.add_column(col, justify="left" if col in {"model", "weights"} else "right")
    for m in run.models:
        s, e = an.model_latency(m), an.e2e_latency(m)
        weights = "-" if m.weights is None else ("[yellow]random[/]" if m.weights.mode == "random" else m.weights.mode)
        load = f"{m.load_time_s:.2f} s" if m.load_time_s is not None else "-"
        params = f"{m.params / 1e6:.2f} M" if m.params else "-"
        if m.status != "ok" or s is None:  # what a stopped model measured before it stopped still shows
            t.add_row(escape(m.name), "-", weights, load, f"[red]{m.status}[/]", *["-"] * 5, params,
                      fmt.gflop(m.flops), "-")  # fmt: skip
            continue
        t.add_row(
            escape(m.name), str(ranks.get(m.name) or "-"), weights, load, fmt.ms(s.median_ms),
            fmt.mean_std(s.mean_ms, s.std_ms), fmt.ms(s.p90_ms), f"{s.fps:.2f}", fmt.ms(e.median_ms) if e else "-",
            fmt.mib(an.peak_bytes(m)), params, fmt.gflop(m.flops), str(s.count),
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

    def started(self, run: RunResult, run_dir: Path, todo: list[str], eta_s: float) -> None:
        self.run_dir = run_dir
        done = len(run.config.models) - len(todo)
        self.task = self.bar.add_task("starting", total=len(run.config.models), completed=done, eta=_eta(eta_s))
        where = escape(str(run_dir))
        if done:
            self.bar.console.print(f"resuming {where}: {done} model(s) already finished, {len(todo)} to run")
        self.bar.console.print(f"{len(todo)} model(s) to run into {where}; first estimate {_eta(eta_s)} "
                               "(refined as models finish)", highlight=False)  # fmt: skip

    def model_started(self, name: str, index: int, total: int, eta_s: float) -> None:
        self._update(f"{name}: starting", eta_s)

    def progress(self, name: str, phase: str, eta_s: float) -> None:
        self._update(f"{name}: {phase}", eta_s)

    def model_finished(self, result: ModelResult, eta_s: float) -> None:
        if self.task is not None:
            self.bar.advance(self.task)
        colour = "green" if result.status == "ok" else "red"
        why = f" ({escape(result.error)})" if result.error else ""
        self.bar.console.print(f"[{colour}]{escape(result.name)}: {result.status}[/]{why}", highlight=False)
        self._update("", eta_s)

    def _update(self, text: str, eta_s: float) -> None:
        if self.task is not None:
            self.bar.update(self.task, description=escape(text), eta=_eta(eta_s))


def _eta(seconds: float) -> str:
    hours, rest = divmod(max(0, int(seconds)), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
