"""One pass over a float32 CPU tensor for min, max, sum, sum of squares, exact zeros and near-zeros.

Why hand-written: torch has no fused reduction for these, and its fastest separate kernels (`aminmax`,
`sum`, BLAS `dot`) already cost 1.28x a yolo11n forward when run on every leaf output
(benchmarks/dissect_cost.py, `floor` row); the two counts double that. A plain C loop over 16 float
lanes per 4096-value block, which the compiler vectorises without fast-math (NaN semantics intact), reads
each value once. It is built and loaded by ckernels.py (compiled on first use into the user's cache folder;
ctypes releases the GIL, so large outputs are split across threads). No compiler, a failed build, or
VISIONBENCH_FUSED_STATS=0: the torch path in stats.py is used instead, and layers.json says which one ran.

Sums are float32 within a block of 4096 values and float64 across blocks; tests compare with numpy.
"""

from __future__ import annotations

import ctypes
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import torch

from visionbench.dissect import ckernels

ENV_SWITCH = "VISIONBENCH_FUSED_STATS"
WORKERS = max(1, min(4, os.cpu_count() or 1))
SPLIT_AT = 1 << 22  # values per thread at least: measured on 2 cores, smaller splits only added hand-off cost

SOURCE = r"""
#include <stdint.h>
/* out: min, max, sum, sum of squares, exact zeros, |x| < eps */
void vb_stats_f32(const float *x, int64_t n, float eps, double *out) {
    float mn = x[0], mx = x[0];
    double s = 0.0, ss = 0.0;
    int64_t z = 0, near = 0;
    for (int64_t a = 0; a < n; a += 4096) {
        int64_t b = a + 4096 < n ? a + 4096 : n;
        float bs[16] = {0}, bss[16] = {0}, bmn[16], bmx[16];
        int32_t bz[16] = {0}, bn[16] = {0};
        for (int j = 0; j < 16; j++) { bmn[j] = mn; bmx[j] = mx; }
        int64_t i = a;
        for (; i + 16 <= b; i += 16) {
            for (int j = 0; j < 16; j++) {
                float v = x[i + j];
                float av = v < 0 ? -v : v;
                bmn[j] = v < bmn[j] ? v : bmn[j];
                bmx[j] = v > bmx[j] ? v : bmx[j];
                bs[j] += v;
                bss[j] += v * v;
                bz[j] += (v == 0.0f);
                bn[j] += (av < eps);
            }
        }
        for (; i < b; i++) {
            float v = x[i];
            float av = v < 0 ? -v : v;
            bmn[0] = v < bmn[0] ? v : bmn[0];
            bmx[0] = v > bmx[0] ? v : bmx[0];
            bs[0] += v;
            bss[0] += v * v;
            bz[0] += (v == 0.0f);
            bn[0] += (av < eps);
        }
        for (int j = 0; j < 16; j++) {
            mn = bmn[j] < mn ? bmn[j] : mn;
            mx = bmx[j] > mx ? bmx[j] : mx;
            s += bs[j];
            ss += bss[j];
            z += bz[j];
            near += bn[j];
        }
    }
    out[0] = mn; out[1] = mx; out[2] = s; out[3] = ss; out[4] = (double)z; out[5] = (double)near;
}
"""


@lru_cache(maxsize=1)
def load_kernel() -> ctypes.CDLL | None:
    """The compiled kernel, built on first use; None where it cannot be (then stats.py uses torch)."""
    signature = ([ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_void_p], None)
    return ckernels.load("stats", SOURCE, {"vb_stats_f32": signature}, ENV_SWITCH)


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="vb-stats")


class _Out(threading.local):
    """One result buffer per thread, reused call after call."""

    def __init__(self) -> None:
        self.buffer = (ctypes.c_double * 6)()


_OUT = _Out()


def fused_stats(x: torch.Tensor, eps: float, kernel: ctypes.CDLL) -> tuple[float, float, float, float, float, float]:
    """(min, max, sum, sum of squares, zeros, near-zeros) of a non-empty contiguous float32 CPU tensor.

    Non-finite values propagate into min/max/sums (NaN, inf); the caller checks and falls back."""
    n = x.numel()
    parts = min(WORKERS, max(1, n // SPLIT_AT))
    if parts == 1:  # the common case, kept lean: it runs once per recorded output
        out = _OUT.buffer
        kernel.vb_stats_f32(x.data_ptr(), n, eps, out)
        return out[0], out[1], out[2], out[3], out[4], out[5]
    bounds = [n * i // parts for i in range(parts + 1)]
    outs = [(ctypes.c_double * 6)() for _ in range(parts)]
    base, size = x.data_ptr(), x.element_size()

    def run(i: int) -> None:
        kernel.vb_stats_f32(base + bounds[i] * size, bounds[i + 1] - bounds[i], eps, outs[i])

    list(_pool().map(run, range(parts)))
    mn = min(o[0] for o in outs)
    mx = max(o[1] for o in outs)
    if any(o[0] != o[0] or o[1] != o[1] for o in outs):  # NaN in a part: make sure the caller sees it
        mn = mx = float("nan")
    return mn, mx, sum(o[2] for o in outs), sum(o[3] for o in outs), sum(o[4] for o in outs), sum(o[5] for o in outs)
