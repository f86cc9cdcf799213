"""FLOPs with torch.utils.flop_counter (2 FLOPs per multiply-add), in total and per module path."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode, flop_registry, sdpa_flop_count

from visionbench.models.base import Batch, VisionModel


def count_flops(model: VisionModel, batch: Batch) -> tuple[int, dict[str, int]]:
    """Total FLOPs of one forward and FLOPs per module path (nested paths include their children)."""
    with flop_counter() as counter, torch.inference_mode():
        model.forward(batch)
    return counter.get_total_flops(), flops_by_module(counter)


def flop_counter() -> FlopCounterMode:
    """A FlopCounterMode that also counts CPU attention: torch has no formula for the CPU flash-attention
    kernel that SDPA uses there, so without this CPU counts miss every attention matmul (meta counts them)."""
    aten = torch.ops.aten
    cpu_op = getattr(aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    extra = {}
    if cpu_op is not None and cpu_op not in flop_registry:
        extra[cpu_op] = lambda q, k, v, *_a, out_shape=None, **_kw: sdpa_flop_count(q, k, v)
    return FlopCounterMode(display=False, custom_mapping=extra)


def flops_by_module(counter: FlopCounterMode) -> dict[str, int]:
    """FlopCounterMode names modules 'Global.<Class>.<path>'-style; keep the dotted module path."""
    out: dict[str, int] = {}
    for key, ops in counter.get_flop_counts().items():
        if key == "Global":
            continue
        path = key.split(".", 1)[1] if "." in key else ""
        out[path] = out.get(path, 0) + int(sum(ops.values()))
    return out


def component_flops(per_module: dict[str, int], components: dict[str, list[str]]) -> dict[str, int]:
    """Sum FLOPs of each component's module-path prefixes (exact prefixes, never double counted)."""
    return {label: sum(per_module.get(p, 0) for p in prefixes) for label, prefixes in components.items()}


def component_params(module: torch.nn.Module, components: dict[str, list[str]]) -> dict[str, int]:
    """Parameters under each component's module-path prefixes."""
    named = list(module.named_parameters())
    return {
        label: sum(p.numel() for n, p in named if any(n == pre or n.startswith(pre + ".") for pre in prefixes))
        for label, prefixes in components.items()
    }


def shapes_of(value: Any) -> list[list[int]]:
    """Every tensor's shape inside a tensor, tuple/list, dict or ModelOutput, in order."""
    if isinstance(value, torch.Tensor):
        return [list(value.shape)]
    if isinstance(value, dict):  # ModelOutput is an OrderedDict
        return [s for v in value.values() for s in shapes_of(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in shapes_of(v)]
    return []


@contextmanager
def counting_on_meta() -> Iterator[FlopCounterMode]:
    """A FLOP counter for a forward on `meta` tensors, inference mode on.

    Boolean-mask indexing (SAM's prompt encoder) needs nonzero(), which torch refuses on meta unless
    told to assume every element is nonzero: shapes are all a meta pass yields anyway.
    """
    from torch.fx.experimental import _config as fx_config

    with fx_config.patch(meta_nonzero_assume_all_nonzero=True), flop_counter() as counter, torch.inference_mode():
        yield counter


def meta_flops(name: str, batch: Batch, input_size: int, **overrides: Any) -> int | None:
    """FLOPs of one forward at `batch`'s exact input shapes, counted on a `meta` copy of the model.

    No compute and no weights, so measuring FLOPs never takes a forward away from warmup or costs one
    more full-size forward. None when the model cannot be built on meta (e.g. a pickled checkpoint).
    """
    counted = meta_count(name, batch, input_size, **overrides)
    return counted[0] if counted else None


def meta_count(name: str, batch: Batch, input_size: int, **overrides: Any) -> tuple[int, dict[str, int]] | None:
    """(total, per module path) FLOPs of one forward at `batch`'s shapes, on a `meta` copy; None if not buildable.

    The meta copy is built by the same factory, so its module paths are the real model's: a component
    profile takes its FLOPs from here instead of a real counting forward (minutes for DepthPro on a CPU).
    """
    from visionbench.models.registry import create_model

    try:
        meta = create_model(name, device="meta", weights="random", input_size=input_size, **overrides)
        inputs = {k: torch.empty(v.shape, dtype=v.dtype, device="meta") for k, v in batch.inputs.items()}
        with counting_on_meta() as counter:
            meta.forward(Batch(inputs, batch.sizes, batch.extras))
    except Exception:  # noqa: BLE001 - the caller falls back to counting on the real model
        return None
    total = int(counter.get_total_flops())
    return (total, flops_by_module(counter)) if total else None
