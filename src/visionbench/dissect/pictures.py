"""Channel grids composed with numpy and Pillow (fast enough to keep up with a forward pass; matplotlib is not).

Normalisation, the same for every channel of every layer: each channel is mapped linearly from its own
minimum (black) to its own maximum (white) over all its finite values (also those a subsampled tile does
not show); a constant channel is mid-grey and NaN/Inf pixels are drawn red. Channels run left to right, top
to bottom. Tiles are scaled by an integer factor to at least 32 px (nearest neighbour) and subsampled by an
integer stride to at most 192 px, so small maps stay visible and big ones stay cheap to encode; the NPY
files hold the full-resolution values.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np
from PIL import Image

from visionbench.dissect import tile_kernel

try:  # zlib's API with SIMD adler32 and crc32: a stored PNG is mostly checksum work (README, dependencies)
    from zlib_ng import zlib_ng as zlib
except ImportError:  # pragma: no cover - an install without the wheel: the standard library's, slower
    import zlib  # type: ignore[no-redef]
from visionbench.dissect.glyphs import glyph_text

MIN_TILE, MAX_TILE, GAP, TITLE_PX = 32, 192, 2, 18
BACKGROUND = 40
BAD_RGB = (220, 40, 40)
# zlib level of the per-layer grids. 0 (stored): feature maps are noisy, level 1 compresses them only ~3x at
# ~1 ms per grid, which alone is ~90 ms for yolo11n's 88 conv layers (a whole forward); the NPYs are bigger anyway
PNG_LEVEL = 0


def normalise(maps: np.ndarray, stride: int = 1) -> tuple[np.ndarray, np.ndarray | None]:
    """[C, H, W] float -> uint8 [C, H/stride, W/stride], each channel min..max -> 0..255; plus a mask of
    non-finite pixels (None when there are none).

    The range is each channel's own over all its pixels, but only the pixels shown (every `stride`-th) are
    scaled: for big maps that is a fraction of the work. NaN/Inf show up in min/max, so finite maps (the rule)
    cost two reductions and no mask."""
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


def tile_scale(h: int, w: int) -> tuple[int, int]:
    """(integer upscale, stride) that bring the longer side into [MIN_TILE, MAX_TILE] where possible."""
    side = max(h, w)
    if side < MIN_TILE:
        return max(1, MIN_TILE // max(side, 1)), 1
    if side > MAX_TILE:
        return 1, math.ceil(side / MAX_TILE)
    return 1, 1


def fit_tile(maps: np.ndarray) -> np.ndarray:
    """Integer upscale (nearest) or stride so the longer side lies in [MIN_TILE, MAX_TILE] where possible."""
    up, stride = tile_scale(*maps.shape[-2:])
    if up > 1:
        return maps.repeat(up, axis=-2).repeat(up, axis=-1)
    return maps[..., ::stride, ::stride] if stride > 1 else maps


class GridLayout(NamedTuple):
    """Where each of `n` tiles of h x w goes: a title band, then rows of cells (label band, tile, gap)."""

    shape: tuple[int, int]  # canvas (height, width)
    corners: list[tuple[int, int]]  # each tile's top-left (y, x)
    label_corners: list[tuple[int, int]]  # each label's pen position (x, y), when there are labels

    @classmethod
    def plan(cls, n: int, h: int, w: int, labels: bool = False, cols: int | None = None) -> GridLayout:
        cols = cols or max(1, math.ceil(math.sqrt(n)))
        rows = math.ceil(n / cols)
        label_px = 13 if labels else 0
        cell_h, cell_w = h + label_px + GAP, w + GAP
        cells = [divmod(i, cols) for i in range(n)]
        corners = [(TITLE_PX + r * cell_h + label_px + GAP, c * cell_w + GAP) for r, c in cells]
        pens = [(c * cell_w + GAP + 1, TITLE_PX + r * cell_h + 1) for r, c in cells] if labels else []
        return cls((TITLE_PX + rows * cell_h + GAP, max(cols * cell_w + GAP, 320)), corners, pens)

    def blank(self) -> np.ndarray:
        return np.full(self.shape, BACKGROUND, np.uint8)


def grid(tiles: np.ndarray, bad: np.ndarray | None = None, labels: list[str] | None = None, cols: int | None = None,
         title: str = "") -> np.ndarray:  # fmt: skip
    """uint8 [N, h, w] tiles -> one picture, uint8 [H, W] grey or [H, W, 3] RGB (only when something is red):
    a title band, then tiles in rows."""
    n, h, w = tiles.shape
    layout = GridLayout.plan(n, h, w, bool(labels), cols)
    canvas = layout.blank()
    for i, (y, x) in enumerate(layout.corners):
        canvas[y : y + h, x : x + w] = tiles[i]
    if bad is not None and bad.any():
        canvas = np.repeat(canvas[..., None], 3, axis=2)
        for i in np.flatnonzero(bad.reshape(n, -1).any(axis=1)):
            y, x = layout.corners[i]
            canvas[y : y + h, x : x + w][bad[i]] = BAD_RGB
    return annotate(canvas, layout, title, labels)


def annotate(canvas: np.ndarray, layout: GridLayout, title: str, labels: list[str] | None = None) -> np.ndarray:
    """White title (and tile labels) drawn into a grey or RGB canvas, which is returned.

    Pictures stay numpy arrays up to the PNG encoder: a round trip through a PIL image would copy every
    pixel twice while holding the GIL."""
    white: int | tuple[int, int, int] = 255 if canvas.ndim == 2 else (255, 255, 255)
    glyph_text(12).draw(canvas, (GAP + 2, 2), title, white)
    if labels:
        small = glyph_text(10)
        for pen, text in zip(layout.label_corners, labels, strict=False):
            small.draw(canvas, pen, text, white)
    return canvas


def channel_grid(maps: np.ndarray, title: str) -> np.ndarray:
    """[C, H, W] float channels -> a labelled grid, every channel normalised on its own (see module doc).

    The C tile kernel draws it where it is available and every value is finite; numpy otherwise."""
    up, stride = tile_scale(*maps.shape[-2:])
    kernel = tile_kernel.load_kernel()
    if kernel is not None:
        c, h, w = maps.shape
        layout = GridLayout.plan(c, -(-h // stride) * up, -(-w // stride) * up)
        canvas = layout.blank()
        if tile_kernel.draw_tiles(maps, stride, up, canvas, layout.corners, kernel):
            return annotate(canvas, layout, title)
    return numpy_grid(maps, title)


def numpy_grid(maps: np.ndarray, title: str) -> np.ndarray:
    """`channel_grid` drawn with numpy: the fallback (NaN/Inf, no compiler) and the kernel's reference."""
    up, stride = tile_scale(*maps.shape[-2:])
    tiles, bad = normalise(maps, stride)
    if up > 1:
        tiles = tiles.repeat(up, axis=-2).repeat(up, axis=-1)
        bad = None if bad is None else bad.repeat(up, axis=-2).repeat(up, axis=-1)
    return grid(tiles, bad, None, title=title)


def png_chunks(pixels: np.ndarray, level: int = PNG_LEVEL) -> list[bytes]:
    """uint8 [H, W] (grey) or [H, W, 3] (RGB) -> the pieces of a PNG: no row filter, one zlib stream.

    2x faster than Pillow's encoder (which tries filters row by row), and zlib releases the GIL; files are
    about as small as Pillow's at the same level. Kept as pieces so a file is written without joining them
    into one more copy."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    raw = np.zeros((h, 1 + w * channels), np.uint8)  # first byte of each row: filter type 0 (none)
    raw[:, 1:] = pixels.reshape(h, w * channels)
    header = struct.pack(">IIBBBBB", w, h, 8, 0 if channels == 1 else 2, 0, 0, 0)
    return [b"\x89PNG\r\n\x1a\n", *_chunk(b"IHDR", header), *_chunk(b"IDAT", zlib.compress(raw, level)),
            *_chunk(b"IEND", b"")]  # fmt: skip


def _chunk(kind: bytes, data: bytes) -> tuple[bytes, bytes, bytes]:
    crc = zlib.crc32(data, zlib.crc32(kind)) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind, data, struct.pack(">I", crc)


@contextlib.contextmanager
def rewrite(path: str | Path) -> Iterator[BinaryIO]:
    """Open `path` for writing over what is there, then cut what is left of a longer old file.

    Not `open(path, "wb")`: ext4 flushes a file truncated to zero and rewritten at close (its auto_da_alloc
    safeguard), and unlinking first makes a new inode; either made re-running a dissection into the same
    folder write 2-4x slower. Writing in place over the old blocks costs what writing a new file costs."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o666)
    with os.fdopen(fd, "wb") as f:
        yield f
        f.truncate()  # at the current position (flushes first)


def save_png(picture: Image.Image | np.ndarray, path: str | Path, level: int = PNG_LEVEL) -> None:
    """Grey or RGB picture (uint8 array, or a PIL image) -> PNG file through `png_chunks`."""
    if isinstance(picture, Image.Image):
        picture = np.asarray(picture if picture.mode in {"L", "RGB"} else picture.convert("RGB"))
    with rewrite(path) as f:
        f.writelines(png_chunks(picture, level))


def write_maps(host: np.ndarray, shown: int, npy_channels: int, png_path: str | Path | None,
               npy_path: str | Path | None, title: str, channels: int, level: int = PNG_LEVEL) -> None:  # fmt: skip
    """Writer job: one layer's channel grid and/or NPY from the host copy `host` [B, k, H, W]: the grid of
    the first `channels` of image `shown`, the NPY of the first `npy_channels` of every image."""
    if npy_channels and npy_path is not None:
        with rewrite(npy_path) as f:
            np.save(f, host[:, :npy_channels])
    if png_path is not None and channels > 0:
        save_png(channel_grid(host[shown, :channels], title), png_path, level)


def write_patches(norms: np.ndarray, labels: list[str], path: str | Path, title: str) -> None:
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
