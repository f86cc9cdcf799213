"""Random weights without paying for initialisation twice (constructors, then `_init_weights`).

Parameters start on `meta`, buffers stay real (computed, not random), and one seeded pass fills
every parameter; benchmarks/random_init.py measures the saving.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import torch
from torch import nn

T = TypeVar("T", bound=nn.Module)

_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._NormBase)


@contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Inside this block every new nn.Parameter lands on `meta`; buffers are created normally."""
    original = nn.Module.register_parameter

    def register_on_meta(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        original(module, name, param)
        if param is not None and param.device.type != "meta":
            module._parameters[name] = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)

    nn.Module.register_parameter = register_on_meta  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.register_parameter = original  # type: ignore[method-assign]


def build_with_random_weights(
    factory: Callable[[], T], *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0
) -> T:
    """Build `factory()` with parameters on meta, then materialise and fill them in one seeded pass."""
    with parameters_on_meta():
        module = factory()
    materialize_random(module, device=device, dtype=dtype, seed=seed)
    return module


@torch.no_grad()
def materialize_random(module: nn.Module, *, device: torch.device | str, dtype: torch.dtype, seed: int = 0) -> None:
    """Meta parameters made real: norms 1/0, biases 0, weights U(+-1/sqrt(fan_in)), tied ones still tied.

    The bound is PyTorch's default for Linear and Conv: a random deep stack keeps sane activations.
    """
    generator = torch.Generator(device="cpu").manual_seed(seed)
    done: dict[int, nn.Parameter] = {}
    for sub in module.modules():
        for name, param in list(sub._parameters.items()):
            if param is None:
                continue
            if id(param) in done:
                sub._parameters[name] = done[id(param)]
                continue
            if param.device.type == "meta":
                real = torch.empty(param.shape, dtype=dtype if param.is_floating_point() else param.dtype)
                _fill(real, sub, name, generator)
                new = nn.Parameter(real.to(device), requires_grad=False)
            else:
                new = param
            done[id(param)] = new
            sub._parameters[name] = new
    module.to(device=device)
    module.eval()


def _fill(t: torch.Tensor, owner: nn.Module, name: str, generator: torch.Generator) -> None:
    if not t.is_floating_point():
        t.zero_()
    elif isinstance(owner, _NORMS):
        t.fill_(1.0 if name == "weight" else 0.0)
    elif "bias" in name:
        t.zero_()
    elif t.ndim >= 2:
        fan_in = t[0].numel()
        bound = 1.0 / math.sqrt(max(fan_in, 1))
        t.uniform_(-bound, bound, generator=generator)
    else:
        t.fill_(1.0)  # per-channel scales (layer scale, gamma): identity
