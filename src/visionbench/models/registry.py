"""One registry, one factory: names map to a card and a builder; `hf:` and `ultralytics:` resolve at call time."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from visionbench.errors import UnknownModelError, UnsupportedOptionError
from visionbench.models.base import VisionModel
from visionbench.models.card import ModelCard
from visionbench.models.weights import WeightsRequest, parse_weights

OPEN_DOORS = ("hf:", "ultralytics:")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class BuildSpec:
    """Everything a builder needs; builders never parse user strings themselves."""

    card: ModelCard
    weights: WeightsRequest
    device: torch.device
    dtype: torch.dtype
    input_size: int
    seed: int = 0
    trust_remote_code: bool = False
    target: str | None = None  # what follows `hf:` or `ultralytics:`
    input_size_given: bool = False  # False: the card's default, which a pretrained folder's processor may replace
    overrides: dict[str, Any] = field(default_factory=dict)


Builder = Callable[[BuildSpec], VisionModel]


@dataclass(frozen=True)
class _Entry:
    card: ModelCard
    builder: Builder


_REGISTRY: dict[str, _Entry] = {}


def register(card: ModelCard) -> Callable[[Builder], Builder]:
    """Decorator: register `builder` under `card.name`; a duplicate name is a programming error."""

    def wrap(builder: Builder) -> Builder:
        if card.name in _REGISTRY:
            raise ValueError(f"model {card.name!r} is already registered")
        _REGISTRY[card.name] = _Entry(card, builder)
        return builder

    return wrap


def _load_catalog() -> None:
    """The adapters register themselves on import; no model library is imported yet."""
    from visionbench.models import depth_anything, depth_pro, mobile_sam, open_doors, yolo  # noqa: F401


def list_models(pattern: str = "*", include_hidden: bool = False) -> list[str]:
    """Registered names matching a shell-style pattern, e.g. `list_models("depth-anything-*")`."""
    _load_catalog()
    return [
        name
        for name, entry in _REGISTRY.items()
        if name not in OPEN_DOORS and fnmatch.fnmatch(name, pattern) and (include_hidden or not entry.card.hidden)
    ]


def get_card(name: str) -> ModelCard:
    """The card of a registered name (open doors get theirs when built)."""
    return _entry(name).card


def _entry(name: str) -> _Entry:
    _load_catalog()
    if name in _REGISTRY:
        return _REGISTRY[name]
    for prefix in OPEN_DOORS:
        if name.startswith(prefix) and len(name) > len(prefix):
            return _REGISTRY[prefix]
    close = difflib.get_close_matches(name, [n for n in _REGISTRY if n not in OPEN_DOORS], n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UnknownModelError(
        f"unknown model {name!r}.{hint} See `visionbench models`; any transformers depth model works as "
        "hf:<repo or folder>, any ultralytics model as ultralytics:<yaml or .pt>."
    )


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """`auto` picks cuda, then mps, then cpu; asking for an absent accelerator is a clear error."""
    name = str(device)
    mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise UnsupportedOptionError(f"--device {name!r}: not a device (use cpu, cuda, cuda:N, mps or auto)") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UnsupportedOptionError("--device cuda: no CUDA device is available on this machine (use cpu or auto)")
    if dev.type == "mps" and not mps:
        raise UnsupportedOptionError("--device mps: MPS is not available on this machine (use cpu or auto)")
    if dev.type not in {"cpu", "cuda", "mps", "meta"}:  # meta: tracing only, never a CLI choice
        raise UnsupportedOptionError(f"--device {name!r}: unsupported (use cpu, cuda, mps or auto)")
    return dev


def resolve_dtype(dtype: str | torch.dtype = "float32") -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    aliases = {"fp32": "float32", "fp16": "float16", "half": "float16", "bf16": "bfloat16"}
    key = aliases.get(str(dtype), str(dtype))
    if key not in DTYPES:
        raise UnsupportedOptionError(f"--dtype {dtype!r}: use one of {', '.join(DTYPES)}")
    return DTYPES[key]


def create_model(
    name: str,
    *,
    weights: str | Path | None = "auto",
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = "float32",
    input_size: int | None = None,
    seed: int = 0,
    trust_remote_code: bool = False,
    **overrides: Any,
) -> VisionModel:
    """Build a registered model (or an open-door `hf:` / `ultralytics:` one) ready for inference."""
    entry = _entry(name)
    size = entry.card.input_size if input_size is None else int(input_size)
    if not 32 <= size <= 8192:
        raise UnsupportedOptionError(f"--input-size {size}: must be between 32 and 8192 pixels")
    spec = BuildSpec(
        card=entry.card,
        weights=parse_weights(weights),
        device=resolve_device(device),
        dtype=resolve_dtype(dtype),
        input_size=size,
        seed=seed,
        trust_remote_code=trust_remote_code,
        target=name.split(":", 1)[1] if name not in _REGISTRY else None,
        input_size_given=input_size is not None,
        overrides=overrides,
    )
    return entry.builder(spec)
