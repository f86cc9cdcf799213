"""The one interface every family implements, so every measurement drives any model the same way:
`batch = m.preprocess(images)`, `out = m.forward(batch)`, `preds = m.postprocess(out, batch)`."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from PIL import Image

from visionbench.models.card import ModelCard

if TYPE_CHECKING:
    from visionbench.results import WeightsRecord

WeightsMode = Literal["pretrained", "random"]


@dataclass(frozen=True)
class WeightsInfo:
    """Where the weights of a built model came from; every output repeats this (`record()`)."""

    mode: WeightsMode
    source: str  # e.g. "hub cache apple/DepthPro-hf", "file /x/model.safetensors", "random init (seed 0)"
    warning: str | None = None  # set when `auto` fell back to random weights: said loudly everywhere
    revision: str | None = None  # hub commit of the snapshot, or the release tag of a downloaded file
    files: dict[str, str] = field(default_factory=dict)  # path of each file read -> its SHA-256

    def record(self) -> WeightsRecord:
        """The results-schema form, so run.json, sidecars, layers.json and eval results say the same."""
        from visionbench.results import WeightsRecord

        return WeightsRecord(
            mode=self.mode, source=self.source, warning=self.warning, revision=self.revision, files=dict(self.files)
        )


META_WEIGHTS = WeightsInfo("random", "meta (no weights)")


def file_info(file: Path, note: str = "", revision: str | None = None) -> WeightsInfo:
    """The record of pretrained weights read from one file."""
    return WeightsInfo("pretrained", f"file {file}{note}", revision=revision, files=file_digests([file]))


def first_line(exc: BaseException) -> str:
    """A library's multi-line message as the one line an error of ours quotes."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def file_digests(paths: list[Path]) -> dict[str, str]:
    """SHA-256 of each file (resolved path -> hex digest), remembered per (path, size, mtime)."""
    out: dict[str, str] = {}
    for path in paths:
        resolved = path.resolve()
        st = resolved.stat()
        out[str(path)] = _sha256(str(resolved), st.st_size, st.st_mtime_ns)
    return out


@functools.lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


@dataclass
class Batch:
    """Model-ready inputs plus what postprocessing needs to map outputs back to the images."""

    inputs: dict[str, torch.Tensor]  # keyword arguments of the module's forward
    sizes: list[tuple[int, int]]  # original (height, width) of each image
    extras: dict[str, Any] = field(default_factory=dict)  # family-specific (letterbox ratios, prompts)

    @property
    def batch_size(self) -> int:
        return len(self.sizes)


@dataclass
class Prediction:
    """The task's result for one image, at the image's own resolution."""

    task: str
    depth: np.ndarray | None = None  # [H, W] float32: metres (metric) or relative inverse depth
    depth_kind: Literal["metric", "relative-inverse"] | None = None
    fov_deg: float | None = None  # horizontal field of view, degrees
    focal_px: float | None = None  # focal length in pixels at the image's resolution
    boxes: np.ndarray | None = None  # [N, 4] xyxy pixels
    scores: np.ndarray | None = None  # [N]
    classes: np.ndarray | None = None  # [N] int
    masks: np.ndarray | None = None  # [N, H, W] bool
    keypoints: np.ndarray | None = None  # [N, K, 3] x, y, visibility

    def summary(self) -> dict[str, Any]:
        """Small JSON-ready facts about the output (depth statistics, detection counts)."""
        out: dict[str, Any] = {"task": self.task}
        if self.depth is not None:
            d = self.depth[np.isfinite(self.depth)]
            out.update(depth_kind=self.depth_kind, height=int(self.depth.shape[0]), width=int(self.depth.shape[1]))
            for stat in ("min", "max", "mean", "median", "std"):
                out[f"depth_{stat}"] = float(getattr(np, stat)(d)) if d.size else None
            out.update(fov_deg=self.fov_deg, focal_px=self.focal_px)
        if self.boxes is not None:
            out["detections"] = int(len(self.boxes))
        if self.masks is not None:
            out["masks"] = int(len(self.masks))
        if self.keypoints is not None:
            out["instances_with_keypoints"] = int(len(self.keypoints))
        return out


class VisionModel(ABC):
    """A built model of one family. Create through `visionbench.create_model`, never directly."""

    def __init__(
        self,
        card: ModelCard,
        module: torch.nn.Module,
        weights: WeightsInfo,
        *,
        input_size: int,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        self.card = card
        self.module = module.eval().requires_grad_(False)  # inference only: no autograd bookkeeping
        self.weights = weights
        self.input_size = input_size
        self.device = device
        self.dtype = dtype

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def variant(self) -> str | None:
        """How the module differs from the trained one, e.g. `fused` for YOLO; None when it does not."""
        return None

    def num_params(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    @abstractmethod
    def preprocess(self, images: list[Image.Image]) -> Batch:
        """RGB PIL images -> model inputs on the model's device and dtype, the family's own way."""

    def forward(self, batch: Batch) -> Any:
        """One forward pass of the module; callers wrap it in inference_mode and time it."""
        return self.module(**batch.inputs)

    @abstractmethod
    def postprocess(self, outputs: Any, batch: Batch) -> list[Prediction]:
        """Raw module outputs -> one Prediction per image, at each image's own resolution."""

    @classmethod
    def from_spec(cls, spec: Any, module: torch.nn.Module, info: WeightsInfo) -> Any:
        """The built model as its BuildSpec says (card, input size, device, dtype)."""
        return cls(spec.card, module, info, input_size=spec.input_size, device=spec.device, dtype=spec.dtype)

    def example_batch(self, batch_size: int = 1, device: torch.device | str | None = None, side: int = 0) -> Batch:
        """Random inputs of the right shape at `input_size` (also on `meta`, for tracing)."""
        s = side or self.input_size
        pixels = torch.randn(batch_size, 3, s, s, device=device or self.device, dtype=self.dtype)
        return Batch({"pixel_values": pixels}, [(s, s)] * batch_size)

    def predict(self, images: list[Image.Image]) -> list[Prediction]:
        """End to end: preprocess, forward under inference_mode, postprocess."""
        batch = self.preprocess(images)
        with torch.inference_mode():
            outputs = self.forward(batch)
        return self.postprocess(outputs, batch)

    def components(self) -> dict[str, list[str]]:
        """Top-level parts of the architecture: label -> module-path prefixes (for breakdowns)."""
        return {name: [name] for name, _ in self.module.named_children()}

    def token_layout(self) -> dict[str, Any] | None:
        """Transformer encoders: `prefix_tokens` to drop, patch `grid` (rows, cols), `module_prefixes`."""
        return None

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> VisionModel:
        """Move the module; float buffers follow `dtype`, as with `nn.Module.to`."""
        if device is not None:
            self.device = torch.device(device)
        if dtype is not None:
            self.dtype = dtype
        self.module.to(device=self.device, dtype=self.dtype)
        return self

    def describe(self) -> dict[str, Any]:
        """JSON-ready identity of this built model: card facts plus how it was built."""
        return {
            "name": self.name,
            "task": self.card.task,
            "library": self.card.library,
            "architecture": self.card.architecture,
            "params": self.num_params(),
            "published_params": self.card.params,
            "variant": self.variant,
            "input_size": self.input_size,
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            **{f"weights_{key}": value for key, value in dataclasses.asdict(self.weights).items()},
        }
