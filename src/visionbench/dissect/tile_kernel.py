"""One C call per layer that draws its channel tiles straight into the grid canvas, outside the GIL.

Why: a layer's grid is per-channel min/max over every value, then scaling of the shown (strided) pixels to
uint8, then placing each tile. In numpy that is a dozen small calls per layer that hold the GIL between them;
two writer threads then queue behind each other and finish yolo11n's 88 conv grids slower than one thread.
The kernel does all of it in one ctypes call (which releases the GIL), with the numpy path's float32
arithmetic in the same order and no contraction into fused multiply-adds, so both give the same bytes
(tests compare them). A channel with NaN or Inf is left to the numpy path, which draws it red.
No compiler or VISIONBENCH_TILE_KERNEL=0: the numpy path draws every grid.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from visionbench.dissect import ckernels

ENV_SWITCH = "VISIONBENCH_TILE_KERNEL"

SOURCE = r"""
#include <stdint.h>
#include <string.h>
/* 16 float lanes as a GCC/clang vector type: the compiler does not vectorise a compare-and-select min/max
   reduction on its own without fast-math, and fast-math would change NaN handling */
typedef float vf __attribute__((vector_size(64)));
typedef int32_t vi __attribute__((vector_size(64)));
static inline vf pick(vi mask, vf a, vf b) { return (vf)(((vi)a & mask) | ((vi)b & ~mask)); }

/* maps: [C, H, W] float32, contiguous. For each channel: lo/hi over all H*W values; a channel holding NaN or
   Inf is not drawn and counted in the return value. Otherwise its pixels (every `stride`-th row and column,
   each repeated `up` times both ways) are mapped lo..hi -> 0..255 ((v - lo) * (255 / span) + 0.5, truncated;
   a constant channel is 128) into `canvas` (row pitch `pitch` bytes) with the tile's top-left at ys[c], xs[c]. */
int64_t vb_tiles_u8(const float *maps, int64_t C, int64_t H, int64_t W, int64_t stride, int64_t up,
                    uint8_t *canvas, int64_t pitch, const int64_t *ys, const int64_t *xs) {
    int64_t n = H * W, bad = 0;
    int64_t th = (H + stride - 1) / stride, tw = (W + stride - 1) / stride;
    for (int64_t c = 0; c < C; c++) {
        const float *m = maps + c * n;
        vf zero = {0}, mn = zero + m[0], mx = zero + m[0], nf = zero;
        int64_t i = 0;
        for (; i + 16 <= n; i += 16) {
            vf v;
            memcpy(&v, m + i, sizeof v);
            mn = pick(v < mn, v, mn);
            mx = pick(v > mx, v, mx);
            nf += v - v; /* 0 for finite values, NaN for NaN and Inf */
        }
        float lo = m[0], hi = m[0], f = 0.0f;
        for (int j = 0; j < 16; j++) {
            lo = mn[j] < lo ? mn[j] : lo;
            hi = mx[j] > hi ? mx[j] : hi;
            f += nf[j];
        }
        for (; i < n; i++) {
            float v = m[i];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
            f += v - v;
        }
        float span = hi - lo;
        if (f != f || span - span != 0.0f) { bad++; continue; } /* NaN/Inf values, or a range beyond float32 */
        float scale = span > 0.0f ? 255.0f / span : 0.0f;
        for (int64_t ty = 0; ty < th; ty++) {
            const float *row = m + ty * stride * W;
            uint8_t *out = canvas + (ys[c] + ty * up) * pitch + xs[c];
            if (up == 1 && span > 0.0f) { /* the common case, as a loop the compiler vectorises */
                for (int64_t tx = 0; tx < tw; tx++) {
                    float t = row[tx * stride] - lo;
                    t = t * scale;
                    t = t + 0.5f;
                    out[tx] = (uint8_t)(int32_t)t;
                }
                continue;
            }
            for (int64_t tx = 0; tx < tw; tx++) {
                uint8_t q = 128;
                if (span > 0.0f) {
                    float t = row[tx * stride] - lo;
                    t = t * scale;
                    t = t + 0.5f;
                    q = (uint8_t)t;
                }
                for (int64_t u = 0; u < up; u++) out[tx * up + u] = q;
            }
            for (int64_t u = 1; u < up; u++) memcpy(out + u * pitch, out, (size_t)(tw * up));
        }
    }
    return bad;
}
"""


@lru_cache(maxsize=1)
def load_kernel() -> ctypes.CDLL | None:
    """The compiled kernel, built on first use; None where it cannot be (pictures.py then uses numpy)."""
    p, i64 = ctypes.c_void_p, ctypes.c_int64
    signature = ([p, i64, i64, i64, i64, i64, p, i64, p, p], i64)
    variants = (("-ffp-contract=off", "-march=native"), ("-ffp-contract=off",))
    return ckernels.load("tiles", SOURCE, {"vb_tiles_u8": signature}, ENV_SWITCH, variants)


def draw_tiles(maps: np.ndarray, stride: int, up: int, canvas: np.ndarray, corners: Sequence[tuple[int, int]],
               kernel: ctypes.CDLL) -> bool:  # fmt: skip
    """Draw every channel of float32 `maps` [C, H, W] into the grey uint8 `canvas` at `corners` (y, x).

    False when a channel holds NaN or Inf: the caller draws the whole grid with numpy then."""
    maps = np.ascontiguousarray(maps, dtype=np.float32)
    c, h, w = maps.shape
    tile_h, tile_w = -(-h // stride) * up, -(-w // stride) * up
    if canvas.dtype != np.uint8 or canvas.ndim != 2 or not canvas.flags.c_contiguous:
        raise ValueError("canvas must be a C-contiguous 2-D uint8 array")
    if len(corners) < c or any(y < 0 or x < 0 or y + tile_h > canvas.shape[0] or x + tile_w > canvas.shape[1]
                               for y, x in corners[:c]):  # fmt: skip
        raise ValueError("a tile falls outside the canvas")  # the kernel writes without bounds checks
    ys = np.array([y for y, _ in corners[:c]], np.int64)
    xs = np.array([x for _, x in corners[:c]], np.int64)
    bad = kernel.vb_tiles_u8(maps.ctypes.data, c, h, w, stride, up, canvas.ctypes.data, canvas.strides[0],
                             ys.ctypes.data, xs.ctypes.data)  # fmt: skip
    return bad == 0
