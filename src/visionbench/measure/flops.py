"""FLOPs with torch.utils.flop_counter (2 FLOPs per multiply-add), in total and per module path."""

from __future__ import annotations

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


def shapes_of(value: Any) -> list[list[int]]:
    """Every tensor's shape inside a tensor, tuple/list, dict or ModelOutput, in order."""
    if isinstance(value, torch.Tensor):
        return [list(value.shape)]
    if isinstance(value, dict):  # ModelOutput is an OrderedDict
        return [s for v in value.values() for s in shapes_of(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in shapes_of(v)]
    return []
