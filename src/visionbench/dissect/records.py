"""What a dissection is asked for and what `dissect_model` returns; the layers.json records live in
`visionbench.results` (the report reads them without importing this package)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from visionbench.layers_json import LayerRecord

__all__ = ["DissectOptions", "DissectionResult", "LayerRecord"]


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
