"""What `visionbench video` takes and records, and the option checks made before anything is opened."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from visionbench.depth import io
from visionbench.depth.options import ModelRunOptions
from visionbench.errors import BadInputError

SUMMARY_FILE = "video.json"
DEPTH_VIDEO = "depth.mp4"
SIDE_VIDEO = "side_by_side.mp4"
FRAMES_DIR = "depth"


class VideoOptions(ModelRunOptions):
    """How `visionbench video` runs; the CLI's help says the same."""

    out: Path = Field(Path("video_out"), description="Output folder.")
    cmap: str = Field("inferno", description="Matplotlib colour map of the depth video (near = top of the map).")
    side_by_side: bool = Field(False, description="Also write photo | depth as side_by_side.mp4.")
    resume: bool = Field(False, description="Reuse frames whose files are complete; the model runs on the rest.")
    every: int = Field(1, ge=1, description="Keep every N-th frame.")
    start_s: float = Field(0.0, ge=0, description="First timestamp to process (seconds).")
    end_s: float | None = Field(None, gt=0, description="Stop before this timestamp (seconds).")
    fps: float = Field(30.0, gt=0, description="Frame rate of a folder of frames.")
    ground_truth: Path | None = Field(None, description="Folder with depth/, poses.npy, intrinsics.json.")
    flow: str = Field("dis", description="Optical flow for the flicker metric: dis or farneback (OpenCV).")
    flicker: bool = Field(True, description="Compute the flicker (OPW); off saves the optical flow's time.")


class VideoSummary(BaseModel):
    """What a run did (video.json): frames, files, metrics, and how far it got when it stopped."""

    model: str
    weights_mode: str
    weights_warning: str | None = None
    depth_kind: str
    out: str
    source: dict[str, Any]
    frames: int = 0
    frames_resumed: int = 0
    seconds: float = 0.0
    frames_per_s: float = 0.0
    model_frames_per_s: float | None = None
    files: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    complete: bool = False
    error: str | None = None


def check_options(opts: VideoOptions) -> None:
    """Option values that cannot work, before anything is opened or built."""
    if opts.end_s is not None and opts.end_s <= opts.start_s:
        raise BadInputError(f"--end {opts.end_s} must be after --start {opts.start_s}")
    if opts.flow not in {"dis", "farneback"}:
        raise BadInputError(f"--flow {opts.flow!r}: choose dis or farneback")
    io.colour_table(opts.cmap)


def check_out_not_in_input(source: Path, out: Path) -> None:
    """A folder of frames must not hold the outputs: a rerun would read depth PNGs as frames."""
    src, dst = source.expanduser().resolve(), out.expanduser().resolve()
    if src.is_dir() and (dst == src or src in dst.parents):
        raise BadInputError(f"--out {out} is inside the input folder {source}; choose a folder outside it")


def check_resume(out: Path, model_name: str) -> None:
    """--resume into a folder another model made would mix two models' frames: refused before the mp4 is rewritten."""
    for sidecar in sorted((out / FRAMES_DIR).glob("frame_*.json"))[:1]:
        try:
            made_by = json.loads(sidecar.read_text()).get("model")
        except (OSError, ValueError):
            continue
        if made_by != model_name:
            raise BadInputError(f"--resume: {out} holds frames made by {made_by}, not {model_name}; use another --out")
