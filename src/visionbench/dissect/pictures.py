"""Channel grids composed with numpy and written by Pillow (fast enough to keep up with a forward pass;
matplotlib is not). A grid carries no title in its pixels: its caption is the record's `caption` in
layers.json, which the report prints under the picture.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageDraw, ImageFont

NORMALISATION = (
    "Each channel is mapped linearly from its own minimum (black) to its own maximum (white) over all its finite "
    "values; a constant channel is mid-grey and NaN/Inf pixels are red. Channels run left to right, top to "
    "bottom. Tiles are scaled by an integer factor to at least 32 px (nearest neighbour) and subsampled by an "
    "integer stride to at most 192 px; the NPY files hold the full-resolution values."
)
MIN_TILE, MAX_TILE, GAP, LABEL_PX = 32, 192, 2, 13
BACKGROUND = 40
BAD_RGB = (220, 40, 40)
# Grey grids are saved as palette images with this identity ramp: Pillow filters grey and RGB rows adaptively
# (about ten times the cost of the stored zlib stream itself) but never palette rows.
GREY_RAMP = bytes(v for v in range(256) for _ in range(3))


def normalise(maps: np.ndarray, stride: int = 1) -> tuple[np.ndarray, np.ndarray | None]:
    """[C, H, W] float -> uint8 [C, H/stride, W/stride], each channel min..max -> 0..255; plus a mask of
    non-finite pixels (None when there are none).

    The range is each channel's own over all its pixels, but only the pixels shown (every `stride`-th) are
    scaled. NaN/Inf show up in min/max, so finite maps (the rule) cost two reductions and no mask."""
    maps = np.asarray(maps, dtype=np.float32)
    flat = maps.reshape(maps.shape[0], -1)
    lo, hi = flat.min(axis=1), flat.max(axis=1)
    shown = maps[:, ::stride, ::stride] if stride > 1 else maps
    bad = None
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        finite = np.isfinite(flat)
        lo = np.where(finite, flat, np.inf).min(axis=1)
        hi = np.where(finite, flat, -np.inf).max(axis=1)
        lo, hi = np.where(np.isfinite(lo), lo, 0.0), np.where(np.isfinite(hi), hi, 0.0)
        bad = ~np.isfinite(shown)
        shown = np.where(bad, lo[:, None, None], shown)
    span = hi - lo
    scale = np.where(span > 0, 255.0 / np.where(span > 0, span, 1.0), 0.0).astype(np.float32)
    out = (shown - lo[:, None, None].astype(np.float32)) * scale[:, None, None]
    out[span <= 0] = 127.5
    out += 0.5
    return out.astype(np.uint8), bad


def fit_tile(maps: np.ndarray, stride: int = 0) -> np.ndarray:
    """Integer upscale (nearest) so the longer side is at least MIN_TILE; `stride` 0 also subsamples to at
    most MAX_TILE (pass 1 for tiles already subsampled)."""
    side = max(maps.shape[-2:])
    if side < MIN_TILE:
        up = max(1, MIN_TILE // max(side, 1))
        return maps.repeat(up, axis=-2).repeat(up, axis=-1)
    stride = stride or max(1, math.ceil(side / MAX_TILE))
    return maps[..., ::stride, ::stride] if stride > 1 else maps


def grid(tiles: np.ndarray, bad: np.ndarray | None = None, labels: list[str] | None = None,
         cols: int | None = None) -> np.ndarray:  # fmt: skip
    """uint8 [N, h, w] tiles -> one picture in rows: uint8 [H, W] grey, or [H, W, 3] RGB when something is red
    (NaN/Inf) or labelled."""
    n, h, w = tiles.shape
    cols = cols or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    top = LABEL_PX if labels else 0
    cell_h, cell_w = h + top + GAP, w + GAP
    canvas = np.full((rows * cell_h + GAP, cols * cell_w + GAP), BACKGROUND, np.uint8)
    view = canvas[GAP:, GAP:].reshape(rows, cell_h, cols, cell_w)[:, top : top + h, :, :w]  # [rows, h, cols, w]
    filled = np.full((rows * cols, h, w), BACKGROUND, np.uint8)
    filled[:n] = tiles
    view[:] = filled.reshape(rows, cols, h, w).transpose(0, 2, 1, 3)
    if (bad is None or not bad.any()) and not labels:
        return canvas
    rgb = np.repeat(canvas[..., None], 3, axis=2)
    if bad is not None:
        marks = np.zeros((rows * cols, h, w), bool)
        marks[:n] = bad
        red = rgb[GAP:, GAP:].reshape(rows, cell_h, cols, cell_w, 3)[:, top : top + h, :, :w]
        red[marks.reshape(rows, cols, h, w).transpose(0, 2, 1, 3)] = BAD_RGB
    if labels:
        image = Image.fromarray(rgb)
        draw = ImageDraw.Draw(image)
        for i, text in enumerate(labels[:n]):
            r, c = divmod(i, cols)
            draw.text((GAP + c * cell_w + 1, GAP + r * cell_h), text, fill="white", font=font(10))
        rgb = np.asarray(image)
    return rgb


@lru_cache(maxsize=8)
def font(size: int = 12) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType
        return ImageFont.load_default()


def channel_grid(maps: np.ndarray) -> np.ndarray:
    """[C, H, W] float channels -> a grid, every channel normalised on its own (NORMALISATION)."""
    side = max(maps.shape[-2:])
    stride = max(1, math.ceil(side / MAX_TILE))
    tiles, bad = normalise(maps, stride)
    return grid(fit_tile(tiles, 1), None if bad is None else fit_tile(bad, 1))


@contextlib.contextmanager
def rewrite(path: str | Path) -> Iterator[BinaryIO]:
    """Open `path` for writing over what is there, then cut what is left of a longer old file.

    Not `open(path, "wb")`: ext4 flushes a file truncated to zero and rewritten at close (its auto_da_alloc
    safeguard), which made re-running a dissection into the same folder write several times slower; writing
    in place over the old blocks costs what writing a new file costs."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o666)
    with os.fdopen(fd, "wb") as f:
        yield f
        f.truncate()  # at the current position (flushes first)


def save_png(picture: Image.Image | np.ndarray, path: str | Path, level: int = 0) -> None:
    """Grey or RGB picture (uint8 array or PIL image) -> PNG through Pillow, at zlib `level` (0: stored)."""
    if isinstance(picture, Image.Image):
        image = picture
    elif picture.ndim == 2:  # grey: a palette image of the same bytes (GREY_RAMP says why)
        image = Image.frombuffer("P", picture.shape[::-1], np.ascontiguousarray(picture), "raw", "P", 0, 1)
        image.putpalette(GREY_RAMP)
    else:
        image = Image.fromarray(np.ascontiguousarray(picture))
    with rewrite(path) as f:
        image.save(f, format="PNG", compress_level=level)


def write_maps(host: np.ndarray, shown: int, npy_channels: int, png_path: str | None, npy_path: str | None,
               channels: int, level: int = 0) -> None:  # fmt: skip
    """Writer job: one layer's channel grid and/or NPY from the host copy `host` [B, k, H, W]: the grid of
    the first `channels` of image `shown`, the NPY of the first `npy_channels` of every image."""
    if npy_channels and npy_path is not None:
        with rewrite(npy_path) as f:
            np.save(f, host[:, :npy_channels])
    if png_path is not None and channels > 0:
        save_png(channel_grid(host[shown, :channels]), png_path, level)


def write_patches(norms: np.ndarray, labels: list[str], path: str) -> None:
    """Writer job: per-patch token-norm maps [P, h, w], one tile per patch, labelled by scale.

    One shared range for all patches (unlike channel grids), so the scales can be compared."""
    p, h, w = norms.shape
    tiles, bad = normalise(norms.reshape(1, p * h, w))
    tiles, bad = tiles.reshape(p, h, w), None if bad is None else bad.reshape(p, h, w)
    if max(h, w) < 64:
        k = 64 // max(h, w) + 1
        tiles, bad = tiles.repeat(k, 1).repeat(k, 2), None if bad is None else bad.repeat(k, 1).repeat(k, 2)
    labels = [re.sub(r"^scale (\S+) \(\d+x\d+\) #(\d+)$", r"x\1 #\2", label) for label in labels]
    cols = 5 if len(tiles) >= 25 else None
    save_png(grid(fit_tile(tiles), None if bad is None else fit_tile(bad), labels, cols=cols), path)
