"""Channel grids composed with numpy and Pillow (fast enough to keep up with a forward pass; matplotlib is not).

Normalisation, the same for every channel of every layer: each channel is mapped linearly from its own
minimum (black) to its own maximum (white) over its finite values; a constant channel is mid-grey and
NaN/Inf pixels are drawn red. Channels run left to right, top to bottom. Tiles are scaled by an integer
factor to at least 32 px (nearest neighbour) and subsampled by an integer stride to at most 192 px, so small
maps stay visible and big ones stay cheap to encode; the NPY files hold the full-resolution values.
"""

from __future__ import annotations

import math
import re
import struct
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

MIN_TILE, MAX_TILE, GAP, TITLE_PX = 32, 192, 2, 18
BACKGROUND = 40
BAD_RGB = (220, 40, 40)
# zlib level of the per-layer grids. 0 (stored): feature maps are noisy, level 1 compresses them only ~3x at
# ~1 ms per grid, which alone is ~90 ms for yolo11n's 88 conv layers (a whole forward); the NPYs are bigger anyway
PNG_LEVEL = 0


@lru_cache(maxsize=4)
def font(size: int = 12) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType
        return ImageFont.load_default()


def normalise(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """[C, H, W] float -> uint8 [C, H, W], each channel min..max -> 0..255; plus a mask of non-finite pixels."""
    maps = np.asarray(maps, dtype=np.float32)
    bad = None
    if not np.isfinite(maps).all():
        bad = ~np.isfinite(maps)
        maps = np.where(bad, np.nan, maps)
        lo, hi = np.nanmin(maps, axis=(1, 2)), np.nanmax(maps, axis=(1, 2))
        lo, hi = np.nan_to_num(lo), np.nan_to_num(hi)
        maps = np.nan_to_num(maps)
    else:
        lo, hi = maps.min(axis=(1, 2)), maps.max(axis=(1, 2))
    span = hi - lo
    scale = np.where(span > 0, 255.0 / np.where(span > 0, span, 1.0), 0.0).astype(np.float32)
    out = (maps - lo[:, None, None]) * scale[:, None, None]
    out[span <= 0] = 127.5
    return (out + 0.5).astype(np.uint8), bad


def fit_tile(maps: np.ndarray) -> np.ndarray:
    """Integer upscale (nearest) or stride so the longer side lies in [MIN_TILE, MAX_TILE] where possible."""
    h, w = maps.shape[-2:]
    side = max(h, w)
    if side < MIN_TILE:
        k = max(1, MIN_TILE // side)
        return maps.repeat(k, axis=-2).repeat(k, axis=-1) if k > 1 else maps
    if side > MAX_TILE:
        k = math.ceil(side / MAX_TILE)
        return maps[..., ::k, ::k]
    return maps


def grid(tiles: np.ndarray, bad: np.ndarray | None = None, labels: list[str] | None = None, cols: int | None = None,
         title: str = "") -> Image.Image:  # fmt: skip
    """uint8 [N, h, w] tiles -> one image: a title band, then tiles in rows (RGB only when something is red)."""
    n, h, w = tiles.shape
    cols = cols or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    label_px = 13 if labels else 0
    cell_h, cell_w = h + label_px + GAP, w + GAP
    width = max(cols * cell_w + GAP, 320)
    canvas = np.full((TITLE_PX + rows * cell_h + GAP, width), BACKGROUND, np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = TITLE_PX + r * cell_h + label_px + GAP, c * cell_w + GAP
        canvas[y : y + h, x : x + w] = tiles[i]
    image = Image.fromarray(canvas)
    if bad is not None and bad.any():
        image = image.convert("RGB")
        rgb = np.asarray(image).copy()
        for i in np.flatnonzero(bad.reshape(n, -1).any(axis=1)):
            r, c = divmod(int(i), cols)
            y, x = TITLE_PX + r * cell_h + label_px + GAP, c * cell_w + GAP
            rgb[y : y + h, x : x + w][bad[i]] = BAD_RGB
        image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    fill = 255 if image.mode == "L" else (255, 255, 255)
    draw.text((GAP + 2, 2), title, fill=fill, font=font(12))
    if labels:
        for i, text in enumerate(labels[:n]):
            r, c = divmod(i, cols)
            draw.text((c * cell_w + GAP + 1, TITLE_PX + r * cell_h + 1), text, fill=fill, font=font(10))
    return image


def channel_grid(maps: np.ndarray, title: str) -> Image.Image:
    """[C, H, W] float channels -> a labelled grid, every channel normalised on its own (see module doc)."""
    tiles, bad = normalise(maps)
    tiles = fit_tile(tiles)
    if bad is not None:
        bad = fit_tile(bad)
    return grid(tiles, bad, None, title=title)


def png_bytes(pixels: np.ndarray, level: int = PNG_LEVEL) -> bytes:
    """uint8 [H, W] (grey) or [H, W, 3] (RGB) -> PNG: no row filter, one zlib stream.

    2x faster than Pillow's encoder (which tries filters row by row) and zlib releases the GIL, so the two
    writer threads really run in parallel; files are about as small as Pillow's at the same level."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    raw = np.zeros((h, 1 + w * channels), np.uint8)  # first byte of each row: filter type 0 (none)
    raw[:, 1:] = pixels.reshape(h, w * channels)
    header = struct.pack(">IIBBBBB", w, h, 8, 0 if channels == 1 else 2, 0, 0, 0)
    return b"".join((b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", header), _chunk(b"IDAT", zlib.compress(raw, level)),
                     _chunk(b"IEND", b"")))  # fmt: skip


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def save_png(image: Image.Image, path: Path, level: int = PNG_LEVEL) -> None:
    """Grey or RGB image -> PNG file through `png_bytes`."""
    image = image if image.mode in {"L", "RGB"} else image.convert("RGB")
    Path(path).write_bytes(png_bytes(np.asarray(image), level))


def write_maps(maps: np.ndarray, npy: np.ndarray | None, png_path: Path | None, npy_path: Path | None,
               title: str, channels: int, level: int = PNG_LEVEL) -> None:  # fmt: skip
    """Writer job: one layer's channel grid and/or NPY (`maps` [C, H, W] of image 0, `npy` [B, k, H, W])."""
    if npy is not None and npy_path is not None:
        np.save(npy_path, npy)
    if png_path is not None and channels > 0:
        save_png(channel_grid(maps[:channels], title), png_path, level)


def write_patches(norms: np.ndarray, labels: list[str], path: Path, title: str) -> None:
    """Writer job: per-patch token-norm maps [P, h, w], one tile per patch, labelled by scale.

    One shared range for all patches (unlike channel grids), so the scales can be compared."""
    p, h, w = norms.shape
    tiles, bad = normalise(norms.reshape(1, p * h, w))
    tiles, bad = tiles.reshape(p, h, w), None if bad is None else bad.reshape(p, h, w)
    if max(h, w) < 64:
        k = 64 // max(h, w) + 1
        tiles, bad = tiles.repeat(k, 1).repeat(k, 2), None if bad is None else bad.repeat(k, 1).repeat(k, 2)
    labels = [re.sub(r"^scale (\S+) \(\d+x\d+\) #(\d+)$", r"x\1 #\2", label) for label in labels]
    tiles = fit_tile(tiles)
    cols = 5 if len(tiles) >= 25 else None
    save_png(grid(tiles, None if bad is None else fit_tile(bad), labels, cols=cols, title=title), path)
