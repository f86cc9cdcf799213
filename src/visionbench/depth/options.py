"""Option values checked once, by their pydantic fields, with one line that names the flag."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from visionbench.errors import BadInputError

OptionsT = TypeVar("OptionsT", bound=BaseModel)


class ModelRunOptions(BaseModel):
    """What every command that runs a depth model on many images takes (`depth`, `video`), one meaning each."""

    model: str = Field("depthpro", description="Depth model name (metric: depthpro; relative: depth-anything-v2-*).")
    weights: str = Field("auto", description="auto, random, or a weights file/folder.")
    device: str = Field("auto", description="cpu, cuda, cuda:N, mps or auto.")
    dtype: str = Field("float32", description="float32, float16 or bfloat16.")
    input_size: int | None = Field(None, description="Model input size in pixels (default: the model's own).")
    batch_size: int = Field(1, ge=1, description="Images (frames) per forward pass.")
    focal_px: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="Known focal length in pixels (beats EXIF and the FOV head)."
    )
    seed: int = Field(0, description="Seed for random weights.")


class DepthOptions(ModelRunOptions):
    """How `visionbench depth` runs; field descriptions are the CLI's help."""

    out: Path = Field(Path("depth_out"), description="Output folder; the inputs' relative paths are kept.")
    cmap: str = Field("inferno", description="Matplotlib colour map of the depth picture (near = top of the map).")
    side_by_side: bool = Field(False, description="Also write photo | depth side by side.")
    raw: bool = Field(True, description="Write raw .npy (and 16-bit mm PNG for metric models).")
    ply: bool = Field(False, description="Write a coloured point cloud (.ply) for metric models.")
    ply_stride: int = Field(1, ge=1, description="Keep every n-th pixel in rows and columns of the point cloud.")
    ignore_exif: bool = Field(False, description="Do not use the EXIF 35 mm focal length.")
    resume: bool = Field(False, description="Skip images whose outputs all exist already.")
    workers: int | None = Field(None, ge=1, description="Decoding threads (default: min(4, CPUs - 1)).")


def checked_options(cls: type[OptionsT], **values: Any) -> OptionsT:
    """Options built from the command line, or one BadInputError naming the flag and what is wrong.

    The fields hold the rules (positive, finite, at least 1), so the CLI and the library agree, and
    every value is checked before a folder is created or a model is built.
    """
    try:
        return cls(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = str(err["msg"]).removeprefix("Value error, ")
        if not err["loc"]:  # a rule across fields says which flags itself
            raise BadInputError(msg) from None
        field = str(err["loc"][0])
        shown = f" {values[field]!r}" if field in values else ""
        raise BadInputError(f"--{field.replace('_', '-')}{shown}: {msg[:1].lower()}{msg[1:]}") from None
