"""Text for the dissection's pictures, set from glyphs rendered once per font.

Pillow renders every glyph again on each `ImageDraw.text` call (~15 us a glyph, ~1 ms a 60-character layer
title: for yolo11n's 88 conv grids more than the whole forward pass); here FreeType renders each glyph once
and a line is put together from them. Printable ASCII, the rule, is set and blended by one small C function
(ckernels.py builds it), a third of the numpy path's time (benchmarks/component_costs.py, `picture parts`);
numpy remains for other text, where there is no compiler, and as the reference the tests compare
the C path with, byte for byte.
"""

from __future__ import annotations

import ctypes
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from visionbench.dissect import ckernels

ENV_SWITCH = "VISIONBENCH_TEXT_KERNEL"

SOURCE = r"""
#include <stdint.h>
#include <stdlib.h>
/* Set `n` glyph codes into `canvas` [H, W, channels] (uint8, C-contiguous) with the pen's top-left at x, y:
   each glyph's whole ink (atlas columns start[c] .. + width[c], `height` rows) lies at pen + dx[c] and the pen
   moves by advance[c]; overlapping ink merges with max, then the line is blended into the canvas as
   (canvas * (255 - a) + fill * a + 127) / 255, clipped to the canvas. Codes must be printable ASCII (the
   tables have 128 entries; the caller checks). Returns -1 when out of memory. */
int64_t vb_text_u8(uint8_t *canvas, int64_t H, int64_t W, int64_t channels, int64_t x, int64_t y,
                   const uint8_t *fill, const uint8_t *codes, int64_t n, const uint8_t *atlas, int64_t atlas_w,
                   int64_t height, const int64_t *start, const int64_t *width, const int64_t *dx,
                   const int64_t *advance) {
    int64_t left = 0, right = 0, pen = 0;
    for (int64_t i = 0; i < n; i++) {
        int c = codes[i];
        if (pen + dx[c] < left) left = pen + dx[c];
        if (pen + dx[c] + width[c] > right) right = pen + dx[c] + width[c];
        pen += advance[c];
    }
    int64_t line_w = right - left;
    if (line_w <= 0 || height <= 0) return 0;
    uint8_t *line = calloc((size_t)(height * line_w), 1);
    if (!line) return -1;
    pen = -left;
    for (int64_t i = 0; i < n; i++) {
        int c = codes[i];
        for (int64_t r = 0; r < height; r++) {
            const uint8_t *src = atlas + r * atlas_w + start[c];
            uint8_t *dst = line + r * line_w + pen + dx[c];
            for (int64_t j = 0; j < width[c]; j++) dst[j] = src[j] > dst[j] ? src[j] : dst[j];
        }
        pen += advance[c];
    }
    for (int64_t r = 0; r < height; r++) {
        int64_t cy = y + r;
        if (cy < 0 || cy >= H) continue;
        for (int64_t j = 0; j < line_w; j++) {
            int64_t cx = x + left + j;
            uint32_t a = line[r * line_w + j];
            if (cx < 0 || cx >= W || a == 0) continue; /* no ink leaves a pixel as it is */
            uint8_t *px = canvas + (cy * W + cx) * channels;
            for (int64_t k = 0; k < channels; k++) px[k] = (uint8_t)((px[k] * (255 - a) + fill[k] * a + 127) / 255);
        }
    }
    free(line);
    return 0;
}
"""


@lru_cache(maxsize=1)
def load_kernel() -> ctypes.CDLL | None:
    """The compiled text function, built on first use; None where it cannot be (then numpy sets the text)."""
    p, i64 = ctypes.c_void_p, ctypes.c_int64
    text = ctypes.c_char_p
    signature = ([p, i64, i64, i64, i64, i64, text, text, i64, p, i64, i64, p, p, p, p], i64)
    return ckernels.load("text", SOURCE, {"vb_text_u8": signature}, ENV_SWITCH)


@lru_cache(maxsize=4)
def font(size: int = 12) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType
        return ImageFont.load_default()


class Glyph(NamedTuple):
    cell: np.ndarray  # [line height, advance] coverage: the ink that falls inside the glyph's own advance
    spill: tuple[tuple[int, np.ndarray], ...]  # (x from the pen, coverage) of ink outside it, e.g. a comma's tail
    ink: np.ndarray  # [line height, width] all of it, its first column at `dx` from the pen (dx <= 0)
    dx: int


class GlyphText:
    """Text set from glyphs rendered once per font (see the module doc).

    A line is the glyphs' cells side by side (one `concatenate`, few GIL-holding steps, so writer threads
    do not queue behind each other), plus the rare ink that reaches into a neighbour merged with `max`, as
    Pillow merges one string. Glyphs sit at FreeType's hinted integer advances, so the ink matches
    `ImageDraw.text` to a grey level or two where glyphs touch (the default font has no kerning pairs).
    Safe from several threads: at worst two of them render the same glyph once each."""

    def __init__(self, typeface: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> None:
        self.font = typeface
        ascent, descent = typeface.getmetrics() if hasattr(typeface, "getmetrics") else (typeface.getbbox("Ag")[3], 0)
        self.height = max(int(ascent) + int(descent), int(typeface.getbbox("Agj|_,")[3]))
        self._glyphs: dict[str, Glyph] = {}

    def _glyph(self, char: str) -> Glyph:
        glyph = self._glyphs.get(char)
        if glyph is not None:
            return glyph
        left, top, right, bottom = (int(v) for v in self.font.getbbox(char))
        advance = max(int(round(self.font.getlength(char))), 0)
        x0 = min(left, 0)
        line = np.zeros((self.height, max(right, advance) - x0), np.uint8)  # pen at column -x0, ascender row 0
        if right > left and bottom > top:
            image = Image.new("L", (right - left, bottom - top))
            ImageDraw.Draw(image).text((-left, -top), char, fill=255, font=self.font)
            rows = slice(max(top, 0), min(bottom, self.height))
            ink = np.asarray(image)[rows.start - top : rows.stop - top]
            line[rows, left - x0 : right - x0] = ink
        spill = tuple(
            (x + x0, part)
            for x, part in ((0, line[:, : -x0]), (advance - x0, line[:, advance - x0 :]))
            if part.size and part.any()
        )  # fmt: skip
        glyph = self._glyphs[char] = Glyph(np.ascontiguousarray(line[:, -x0 : advance - x0]), spill, line, x0)
        return glyph

    def mask(self, text: str) -> tuple[np.ndarray, int]:
        """Coverage 0..255 of `text` [line height, width] (ascender at row 0) and the pen's column in it
        (above 0 only when the first glyph's ink reaches left of the pen)."""
        if _printable_ascii(text):
            codes = np.frombuffer(text.encode("ascii"), np.uint8)
            atlas, starts, widths, spilling = self._ascii_atlas()
            w = widths[codes]
            pens = np.cumsum(w) - w
            # one gather: column j of the line is column (start of its glyph + j - pen of its glyph) of the atlas
            body = atlas[:, np.repeat(starts[codes] - pens, w) + np.arange(int(w.sum()))]
            extra = [(int(pens[i]), self._glyph(text[i])) for i in np.flatnonzero(spilling[codes])]
            return self._with_spills(body, [(pen + dx, part) for pen, g in extra for dx, part in g.spill])
        glyphs = [self._glyph(c) for c in text]
        spills, pen = [], 0
        for g in glyphs:
            spills.extend((pen + dx, part) for dx, part in g.spill)
            pen += g.cell.shape[1]
        body = np.concatenate([np.zeros((self.height, 0), np.uint8), *(g.cell for g in glyphs)], axis=1)
        return self._with_spills(body, spills)

    def _with_spills(self, body: np.ndarray, spills: list[tuple[int, np.ndarray]]) -> tuple[np.ndarray, int]:
        """The line's cells plus the ink that reaches past them, merged with `max`."""
        if not spills:
            return body, 0
        left = max([0, *(-x for x, _ in spills)])
        right = max([0, *(x + part.shape[1] - body.shape[1] for x, part in spills)])
        strip = np.zeros((self.height, left + body.shape[1] + right), np.uint8)
        strip[:, left : left + body.shape[1]] = body
        for x, part in spills:
            region = strip[:, left + x : left + x + part.shape[1]]
            np.maximum(region, part, out=region)
        return strip, left

    @lru_cache(maxsize=1)  # noqa: B019 - one atlas per font object, which lives as long as the process
    def _ascii_atlas(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The printable ASCII glyph cells side by side, with each one's start, width and whether it spills."""
        glyphs = self._ascii_glyphs()
        atlas, starts, widths = _side_by_side({code: g.cell for code, g in glyphs.items()})
        spilling = np.zeros(128, bool)
        for code, g in glyphs.items():
            spilling[code] = bool(g.spill)
        return atlas, starts, widths, spilling

    @lru_cache(maxsize=1)  # noqa: B019 - as _ascii_atlas
    def _ink_atlas(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[int]]:
        """Every printable ASCII glyph's whole ink side by side, for the C path: the atlas, each glyph's start,
        width, dx and advance (indexed by code), and the arrays' addresses."""
        glyphs = self._ascii_glyphs()
        atlas, start, width = _side_by_side({code: g.ink for code, g in glyphs.items()})
        dx, advance = np.zeros(128, np.int64), np.zeros(128, np.int64)
        for code, g in glyphs.items():
            dx[code], advance[code] = g.dx, g.cell.shape[1]
        return atlas, start, width, dx, advance, [a.ctypes.data for a in (atlas, start, width, dx, advance)]

    def _ascii_glyphs(self) -> dict[int, Glyph]:
        return {code: self._glyph(chr(code)) for code in range(32, 127)}

    def draw(self, canvas: np.ndarray, xy: tuple[int, int], text: str, fill: int | tuple[int, int, int]) -> None:
        """Blend `text` into uint8 `canvas` ([H, W] grey or [H, W, 3] RGB) in place, pen at `xy` (top left)."""
        kernel = load_kernel()
        channels = 1 if canvas.ndim == 2 else canvas.shape[2]
        colour = _colour(fill, channels)
        if (kernel is not None and colour is not None and _printable_ascii(text) and canvas.dtype == np.uint8
                and canvas.flags.c_contiguous):  # fmt: skip
            atlas, *_, addresses = self._ink_atlas()
            a, start, width, dx, advance = addresses
            h, w = canvas.shape[:2]
            kernel.vb_text_u8(canvas.ctypes.data, h, w, channels, xy[0], xy[1], colour, text.encode("ascii"),
                              len(text), a, atlas.shape[1], self.height, start, width, dx, advance)  # fmt: skip
            return
        self.draw_numpy(canvas, xy, text, fill)

    def draw_numpy(self, canvas: np.ndarray, xy: tuple[int, int], text: str, fill: int | tuple[int, int, int]) -> None:
        """`draw` with numpy: for text that is not printable ASCII, without a compiler, and the C path's
        reference."""
        strip, pen = self.mask(text)
        x, y = xy[0] - pen, xy[1]
        h, w = canvas.shape[:2]
        x1, y1 = min(x + strip.shape[1], w), min(y + strip.shape[0], h)
        if x1 <= max(x, 0) or y1 <= max(y, 0):
            return
        alpha = strip[max(-y, 0) : y1 - y, max(-x, 0) : x1 - x].astype(np.uint16)
        region = canvas[max(y, 0) : y1, max(x, 0) : x1]
        if region.ndim == 3:
            alpha = alpha[..., None]
        ink = np.asarray(fill, np.uint16)
        region[...] = ((region * (255 - alpha) + ink * alpha + 127) // 255).astype(np.uint8)


def _side_by_side(parts: dict[int, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Glyph images of equal height in one C-contiguous strip, with each one's start and width by code."""
    starts, widths = np.zeros(128, np.int64), np.zeros(128, np.int64)
    x = 0
    for code, part in parts.items():
        starts[code], widths[code] = x, part.shape[1]
        x += part.shape[1]
    return np.ascontiguousarray(np.concatenate(list(parts.values()), axis=1)), starts, widths


def _printable_ascii(text: str) -> bool:
    """Text the atlases cover (codes 32-126)."""
    return text.isascii() and text.isprintable()


@lru_cache(maxsize=64)
def _colour(fill: int | tuple[int, ...], channels: int) -> bytes | None:
    """The fill as one byte per channel (None when it does not match the canvas's channels)."""
    values = (fill,) * channels if isinstance(fill, int) else tuple(fill)
    return bytes(values) if len(values) == channels and all(0 <= v <= 255 for v in values) else None


@lru_cache(maxsize=4)
def glyph_text(size: int = 12) -> GlyphText:
    return GlyphText(font(size))
