"""One pass over a float32 CPU tensor for min, max, sum, sum of squares, exact zeros and near-zeros.

Why hand-written: torch has no fused reduction for these; its fastest separate kernels (`aminmax`, `sum`, BLAS
`dot`) read each activation three times and the two counts twice more (the torch path in stats.py, which is
the fallback and the reference). A plain C loop over 16 float lanes per 4096-value block, which the compiler
vectorises without fast-math (NaN semantics intact), reads each value once (benchmarks/component_costs.py,
`stats`, compares the two).

Built on first use with the system's C compiler into the user's cache folder and loaded with ctypes (which
releases the GIL for the call). `-march=native` code dies with SIGILL on a CPU without the instructions it
chose, and a home folder can be shared between machines: the file name is a hash of everything the build
depends on (source, compiler and its version, flags, and the CPU's model and feature flags), so a host never
loads another host's build. No compiler, a failed build, or VISIONBENCH_FUSED_STATS=0: None, and the torch
path runs (layers.json says which).

Sums are of x - x[0] (see `fused_stats`), float32 within a block of 4096 values and float64 across blocks;
tests compare with numpy.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

import torch

from visionbench.switches import switched_off

log = logging.getLogger("visionbench")
ENV_SWITCH = "VISIONBENCH_FUSED_STATS"
FLAGS = ("-O3", "-shared", "-fPIC")
VARIANTS = (("-march=native",), ())  # the host's SIMD width, else the architecture's baseline

SOURCE = r"""
#include <stdint.h>
/* out: min, max, shift = x[0], sum and sum of squares of (x - shift), exact zeros, |x| < eps. A NaN anywhere
   reaches the sums (and x[0] = NaN the min and max): the caller checks. */
void vb_stats_f32(const float *x, int64_t n, float eps, double *out) {
    float shift = x[0], mn = x[0], mx = x[0];
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
    out[0] = mn; out[1] = mx; out[2] = shift; out[3] = s; out[4] = ss; out[5] = (double)z; out[6] = (double)near;
}
"""


def host_cpu() -> str:
    """The CPU's model and feature flags (what `-march=native` compiles for); the platform's name elsewhere."""
    try:
        info = Path("/proc/cpuinfo").read_text().split("\n\n", 1)[0]
    except OSError:
        return f"{platform.machine()} {platform.processor()}"
    keep = ("model name", "flags", "features", "cpu part", "cpu implementer")
    return "\n".join(line for line in info.splitlines() if line.split(":", 1)[0].strip().lower() in keep)


def build_key(compiler: str, flags: tuple[str, ...], cpu: str) -> str:
    """Name part of a build: a hash of source, compiler and its version, flags and CPU."""
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        version = ""
    text = "\0".join([SOURCE, compiler, version, " ".join(flags), cpu])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "visionbench" / "kernels"


def _build(compiler: str, flags: tuple[str, ...], target: Path) -> bool:
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(prefix="vb-kernel-") as tmp:
        src, built = Path(tmp) / "stats.c", Path(tmp) / "stats.so"
        src.write_text(SOURCE)
        res = subprocess.run([compiler, *flags, "-o", str(built), str(src)], capture_output=True, text=True)
        if res.returncode != 0:
            log.debug("stats kernel: %s %s failed: %s", compiler, " ".join(flags), res.stderr.strip())
            return False
        os.replace(built, target)  # atomic: a concurrent process never loads half a file
    return True


@lru_cache(maxsize=1)
def load_kernel() -> ctypes.CDLL | None:
    """The compiled kernel, built on first use; None where it cannot be (then stats.py uses torch)."""
    if switched_off(ENV_SWITCH):
        return None
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        return None
    cpu = host_cpu()
    for extra in VARIANTS:
        flags = FLAGS + extra
        target = cache_dir() / f"stats-{build_key(compiler, flags, cpu)}.so"
        try:
            if not target.exists() and not _build(compiler, flags, target):
                continue
            lib = ctypes.CDLL(str(target))
        except OSError as exc:
            log.debug("stats kernel: cannot build or load %s: %s", target, exc)
            continue
        lib.vb_stats_f32.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_void_p]
        lib.vb_stats_f32.restype = None
        return lib
    return None


def fused_stats(x: torch.Tensor, eps: float, kernel: ctypes.CDLL) -> tuple[float, ...]:
    """(min, max, shift, sum and sum of squares of x - shift, zeros, near-zeros) of a non-empty contiguous
    float32 CPU tensor; shift is its first value.

    Why shifted: sums of squares around a value near the mean keep the variance's digits where the mean
    dwarfs the spread (constant anchor and stride tensors, offset activations), so the exact centred second
    pass in stats.py becomes rare. Non-finite values propagate into min/max/sums; the caller checks."""
    out = (ctypes.c_double * 7)()
    kernel.vb_stats_f32(x.data_ptr(), x.numel(), eps, out)
    return out[0], out[1], out[2], out[3], out[4], out[5], out[6]
