"""`visionbench depth` (depth maps, point clouds, sidecars for images and folders) and `visionbench eval`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from visionbench.cli import app
from visionbench.cli.common import (
    DeviceOpt,
    DtypeOpt,
    InputSizeOpt,
    JsonOpt,
    ModelArg,
    SeedOpt,
    WeightsOpt,
    command,
    console,
    err_console,
    print_json,
)
from visionbench.errors import BadInputError

if TYPE_CHECKING:
    from visionbench.depth.evaluate import EvalOptions, EvalResult
    from visionbench.depth.ray_engine import RayRunSummary

DEPTH_MODEL_HELP = "Depth model: depthpro (metric + focal length) or depth-anything-v2-small/base/large (relative)."


@command(app, "depth")
def depth_cmd(
    inputs: Annotated[
        list[str],  # str, not Path: Path("s3://b/k") collapses the URL to "s3:/b/k"
        typer.Argument(
            help="Images, folders (searched recursively) or .txt files listing image paths; "
            "with --engine ray also s3://, gs://, file:// URLs."
        ),
    ],
    model: Annotated[str, typer.Option("--model", "-m", help=DEPTH_MODEL_HELP)] = "depthpro",
    out: Annotated[
        str,
        typer.Option("--out", "-o", help="Output folder (--engine ray: or a URL); each input's relative path is kept."),
    ] = "depth_out",
    weights: WeightsOpt = "auto",
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "float32",
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", help="Images per forward pass (1 or more).")] = 1,
    input_size: InputSizeOpt = None,
    cmap: Annotated[
        str,
        typer.Option(
            "--cmap",
            help="Matplotlib colour map of the depth picture (inferno, magma, turbo, gray...): near is its top end.",
        ),
    ] = "inferno",
    side_by_side: Annotated[
        bool, typer.Option("--side-by-side", help="Also write photo | depth (NAME.side.png).")
    ] = False,
    raw: Annotated[
        bool, typer.Option("--raw/--no-raw", help="Raw float32 .npy, plus a 16-bit millimetre PNG for metric models.")
    ] = True,
    ply: Annotated[
        bool, typer.Option("--ply", help="Coloured point cloud NAME.ply (metric models; pinhole model).")
    ] = False,
    ply_stride: Annotated[
        int, typer.Option("--ply-stride", help="Keep every n-th row and column in the .ply (1 or more).")
    ] = 1,
    focal_px: Annotated[
        float | None,
        typer.Option(
            "--focal-px",
            help="Known focal length in pixels; beats EXIF and the FOV head (DepthPro makes its depth with it).",
        ),
    ] = None,  # fmt: skip
    ignore_exif: Annotated[
        bool, typer.Option("--ignore-exif", help="Do not use the EXIF 35 mm-equivalent focal length.")
    ] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Skip images whose outputs all exist already.")] = False,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Decoding threads, 1 or more (default min(4, CPUs - 1)).")
    ] = None,
    seed: SeedOpt = 0,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="local (this process) or ray (Ray Data: decoding tasks, model actors; inputs and "
            "--out may be s3://, gs://, file:// URLs). Ray needs: pip install 'visionbench\\[ray]'.",
        ),
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="--engine ray: join this cluster (HOST:PORT, ray://HOST:PORT or auto); "
            "default: start a local Ray on this machine.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Depth maps for images and folders: colourised PNG, raw .npy, 16-bit mm PNG, optional .ply, JSON sidecar.

    Focal length: --focal-px, else EXIF (35 mm equivalent, diagonal convention), else the model's FOV head.
    Failed files are listed in OUT/failures-RUN.txt; the run summary is OUT/depth_run.json. See docs/depth.md.
    """
    from visionbench.depth.options import DepthOptions, checked_options
    from visionbench.depth.run_depth import run_depth

    if engine not in {"local", "ray"}:
        raise BadInputError(f"--engine {engine!r}: expected local or ray")
    if ray_address is not None and engine != "ray":
        raise BadInputError("--ray-address needs --engine ray")
    opts = checked_options(DepthOptions, model=model, weights=weights, device=device, dtype=dtype,
                           input_size=input_size, batch_size=batch_size, out=out, cmap=cmap,
                           side_by_side=side_by_side, raw=raw, ply=ply, ply_stride=ply_stride, focal_px=focal_px,
                           ignore_exif=ignore_exif, resume=resume, workers=workers, seed=seed)  # fmt: skip
    if engine == "ray":
        from visionbench.depth.ray_engine import run_depth_ray

        summary = run_depth_ray(list(inputs), opts, address=ray_address, out=out, show_progress=not as_json)
    else:
        summary = run_depth(list(inputs), opts, show_progress=not as_json)
    if as_json:
        print_json(summary.model_dump())
    else:
        colour = "red" if summary.failures else "green"
        unreadable = f", {summary.unreadable_paths} path(s) unreadable" if summary.unreadable_paths else ""
        console.print(
            f"[{colour}]{summary.done} done[/], {summary.skipped} skipped (resume), {summary.failed} failed "
            f"of {summary.total}{unreadable} in {summary.seconds:.1f} s ({summary.images_per_s:.2f} images/s) "
            f"-> {escape(summary.out)}"
        )
        if engine == "ray":
            console.print(_ray_line(summary))
        if summary.weights_warning:
            err_console.print(f"[yellow]warning:[/] {escape(summary.weights_warning)}")
        if summary.excluded_in_out:
            console.print(f"left out {summary.excluded_in_out} file(s) already inside the output folder")
        for f in summary.failures[:10]:
            err_console.print(f"  [red]failed[/] {escape(f.error)}", highlight=False)
        if summary.failures_file:
            console.print(f"failures listed in {escape(summary.failures_file)}", highlight=False)
    if summary.failures:
        raise typer.Exit(1)


def _ray_line(summary: RayRunSummary) -> str:
    per = ", ".join(f"{k.removeprefix('num_')} {v:g}" for k, v in summary.actor_resources.items())
    res = ", ".join(f"{k} {v:g}" for k, v in summary.cluster_resources.items() if k != "memory")
    where = summary.ray_address or "a local Ray started here"
    start = f"start-up {summary.startup_seconds:.1f} s"
    return f"ray: {summary.actors} model actor(s) ({per} each) on {where} ({res}); {start}"


@command(app, "eval")
def eval_cmd(
    model: ModelArg,
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset",
            "-d",
            help="middlebury-motorcycle (built in, offline) or a folder: images/, "
            "depth/ (NAME.npy in m or 16-bit NAME.png), optional intrinsics.json.",
        ),
    ] = "middlebury-motorcycle",  # fmt: skip
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write eval.json and eval.csv here.")] = None,
    weights: WeightsOpt = "auto",
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "float32",
    input_size: InputSizeOpt = None,
    depth_scale: Annotated[
        float | None, typer.Option("--depth-scale", help="Metres per ground-truth unit (default: npy 1, png 0.001).")
    ] = None,
    min_depth: Annotated[float, typer.Option("--min-depth", help="Ground truth below this (m) is not scored.")] = 1e-3,
    max_depth: Annotated[
        float | None, typer.Option("--max-depth", help="Ground truth above this (m) is not scored.")
    ] = None,
    use_known_focal: Annotated[
        bool,
        typer.Option(
            "--use-known-focal", help="DepthPro: make depth with the dataset's focal length instead of its FOV head's."
        ),
    ] = False,
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """Score a depth model against ground truth: AbsRel, SqRel, RMSE, RMSE log, log10, SILog (two conventions),
    delta1-3, scale-invariant boundary F1, focal-length error. Relative models are aligned first (said in the output).
    """
    from visionbench.depth.evaluate import EvalOptions, write_eval
    from visionbench.depth.options import checked_options
    from visionbench.files import check_output_dir

    opts = checked_options(EvalOptions, model=model, dataset=dataset, weights=weights, device=device, dtype=dtype,
                           input_size=input_size, seed=seed, depth_scale=depth_scale, min_depth=min_depth,
                           max_depth=max_depth, use_known_focal=use_known_focal)  # fmt: skip
    if out is not None:
        check_output_dir(out)  # before the model is built: an unusable --out is one line, not lost scores
    result = _run_eval(opts, show_progress=not as_json)
    if as_json:
        print_json(result.model_dump(mode="json"))
    else:
        _print_eval(result)
    files = write_eval(result, out) if out is not None else {}  # scores are on screen before any write can fail
    if not as_json:
        for kind, path in files.items():
            console.print(f"{kind}: {escape(str(path))}", highlight=False)
    if result.interrupted:  # the scores so far are shown and written; the exit says Ctrl-C (130)
        raise KeyboardInterrupt
    if result.failed:
        raise typer.Exit(1)


def _run_eval(opts: EvalOptions, show_progress: bool) -> EvalResult:
    from visionbench.depth.datasets import load_dataset
    from visionbench.depth.evaluate import evaluate
    from visionbench.depth.progress import rate_bar

    total = len(load_dataset(opts.dataset, opts.depth_scale)) if show_progress else None
    with rate_bar(show_progress, total, "eval") as advance:
        return evaluate(opts, progress=advance)


COLUMNS = [("abs_rel", "AbsRel", ".4f"), ("sq_rel", "SqRel", ".4f"), ("rmse", "RMSE m", ".3f"),
           ("rmse_log", "RMSE log", ".4f"), ("log10", "log10", ".4f"), ("silog_eigen", "SILog(0.5)", ".4f"),
           ("silog_kitti", "SILog x100", ".2f"), ("delta1", "δ1", ".3f"), ("delta2", "δ2", ".3f"),
           ("delta3", "δ3", ".3f"), ("boundary_f1", "bF1", ".3f"),
           ("focal_error_pct", "focal err %", ".1f")]  # fmt: skip


def _print_eval(r: EvalResult) -> None:
    title = escape(f"eval {r.model} on {r.dataset} ({r.weights_mode} weights)")
    table = Table(title=title, header_style="bold", caption=f"alignment: {r.alignment}")
    table.add_column("image")
    for _, label, _ in COLUMNS:
        table.add_column(label, justify="right")
    for row in r.rows:
        if row.error:
            table.add_row(escape(row.name), f"[red]{escape(row.error)}[/]", *[""] * (len(COLUMNS) - 1))
            continue
        table.add_row(escape(row.name), *[_fmt(getattr(row, k), f) for k, _, f in COLUMNS])
    table.add_row("[bold]mean[/]", *[_fmt(r.summary.get(k), f) for k, _, f in COLUMNS], end_section=True)
    console.print(table)
    if r.weights_warning:
        err_console.print(f"[yellow]warning:[/] {escape(r.weights_warning)}")
    if r.interrupted:
        err_console.print(f"[yellow]interrupted:[/] {r.images} image(s) scored, {r.not_attempted} not reached")
    if r.skipped_without_gt:
        console.print(f"{len(r.skipped_without_gt)} image(s) without ground truth left out")


def _fmt(v: float | None, f: str) -> str:
    return "-" if v is None else format(v, f)
