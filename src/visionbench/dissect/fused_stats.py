"""One pass over a float32 CPU tensor for min, max, sum, sum of squares, exact zeros and near-zeros.

Why hand-written: torch has no fused reduction for these, and its fastest separate kernels (`aminmax`,
`sum`, BLAS `dot`) already cost 1.28x a yolo11n forward when run on every leaf output
(benchmarks/dissect_cost.py, `floor` row); the two counts double that. A plain C loop over 16 float
lanes per 4096-value block, which the compiler vectorises without fast-math (NaN semantics intact), reads
each value once. It is built and loaded by ckernels.py (compiled on first use into the user's cache folder).

Outputs of PARALLEL_AT values or more are split across torch's own OpenMP threads: the kernel is compiled
with -fopenmp and links libgomp.so.1, which the dynamic loader resolves to the copy torch has already
loaded, so its parallel region reuses torch's thread team, whose second thread is still spinning from the
layer that just ran. (A Python thread pool of our own only added hand-off cost: docs/benchmarks.md.) A
build that would bring a second OpenMP runtime into the process is turned down for the single-threaded
one. No compiler, a failed build, or VISIONBENCH_FUSED_STATS=0: the torch path in stats.py is used
instead, and layers.json says which one ran.

Sums are of x - x[0] (see `fused_stats`), float32 within a block of 4096 values and float64 across blocks and
threads; tests compare with numpy.
"""

from __future__ import annotations

import ctypes
import threading
from functools import lru_cache

import torch

from visionbench.dissect import ckernels

ENV_SWITCH = "VISIONBENCH_FUSED_STATS"
# values (64 KB) from which an output is split across torch's threads: in one-off A/B runs of yolo11n's all-leaf
# pass, splitting from 1 << 16 measured 1-5 ms slower and from 1 << 12 no faster
PARALLEL_AT = 1 << 14
OPENMP_RUNTIME = r"^lib(g|i)?omp"  # libgomp (GCC), libomp (LLVM), libiomp5 (Intel)

SOURCE = r"""
#include <math.h>
#include <stdint.h>
/* out: min, max, sum and sum of squares of (x - shift), exact zeros, |x| < eps */
static void stats_range(const float *x, int64_t n, float shift, float eps, double *out) {
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
                float d = v - shift;
                bmn[j] = v < bmn[j] ? v : bmn[j];
                bmx[j] = v > bmx[j] ? v : bmx[j];
                bs[j] += d;
                bss[j] += d * d;
                bz[j] -= -(v == 0.0f);  /* written so as to become a masked add, not a blend */
                bn[j] -= -(__builtin_fabsf(v) < eps);
            }
        }
        for (; i < b; i++) {
            float v = x[i];
            float d = v - shift;
            bmn[0] = v < bmn[0] ? v : bmn[0];
            bmx[0] = v > bmx[0] ? v : bmx[0];
            bs[0] += d;
            bss[0] += d * d;
            bz[0] += (v == 0.0f);
            bn[0] += (__builtin_fabsf(v) < eps);
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

#ifdef _OPENMP
#include <omp.h>
#endif
/* the whole output, sums shifted by its first value: split across the OpenMP team (torch's, when libgomp is
   shared) from `parallel_at` values. out: min, max, shift, sum and sum of squares of (x - shift), zeros, near */
void vb_stats_f32(const float *x, int64_t n, float eps, double *out, int64_t parallel_at) {
    float shift = x[0];
    int t = 1;
#ifdef _OPENMP
    if (n >= parallel_at && !omp_in_parallel()) t = omp_get_max_threads();
#endif
    if (t > 64) t = 64;
    double parts[64][6];
    int used = 1;
    if (t <= 1 || n < 2 * (int64_t)t) {
        stats_range(x, n, shift, eps, parts[0]);
    } else {
#ifdef _OPENMP
        #pragma omp parallel num_threads(t)
        {
            int i = omp_get_thread_num(), k = omp_get_num_threads();
            if (i == 0) used = k;
            stats_range(x + n * i / k, n * (i + 1) / k - n * i / k, shift, eps, parts[i]);
        }
#endif
    }
    double mn = parts[0][0], mx = parts[0][1], s = 0.0, ss = 0.0, z = 0.0, near = 0.0;
    int nan = 0;
    for (int i = 0; i < used; i++) {
        nan |= parts[i][0] != parts[i][0] || parts[i][1] != parts[i][1]; /* a NaN that opened a part */
        mn = parts[i][0] < mn ? parts[i][0] : mn;
        mx = parts[i][1] > mx ? parts[i][1] : mx;
        s += parts[i][2]; ss += parts[i][3]; z += parts[i][4]; near += parts[i][5];
    }
    if (nan) mn = mx = s = (double)NAN;
    out[0] = mn; out[1] = mx; out[2] = shift; out[3] = s; out[4] = ss; out[5] = z; out[6] = near;
}
"""


@lru_cache(maxsize=1)
def load_kernel() -> ctypes.CDLL | None:
    """The compiled kernel, built on first use; None where it cannot be (then stats.py uses torch)."""
    signature = ([ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_void_p, ctypes.c_int64], None)
    runtimes = ckernels.loaded_libraries(OPENMP_RUNTIME)

    def one_openmp_runtime(lib: ctypes.CDLL) -> bool:
        return ckernels.loaded_libraries(OPENMP_RUNTIME) <= runtimes or not runtimes  # torch's, or none yet

    variants = (("-fopenmp", "-march=native"), ("-fopenmp",), ("-march=native",), ())
    return ckernels.load("stats", SOURCE, {"vb_stats_f32": signature}, ENV_SWITCH, variants, one_openmp_runtime)


class _Out(threading.local):
    """One result buffer per thread, reused call after call."""

    def __init__(self) -> None:
        self.buffer = (ctypes.c_double * 7)()


_OUT = _Out()


def fused_stats(x: torch.Tensor, eps: float, kernel: ctypes.CDLL) -> tuple[float, ...]:
    """(min, max, shift, sum and sum of squares of x - shift, zeros, near-zeros) of a non-empty contiguous
    float32 CPU tensor; shift is its first value.

    Why shifted: sums of squares around a value near the mean keep the variance's digits where the mean
    dwarfs the spread (constant anchor and stride tensors, offset activations), which raw sums of squares
    lose, so the exact centred second pass in stats.py becomes rare. Non-finite values propagate into
    min/max/sums (NaN, inf); the caller checks and falls back."""
    out = _OUT.buffer
    kernel.vb_stats_f32(x.data_ptr(), x.numel(), eps, out, PARALLEL_AT)
    return out[0], out[1], out[2], out[3], out[4], out[5], out[6]
