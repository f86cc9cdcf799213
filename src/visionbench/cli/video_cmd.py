"""`visionbench video`: depth for every frame of a video, a depth video, and the temporal metrics."""

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
    SeedOpt,
    WeightsOpt,
    command,
    console,
    err_console,
    print_json,
)
from visionbench.cli.depth_cmd import DEPTH_MODEL_HELP

if TYPE_CHECKING:
    from visionbench.video.options import VideoSummary


@command(app, "video")
def video_cmd(
    input_path: Annotated[
        Path | None,
        typer.Argument(help="A video file (mp4, mov, mkv, webm...) or a folder of frames (natural order)."),
    ] = None,
    model: Annotated[str, typer.Option("--model", "-m", help=DEPTH_MODEL_HELP)] = "depthpro",
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (not inside a folder of frames).")] = Path(
        "video_out"
    ),
    sample: Annotated[
        bool,
        typer.Option("--sample", help="Run on the built-in middlebury-orbit sequence (exact depth, poses, K)."),
    ] = False,
    sample_frames: Annotated[int, typer.Option("--sample-frames", min=2, help="Frames of the built-in sequence.")] = 10,
    ground_truth: Annotated[
        Path | None,
        typer.Option("--ground-truth", help="Folder: depth/ (k-th file = k-th frame), poses.npy, intrinsics.json."),
    ] = None,
    weights: WeightsOpt = "auto",
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "float32",
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Frames per forward pass.")] = 1,
    input_size: InputSizeOpt = None,
    cmap: Annotated[
        str, typer.Option("--cmap", help="Matplotlib colour map of the depth video: near is its top end.")
    ] = "inferno",
    side_by_side: Annotated[
        bool, typer.Option("--side-by-side", help="Also write photo | depth as side_by_side.mp4.")
    ] = False,
    focal_px: Annotated[
        float | None,
        typer.Option(
            "--focal-px",
            min=0.0,
            help="Known focal length in pixels; beats the FOV head (DepthPro makes its depth with it).",
        ),
    ] = None,  # fmt: skip
    resume: Annotated[
        bool, typer.Option("--resume", help="Reuse frames whose files are complete; the model runs on the rest.")
    ] = False,
    every: Annotated[int, typer.Option("--every", min=1, help="Keep every N-th frame.")] = 1,
    start: Annotated[float, typer.Option("--start", min=0.0, help="First timestamp to process, seconds.")] = 0.0,
    end: Annotated[float | None, typer.Option("--end", help="Stop before this timestamp, seconds.")] = None,
    fps: Annotated[float, typer.Option("--fps", help="Frame rate of a folder of frames.")] = 30.0,
    flow: Annotated[str, typer.Option("--flow", help="Optical flow of the flicker metric: dis or farneback.")] = "dis",
    flicker: Annotated[
        bool, typer.Option("--flicker/--no-flicker", help="Flicker metric (OPW); --no-flicker skips the optical flow.")
    ] = True,
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """Depth for every frame of a video or frame folder, a depth video and temporal metrics (drift, flicker, TAE).

    Writes per-frame npy, 16-bit mm PNG and sidecars, depth.mp4 at the source's timestamps and video.json with
    per-frame statistics, scale drift and flicker (OPW); with ground truth also TAE and video-level AbsRel/delta1.
    See docs/video.md.
    """
    from visionbench.depth.options import checked_options
    from visionbench.errors import BadInputError
    from visionbench.video.options import VideoOptions, check_options
    from visionbench.video.run_video import run_video

    if sample == (input_path is not None):
        raise BadInputError("give a video or folder of frames, or --sample (not both)")
    opts = checked_options(VideoOptions, model=model, weights=weights, device=device, dtype=dtype,
                           input_size=input_size, batch_size=batch_size, out=out, cmap=cmap, side_by_side=side_by_side,
                           focal_px=focal_px, resume=resume, every=every, start_s=start, end_s=end, fps=fps,
                           ground_truth=ground_truth, flow=flow, flicker=flicker, seed=seed)  # fmt: skip
    check_options(opts)  # before the sample is rendered (--fps, --end after --start, --flow, --cmap)
    if sample:
        from visionbench.files import check_output_dir
        from visionbench.video.sample import make_sample

        folder = make_sample(check_output_dir(out) / "sample", frames=sample_frames)
        input_path = folder / "frames"
        opts.ground_truth = ground_truth or folder
    assert input_path is not None
    summary = run_video(input_path, opts, show_progress=not as_json)
    if as_json:
        print_json(summary.model_dump(mode="json"))
    else:
        _print(summary)


def _print(s: VideoSummary) -> None:
    m = s.metrics
    table = Table(title=f"video {escape(s.model)} ({s.weights_mode} weights, {s.depth_kind})", header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    drift, flick = m.get("scale_drift", {}), m.get("flicker_opw") or {}
    rows = [("frames (resumed)", f"{s.frames} ({s.frames_resumed})"), ("frames/s", f"{s.frames_per_s:.2f}"),
            ("scale drift: ratio std", _f(drift.get("ratio_std"), ".4f")),
            ("scale drift: max |ratio - 1| %", _f(drift.get("ratio_max_dev_pct"), ".2f")),
            ("scale drift: median std m", _f(drift.get("median_std_m"), ".3f")),
            ("focal spread %", _f(drift.get("focal_spread_pct"), ".2f")),
            ("flicker OPW (mean)", _f(flick.get("mean"), ".4f"))]  # fmt: skip
    g = m.get("ground_truth")
    if g:
        video, per = g.get("video_level", {}), g.get("per_frame_mean", {})
        rows += [("TAE", _f(g.get("tae"), ".3f")), ("AbsRel video-level", _f(video.get("abs_rel"), ".4f")),
                 ("δ1 video-level", _f(video.get("delta1"), ".3f")),
                 ("AbsRel per-frame aligned", _f(per.get("abs_rel_aligned"), ".4f")),
                 ("δ1 per-frame aligned", _f(per.get("delta1_aligned"), ".3f"))]  # fmt: skip
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    for kind, path in s.files.items():
        console.print(f"{kind}: {path}", markup=False, highlight=False)  # a user-chosen --out may hold [
    if s.weights_warning:
        err_console.print(f"[yellow]warning:[/] {escape(s.weights_warning)}")


def _f(v: float | None, f: str) -> str:
    return "-" if v is None else format(v, f)
