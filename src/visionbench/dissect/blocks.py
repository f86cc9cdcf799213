"""`--blocks 0,12,23`: capture those transformer blocks' outputs in every encoder and compare them in one figure.

Each row of `blocks_<encoder>.png` is one block: its tokens' first three principal components as RGB (PCA
over the patch tokens of one image, each component min..max -> 0..255, signs fixed so the largest
projection is positive), then the first channels as grey maps. Early blocks show texture, late ones parts
and objects. For DepthPro's patch encoder the patch that sees the whole image (scale 0.25) is shown.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn

from visionbench.dissect.hooks import flatten
from visionbench.dissect.pictures import font, normalise, save_png
from visionbench.dissect.stats import StatsEngine
from visionbench.dissect.tokens import TokenLayout, patch_labels, tokens_to_grid, whole_image_patch
from visionbench.errors import BadInputError, UnsupportedOptionError

CHANNELS = 4
TILE = 128


def _block_list(root: nn.Module, prefix: str) -> tuple[str, nn.ModuleList] | None:
    """The longest ModuleList of Layer/Block modules under `prefix` (the encoder's stack of blocks)."""
    found = [
        (n, m) for n, m in root.named_modules()
        if n.startswith(prefix + ".") and isinstance(m, nn.ModuleList) and len(m)
        and re.search(r"(Layer|Block)$", type(m[0]).__name__)
    ]  # fmt: skip
    return max(found, key=lambda nm: len(nm[1])) if found else None


class BlockCapture:
    """Hooks on the chosen blocks; PCA and channel maps computed on the device, small results kept."""

    def __init__(self, layout: TokenLayout, modules: list[tuple[str, nn.Module]], where: dict[str, tuple[str, int]],
                 engine: StatsEngine, folder: Path, images: int) -> None:  # fmt: skip
        self.layout, self.modules, self.where = layout, modules, where
        self.engine, self.folder, self.images = engine, folder, images
        self.rows: dict[str, list[dict[str, Any]]] = {}

    @classmethod
    def plan(cls, root: nn.Module, layout: TokenLayout | None, indices: list[int], engine: StatsEngine,
             folder: Path, images: int) -> BlockCapture:  # fmt: skip
        """Resolve indices per encoder (negative from the end); an index outside any encoder is a BadInputError."""
        if layout is None or not layout.module_prefixes:
            raise UnsupportedOptionError("--blocks: this model has no transformer encoder to capture blocks from")
        modules: list[tuple[str, nn.Module]] = []
        where: dict[str, tuple[str, int]] = {}
        for prefix in layout.module_prefixes:
            found = _block_list(root, prefix)
            if found is None:
                continue
            list_name, blocks = found
            for i in indices:
                j = i + len(blocks) if i < 0 else i
                if not 0 <= j < len(blocks):
                    raise BadInputError(f"--blocks {i}: {prefix} has {len(blocks)} blocks (0 to {len(blocks) - 1})")
                name = f"{list_name}.{j}"
                if name not in where:
                    modules.append((name, blocks[j]))
                    where[name] = (prefix, j)
        if not modules:
            raise UnsupportedOptionError("--blocks: no stack of transformer blocks found in this model's encoders")
        return cls(layout, modules, where, engine, folder, images)

    def hook(self, name: str, _module: nn.Module, _inputs: Any, output: Any) -> None:
        tensor = next((v for _, v in flatten(output) if isinstance(v, torch.Tensor)), None)
        if tensor is None:
            return
        prefix, block = self.where[name]
        row: dict[str, Any] = {"encoder": prefix, "block": block, "name": name, "shape": list(tensor.shape)}
        row["slot"] = self.engine.add(tensor)
        grid = tokens_to_grid(tensor.detach(), self.layout)
        if grid is not None:
            labels = patch_labels(self.layout, grid.shape[0], self.images)
            pick = whole_image_patch(self.layout) if labels else 0
            row["shown"] = labels[pick] if labels else "image 0"
            maps = grid[pick].float()  # [D, rows, cols]
            row["pca"] = pca_rgb(maps)
            row["channels"] = maps[:CHANNELS].cpu().numpy()
        self.rows.setdefault(prefix, []).append(row)

    def finish(self, stats: list[dict[str, float]]) -> list[dict[str, Any]]:
        """Block records (statistics, figure path) and one comparison figure per encoder."""
        out = []
        for prefix, rows in self.rows.items():
            rows.sort(key=lambda r: r["block"])
            path = None
            if any("pca" in r for r in rows):
                path = f"blocks_{re.sub(r'[^A-Za-z0-9_-]', '_', prefix)}.png"
                save_png(comparison_figure(rows, prefix), self.folder / path)
            for r in rows:
                s = stats[r["slot"]]
                out.append({
                    "encoder": prefix, "block": r["block"], "name": r["name"], "shape": r["shape"],
                    "shown": r.get("shown"), "figure": path,
                    **{k: s[k] for k in ("min", "max", "mean", "std")},
                })  # fmt: skip
        return out


def pca_rgb(maps: torch.Tensor) -> np.ndarray:
    """[D, rows, cols] -> uint8 [rows, cols, 3]: the first 3 principal components of the tokens."""
    d, rows, cols = maps.shape
    x = maps.reshape(d, rows * cols).T  # [N, D]
    x = (x.cpu() if x.device.type == "mps" else x).double()  # MPS has no float64
    x = x - x.mean(dim=0, keepdim=True)
    u, s, _ = torch.linalg.svd(x, full_matrices=False)
    proj = u[:, :3] * s[:3]  # projections on the principal axes
    if proj.shape[1] < 3:
        proj = torch.cat([proj, proj.new_zeros(proj.shape[0], 3 - proj.shape[1])], dim=1)
    idx = proj.abs().argmax(dim=0)
    signs = torch.sign(proj[idx, torch.arange(3)])
    proj = proj * torch.where(signs == 0, torch.ones_like(signs), signs)
    lo, hi = proj.amin(dim=0), proj.amax(dim=0)
    rgb = (proj - lo) / torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    return (rgb.reshape(rows, cols, 3).clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()


def _tile(rgb: np.ndarray) -> Image.Image:
    h, w = rgb.shape[:2]
    k = max(1, TILE // max(h, w))
    return Image.fromarray(rgb).resize((w * k, h * k), Image.NEAREST)


def comparison_figure(rows: list[dict[str, Any]], prefix: str) -> Image.Image:
    """One row per block: PCA RGB, then the first channels (each min..max, grey)."""
    tiles = []
    for r in rows:
        row_tiles = []
        if "pca" in r:
            row_tiles.append(_tile(r["pca"]))
            grey, _ = normalise(r["channels"])
            row_tiles += [_tile(np.repeat(g[:, :, None], 3, axis=2)) for g in grey]
        tiles.append(row_tiles)
    th = max((t.height for row in tiles for t in row), default=TILE)
    tw = max((t.width for row in tiles for t in row), default=TILE)
    ncols = max((len(row) for row in tiles), default=1)
    left, top, gap = 70, 40, 4
    image = Image.new("RGB", (left + ncols * (tw + gap), top + len(rows) * (th + gap)), (40, 40, 40))
    draw = ImageDraw.Draw(image)
    shown = next((r.get("shown") for r in rows if r.get("shown")), "")
    draw.text(
        (4, 2), f"{prefix} ({shown}): blocks {', '.join(str(r['block']) for r in rows)}", fill="white", font=font(12)
    )
    heads = ["PCA 1-3 as RGB"] + [f"channel {i}" for i in range(ncols - 1)]
    for c, text in enumerate(heads):
        draw.text((left + c * (tw + gap), 22), text, fill="white", font=font(10))
    for i, (r, row_tiles) in enumerate(zip(rows, tiles, strict=True)):
        y = top + i * (th + gap)
        draw.text((4, y + th // 2 - 6), f"block {r['block']}", fill="white", font=font(11))
        for c, t in enumerate(row_tiles):
            image.paste(t, (left + c * (tw + gap), y))
    return image
