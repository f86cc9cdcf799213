"""Token outputs [B, tokens, dim] -> patch grid [B, dim, rows, cols] on known grids; DepthPro patch labels."""

from __future__ import annotations

import os

import pytest
import torch

import visionbench as vb
from visionbench.dissect.tokens import TokenLayout, patch_labels, tokens_to_grid, whole_image_patch

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.mark.parametrize("prefix", [0, 1, 5])  # none, class token, class + 4 register tokens
def test_known_grid(prefix):
    rows, cols, dim = 3, 4, 2
    layout = TokenLayout(prefix_tokens=prefix, grid=(rows, cols), module_prefixes=("enc",))
    tokens = torch.full((2, prefix + rows * cols, dim), -1.0)
    for r in range(rows):
        for c in range(cols):
            tokens[:, prefix + r * cols + c, 0] = r
            tokens[:, prefix + r * cols + c, 1] = c
    tokens[1] += 100
    grid = tokens_to_grid(tokens, layout)
    assert grid.shape == (2, dim, rows, cols)
    assert torch.equal(grid[0, 0], torch.arange(rows).float()[:, None].expand(rows, cols))
    assert torch.equal(grid[0, 1], torch.arange(cols).float()[None, :].expand(rows, cols))
    assert torch.equal(grid[1] - 100, grid[0])
    assert tokens_to_grid(tokens[:, :-1], layout) is None  # another token count: not a grid
    assert tokens_to_grid(tokens[0], layout) is None


def test_covers_by_path_prefix():
    layout = TokenLayout(1, (2, 2), ("backbone",))
    assert layout.covers("backbone.encoder.layer.0") and layout.covers("backbone")
    assert not layout.covers("backbone2.x") and not layout.covers("head")


def test_depthpro_patch_labels_follow_the_batch_axis():
    model = vb.create_model("depthpro-tiny", device="meta", weights="random")
    layout = TokenLayout.from_model(model)
    assert len(layout.patch_scales) == 35
    assert layout.patch_scales[0].startswith("scale 1 (5x5)")  # transformers puts high resolution first
    assert layout.patch_scales[25].startswith("scale 0.5 (3x3)")
    assert whole_image_patch(layout) == 34
    assert patch_labels(layout, 35, 1) == list(layout.patch_scales)
    assert patch_labels(layout, 1, 1) is None
