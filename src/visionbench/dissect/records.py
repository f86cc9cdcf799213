"""Options and typed records of a dissection: what is asked for, what each layer call produced, what came back.

Field descriptions here are the documentation of `layers.json` (docs/dissection.md repeats them).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

NEAR_ZERO = 1e-6  # |x| below this counts as near zero
FORMAT_VERSION = 1


class DissectOptions(BaseModel):
    """What to record and what to draw. Defaults match `visionbench dissect`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    layers: str | list[str] | None = Field(
        default=None,
        description="'conv' (Conv/ConvTranspose of any dimension), 'all' (every leaf module) or a list of module "
        "type names. None: 'conv', or 'all' when `match` is given.",
    )
    match: str | None = Field(default=None, description="Regular expression searched in qualified module names.")
    channels: int = Field(default=16, ge=0, description="Channels drawn in each layer's PNG grid (0: no PNG).")
    npy_channels: int | Literal["all"] = Field(
        default=8, description="Channels saved as NPY per 4-D (or token-grid) output; 'all' saves the whole output."
    )
    png_level: int = Field(
        default=0, ge=0, le=9, description="zlib level of the channel grids (0: stored, fastest; 1-9: smaller files)."
    )
    pictures: bool = Field(default=True, description="Write PNG grids and NPY arrays (False: statistics only).")
    summary_plots: bool = Field(default=True, description="Draw summary.png and components.png after the pass.")
    blocks: list[int] | None = Field(
        default=None, description="Transformer block indices (of each encoder) to capture and compare; -1 is the last."
    )
    drift: Literal["bfloat16", "float16"] | None = Field(
        default=None, description="Also run in this precision and compare every selected layer with float32."
    )
    drift_sample: int = Field(default=16384, ge=16, description="Elements compared element-wise per output (drift).")
    input_label: str | None = Field(default=None, description="How layers.json names the input (e.g. the image path).")
    seed: int = Field(default=0, description="Seed of the random input (no image) and of the drift sample indices.")
    queue_size: int = Field(default=1024, ge=1, description="Picture jobs held for the writers at most.")
    queue_mib: int = Field(default=256, ge=1, description="Host copies waiting for the writers at most (MiB).")
    progress: Callable[[int, str], None] | None = Field(
        default=None, exclude=True, description="Called after each recorded layer call with (calls so far, name)."
    )

    @field_validator("npy_channels", mode="before")
    @classmethod
    def _npy(cls, value: Any) -> Any:
        if isinstance(value, str) and value != "all":
            return int(value)
        return value


class LayerRecord(BaseModel):
    """One tensor (or non-tensor) returned by one call of one selected module."""

    index: int = Field(description="Call index in execution order (tensors of one call share it).")
    name: str = Field(description="Qualified module name.")
    type: str = Field(description="Module class name.")
    call: int = Field(description="How many times this module had been called before (0: first call).")
    output: str = Field(description="Where the tensor sits in the call's output: '' (the output itself), '0', 'key'.")
    component: str = Field(description="Architecture component (VisionModel.components()) or 'other'.")
    params: int = Field(description="The module's own parameters (not its children's).")
    kind: str = Field(description="'tensor', or the Python type name of a non-tensor output.")
    shape: list[int] | None = None
    dtype: str | None = None
    numel: int | None = None
    min: float | None = Field(default=None, description="Minimum over finite values.")
    max: float | None = Field(default=None, description="Maximum over finite values.")
    mean: float | None = Field(default=None, description="Mean over finite values.")
    std: float | None = Field(default=None, description="Population std (ddof 0) over finite values.")
    sparsity: float | None = Field(default=None, description="Fraction of exact zeros.")
    near_zero: float | None = Field(default=None, description=f"Fraction with |x| < {NEAR_ZERO:g} (zeros included).")
    nan_count: int | None = None
    inf_count: int | None = None
    layout: str | None = Field(default=None, description="'maps' [B,C,H,W] or 'tokens' ([B,T,D] reshaped to a grid).")
    picture: str | None = Field(default=None, description="PNG channel grid, relative to the model folder.")
    npy: str | None = Field(default=None, description="NPY of the first channels [B, k, H, W], relative path.")
    patches: str | None = Field(
        default=None, description="PNG of per-patch feature norms labelled by scale (DepthPro)."
    )


class DissectionResult(BaseModel):
    """What `dissect_model` returns: where layers.json is and the headline facts."""

    path: Path = Field(description="layers.json")
    folder: Path = Field(description="The model's output folder (layers.json, maps/, npy/, plots).")
    layer_count: int = Field(description="Records written (one per tensor per call).")
    calls: int = Field(description="Hooked module calls.")
    seconds: float = Field(description="Wall time of the dissected pass, writer drain included, plots excluded.")
    total_seconds: float = Field(description="Everything: preprocess, pass, drift, plots, layers.json.")
    peak_bytes: int | None = Field(
        default=None, description="CUDA: allocator peak during the pass. CPU: the process's peak RSS so far."
    )
    summary: dict[str, Any] = Field(default_factory=dict)
