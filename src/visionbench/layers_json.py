"""layers.json: the dissection's file, written by `visionbench.dissect` and read by the report through these
types only, so writer and reader agree on one shape and neither imports the other."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from visionbench.errors import BadInputError

LAYERS_FILE = "layers.json"
LAYERS_FORMAT = 2
NEAR_ZERO = 1e-6  # |x| below this counts as near zero


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
    min: float | None = Field(None, description="Minimum over finite values.")
    max: float | None = Field(None, description="Maximum over finite values.")
    mean: float | None = Field(None, description="Mean over finite values.")
    std: float | None = Field(None, description="Population std (ddof 0) over finite values.")
    sparsity: float | None = Field(None, description="Fraction of exact zeros.")
    near_zero: float | None = Field(None, description=f"Fraction with |x| < {NEAR_ZERO:g} (zeros included).")
    nan_count: int | None = None
    inf_count: int | None = None
    layout: Literal["maps", "tokens"] | None = Field(
        None, description="'maps' [B,C,H,W] or 'tokens' ([B,T,D] reshaped to a grid)."
    )
    picture: str | None = Field(None, description="PNG channel grid, relative to the model folder.")
    caption: str | None = Field(None, description="What the PNG grid shows (layer, shape, channels).")
    npy: str | None = Field(None, description="NPY of the first channels [B, k, H, W], relative path.")
    patches: str | None = Field(None, description="PNG of per-patch feature norms labelled by scale.")

    @property
    def is_tensor_with_stats(self) -> bool:
        return self.kind == "tensor" and self.std is not None


class BlockRecord(BaseModel):
    """One captured transformer block (`--blocks`): where it is, its statistics, the figure it is drawn in."""

    encoder: str
    block: int
    name: str
    shape: list[int]
    shown: str | None = Field(None, description="Which image or patch the figure shows.")
    figure: str | None = Field(None, description="blocks_<encoder>.png, relative to the model folder.")
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None


class LayersDocument(BaseModel):
    """layers.json: the records of one dissection pass and what they were recorded from."""

    format_version: int = LAYERS_FORMAT
    model: dict[str, Any] = Field(description="VisionModel.describe() of the dissected model.")
    input: dict[str, Any] = Field(description="Source, image size and input tensors' shapes and dtypes.")
    weights: dict[str, Any] = Field(description="Weight mode, source and loading warning.")
    device: str
    selection: dict[str, Any] = Field(description="--layers, --match and the number of hooked modules.")
    options: dict[str, Any] = Field(description="DissectOptions as given.")
    stats_method: str = Field(description="Which code computed the statistics.")
    writer: str | None = Field(None, description="What wrote the pictures (None: statistics only).")
    normalisation: str = Field("", description="How channel values map to grey levels.")
    pass_seconds: float = Field(description="Wall time of the hooked forward and the picture writers' drain.")
    peak_bytes: int | None = Field(None, description="CUDA allocator peak, or the process's peak RSS.")
    outputs: list[dict[str, Any]] = Field(default_factory=list, description="The model's output tensors' shapes.")
    summary: dict[str, Any] = Field(default_factory=dict)
    components: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Totals per component.")
    records: list[LayerRecord] = Field(default_factory=list)
    blocks: list[BlockRecord] = Field(default_factory=list)
    drift: dict[str, Any] | None = Field(None, description="Precision drift per layer (--drift).")


def layers_path(folder_or_file: str | Path) -> Path:
    """layers.json itself, in the folder, or in the folder's one model subfolder (`<out>/<model>/`)."""
    path = Path(folder_or_file)
    if path.is_dir():
        nested = [path / LAYERS_FILE] if (path / LAYERS_FILE).is_file() else sorted(path.glob(f"*/{LAYERS_FILE}"))
        if len(nested) != 1:
            what = "none" if not nested else f"{len(nested)} model folders with one"
            raise BadInputError(f"{path}: expected one {LAYERS_FILE}, found {what}")
        path = nested[0]
    return path


def load_layers(folder_or_file: str | Path) -> LayersDocument:
    """Read layers.json into its typed document; a missing or foreign file is one BadInputError."""
    path = layers_path(folder_or_file)
    try:
        return LayersDocument.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read {LAYERS_FILE} ({exc.strerror or exc})") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        raise BadInputError(f"{path}: not a {LAYERS_FILE} of this visionbench: {first['loc']} {first['msg']}") from exc
