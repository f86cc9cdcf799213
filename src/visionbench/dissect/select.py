"""Which leaf modules to hook: by family ('conv', 'all'), by type names, and/or by a regex on names.

Every way of asking for nothing (an unknown type, a regex that matches no layer) is a clear BadInputError,
never an empty dissection.
"""

from __future__ import annotations

import re

from torch import nn

from visionbench.errors import BadInputError

CONV_TYPES = (nn.modules.conv._ConvNd,)  # Conv1d/2d/3d and ConvTranspose1d/2d/3d (and lazy variants)


def leaf_modules(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules without children, in registration order (the root itself when it is a leaf)."""
    return [(n, m) for n, m in module.named_modules() if not any(True for _ in m.children())]


def parse_layers(value: str | list[str] | None) -> str | list[str] | None:
    """'conv' / 'all' / 'Conv2d,Linear' (CLI text) -> 'conv' / 'all' / ['Conv2d', 'Linear']."""
    if value is None or isinstance(value, list):
        return value
    text = value.strip()
    if text.lower() in {"conv", "all"}:
        return text.lower()
    return [t.strip() for t in text.split(",") if t.strip()]


def select_layers(
    module: nn.Module, layers: str | list[str] | None = None, match: str | None = None
) -> list[tuple[str, nn.Module]]:
    """The selected leaf modules as (qualified name, module), in registration order."""
    leaves = leaf_modules(module)
    layers = parse_layers(layers)
    if layers is None:
        layers = "all" if match else "conv"
    if layers == "conv":
        chosen = [(n, m) for n, m in leaves if isinstance(m, CONV_TYPES)]
        what = "conv layers"
    elif layers == "all":
        chosen, what = leaves, "leaf layers"
    else:
        if not layers:
            raise BadInputError("--layers: give 'conv', 'all' or module type names such as Conv2d,Linear")
        present = {type(m).__name__ for _, m in leaves}
        unknown = [t for t in layers if t not in present]
        if unknown:
            listed = ", ".join(sorted(present))
            raise BadInputError(
                f"--layers: no leaf module of type {', '.join(unknown)} in this model (types: {listed})"
            )
        chosen = [(n, m) for n, m in leaves if type(m).__name__ in layers]
        what = f"layers of type {','.join(layers)}"
    if match:
        try:
            pattern = re.compile(match)
        except re.error as exc:
            raise BadInputError(f"--match {match!r}: not a regular expression ({exc})") from exc
        chosen = [(n, m) for n, m in chosen if pattern.search(n)]
        if not chosen:
            raise BadInputError(
                f"--match {match!r} matches none of the {what} (see `visionbench trace MODEL --rows -1`)"
            )
    if not chosen:
        raise BadInputError(f"this model has no {what} to dissect (try --layers all)")
    return chosen
