"""Shapes, parameters and FLOPs from one pass on the `meta` device: no weights in memory, no compute.

Full-size DepthPro (952 M parameters, 19 TFLOP a forward) traces in seconds this way.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from pydantic import BaseModel, Field

from visionbench.measure.flops import component_flops, component_params, counting_on_meta, flops_by_module, shapes_of
from visionbench.models.registry import create_model


class LayerTrace(BaseModel):
    index: int = Field(description="Call order in the forward pass.")
    name: str = Field(description="Qualified module name.")
    type: str = Field(description="Module class name.")
    output_shapes: list[list[int]] = Field(description="Shape of each tensor the call returned.")
    params: int = Field(description="The module's own parameters.")


class TraceResult(BaseModel):
    model: str
    input_size: int
    batch_size: int
    params: int = Field(description="Parameters of the whole model.")
    flops: int = Field(description="FLOPs of one forward (2 per multiply-add).")
    component_params: dict[str, int]
    component_flops: dict[str, int]
    input_shapes: dict[str, list[int]]
    output_shapes: list[list[int]]
    layers: list[LayerTrace]
    seconds: float = Field(description="Wall time of build + traced pass.")


def trace(name: str, input_size: int | None = None, batch_size: int = 1, **overrides: Any) -> TraceResult:
    """Build `name` on meta, run one forward under FlopCounterMode with hooks on every leaf module."""
    start = time.perf_counter()
    model = create_model(name, device="meta", weights="random", input_size=input_size, **overrides)
    batch = model.example_batch(batch_size, device="meta")
    layers: list[LayerTrace] = []
    names = {m: n for n, m in model.module.named_modules()}

    def hook(module: torch.nn.Module, _inp: Any, out: Any) -> None:
        layers.append(
            LayerTrace(
                index=len(layers),
                name=names[module],
                type=type(module).__name__,
                output_shapes=shapes_of(out),
                params=sum(p.numel() for p in module.parameters(recurse=False)),
            )
        )

    handles = [m.register_forward_hook(hook) for m in model.module.modules() if not list(m.children())]
    try:
        with counting_on_meta() as counter:
            output = model.forward(batch)
    finally:
        for h in handles:
            h.remove()
    per_module = flops_by_module(counter)
    components = model.components()
    return TraceResult(
        model=name,
        input_size=model.input_size,
        batch_size=batch_size,
        params=model.num_params(),
        flops=counter.get_total_flops(),
        component_params=component_params(model.module, components),
        component_flops=component_flops(per_module, components),
        input_shapes={k: list(v.shape) for k, v in batch.inputs.items()},
        output_shapes=shapes_of(output),
        layers=layers,
        seconds=time.perf_counter() - start,
    )
