"""Keep freed memory in the process (glibc), so a CPU forward does not re-fault its activations every call.

glibc's malloc serves big blocks with mmap and gives freed heap tops back to the kernel. A CPU forward
allocates and frees the same activations every call, so every call then page-faults them in again: for
yolo11n at 640 px about 14,000 minor faults and a third of the CPU time in the kernel per forward, and
the cost varies with the host, which shows up as noise between runs. Raising the mmap threshold to its
maximum (32 MiB on 64-bit) and the trim threshold keeps those pages mapped, as jemalloc or tcmalloc
would (the usual advice for PyTorch CPU inference). Blocks above 32 MiB are still mmapped.

`benchmarks/malloc_tuning.py` measures what it changes (latency, kernel time, page faults, peak memory).
It is a process-wide setting, so only processes that visionbench owns apply it: the bench worker
processes, and the commands that run a model in the CLI's own process. A library call (`bench_model`,
`dissect_model` from a user's Python) never does. `planned()` says what a worker will apply without
changing anything, for the record in run.json. On Linux with glibc unless VISIONBENCH_MALLOC_TUNING=0;
nothing is changed on other C libraries or systems.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

from visionbench.switches import switched_off

M_TRIM_THRESHOLD = -1  # glibc malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 << 20  # DEFAULT_MMAP_THRESHOLD_MAX on 64-bit: glibc refuses more
TRIM_THRESHOLD = 1 << 30
ENV_SWITCH = "VISIONBENCH_MALLOC_TUNING"
# Not M_MMAP_MAX=0 (no mmap at all): measured, it also removes the faults of blocks above 32 MiB but raises
# depth-anything-v2-small's peak RSS by 5 %, and peak memory is a figure users size machines by.
SETTINGS = [(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX), (M_TRIM_THRESHOLD, TRIM_THRESHOLD)]
DESCRIPTION = f"glibc mallopt: mmap threshold {MMAP_THRESHOLD_MAX >> 20} MiB, trim threshold {TRIM_THRESHOLD >> 20} MiB"

_applied: str | None = None


def planned() -> str | None:
    """What `tune_malloc` applies in this environment (switch, system, C library), without applying it."""
    if switched_off(ENV_SWITCH) or platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    return DESCRIPTION


def tune_malloc() -> str | None:
    """Apply the settings once per process; a description for the record, or None where not applied.
    Call it only in a process visionbench owns (module doc)."""
    global _applied
    if _applied is not None:
        return _applied
    if planned() is None:
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = all(libc.mallopt(param, value) == 1 for param, value in SETTINGS)
    except (OSError, AttributeError):
        return None
    if not ok:
        return None
    _applied = DESCRIPTION
    return _applied


def malloc_setting() -> str:
    """What this process runs with, for records: the tuning applied, or glibc's/the system's defaults."""
    return _applied or "system default"
