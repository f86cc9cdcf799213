"""Transformer token outputs [batch, tokens, dim] as pictures: drop class/register tokens, reshape to the patch grid.

The grid comes from the model (`VisionModel.token_layout(batch)`), never guessed from the token count alone;
an output whose token count does not fit the grid (an attention projection of another length, a pooled
vector) is simply not pictured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class TokenLayout:
    """How one model's encoder outputs map to a patch grid."""

    prefix_tokens: int  # class + register tokens before the patch tokens
    grid: tuple[int, int]  # (rows, cols) of patches
    module_prefixes: tuple[str, ...]  # module paths whose outputs follow this layout
    patch_scales: tuple[str, ...] = field(default=())  # DepthPro: label of each patch on the batch axis

    @classmethod
    def from_model(cls, model: Any, batch: Any = None) -> TokenLayout | None:
        try:
            raw = model.token_layout(batch)
        except TypeError:  # adapters written against the older, argument-less signature
            raw = model.token_layout()
        if not raw:
            return None
        return cls(
            prefix_tokens=int(raw.get("prefix_tokens", 0)),
            grid=(int(raw["grid"][0]), int(raw["grid"][1])),
            module_prefixes=tuple(raw.get("module_prefixes", ())),
            patch_scales=tuple(raw.get("patch_scales", ()) or ()),
        )

    def covers(self, name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in self.module_prefixes)


def tokens_to_grid(tokens: torch.Tensor, layout: TokenLayout) -> torch.Tensor | None:
    """[B, prefix + rows*cols, D] -> [B, D, rows, cols] (a view, no copy); None when the shape does not fit."""
    if tokens.dim() != 3:
        return None
    b, t, d = tokens.shape
    rows, cols = layout.grid
    if t != layout.prefix_tokens + rows * cols:  # exact count only: a shorter sequence is not this grid
        return None
    return tokens[:, layout.prefix_tokens :, :].reshape(b, rows, cols, d).permute(0, 3, 1, 2)


def patch_labels(layout: TokenLayout | None, batch_axis: int, images: int) -> list[str] | None:
    """Scale labels when this output's batch axis holds the model's patches (DepthPro: 35 per image)."""
    if layout is None or not layout.patch_scales or batch_axis != len(layout.patch_scales) * images:
        return None
    if images == 1:
        return list(layout.patch_scales)
    return [f"img {i} {label}" for i in range(images) for label in layout.patch_scales]


def whole_image_patch(layout: TokenLayout | None) -> int:
    """Index of the patch that sees the whole image (DepthPro's 1x1 scale), else 0."""
    if layout is not None:
        for i, label in enumerate(layout.patch_scales):
            if "(1x1)" in label:
                return i
    return 0
