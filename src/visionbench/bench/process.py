"""What a benchmark does to the process it runs in, and how it undoes it or ties a worker to its parent.

`bench_model` may be called from a user's own Python, so what it changes there (torch's thread count,
denormal flushing) is given back when it returns. A suite worker is a process of its own: it also
dies with its parent, so a killed suite never leaves a model running with no timeout watching it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def flush_denormal_enabled() -> bool:
    """Whether this thread flushes denormal floats to zero (torch has a setter but no getter).

    A float32 denormal divided by 2 stays non-zero unless the CPU flushes it: a probe of one element,
    computed on the calling thread, where `torch.set_flush_denormal` acts.
    """
    import torch

    tiny = torch.tensor([1e-39], dtype=torch.float32)  # below float32's smallest normal (1.18e-38)
    return bool((tiny / 2).item() == 0.0)


@contextlib.contextmanager
def benchmark_process(threads: int | None = None) -> Iterator[None]:
    """Run with `threads` torch threads and denormals flushed; the caller's settings come back after.

    Denormal floats (tiny activations deep in random-weight nets) run many times slower on x86 CPUs;
    inference runtimes flush them to zero, so timings reflect the architecture.
    """
    import torch

    before_threads, before_flush = torch.get_num_threads(), flush_denormal_enabled()
    try:
        if threads:
            torch.set_num_threads(threads)
        torch.set_flush_denormal(True)
        yield
    finally:
        torch.set_num_threads(before_threads)
        torch.set_flush_denormal(before_flush)


def die_with_parent() -> None:
    """End this process when its parent ends (Linux: the kernel's parent-death signal; elsewhere a watchdog).

    Called first in a worker: a parent killed with SIGKILL can run no cleanup, so the child must notice.
    """
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                if os.getppid() != parent:  # the parent died before prctl took effect
                    os._exit(1)
                return
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="visionbench-parent-watch").start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)
