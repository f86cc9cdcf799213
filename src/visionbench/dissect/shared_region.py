"""What the dissection's writer processes share with the process that feeds them: the shared-memory region
the hooks copy channels into, how a job names an array in it, the error a failed writer raises, and how
many writers run at what priority (the writer threads use the same).
Imports only the standard library and numpy, like the workers (writer_worker.py)."""

from __future__ import annotations

import bisect
import contextlib
import mmap
import os
import tempfile
import threading
from typing import Any, NamedTuple

import numpy as np

from visionbench.errors import VisionbenchError

ALIGN = 64
WRITERS = max(1, min(2, os.cpu_count() or 1))  # writer threads or processes
NICE = 10


def lower_priority() -> None:
    """Linux schedules threads individually: a nicer writer (thread or process) yields the cores to the
    forward's OpenMP team (whose barriers stall when one of its threads is preempted) and catches up in the
    gaps and at the end."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed: normal priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)


class SharedArray(NamedTuple):
    """Where an array lies in the shared region: what a job carries instead of the pixels."""

    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    dtype: str


class WriterFailed(VisionbenchError, RuntimeError):
    """A picture-writer process died or could not be started: one line from the CLI, exit code 1."""

    exit_code = 1


class Region:
    """A shared-memory file mapped in the parent and the workers, handed out first-fit in 64-byte blocks."""

    def __init__(self, size: int) -> None:
        folder = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.fd, path = tempfile.mkstemp(prefix="visionbench-writer-", dir=folder)
        os.unlink(path)  # nameless from the start: nothing is left behind, however the process ends
        try:
            os.ftruncate(self.fd, size)
            self.map = mmap.mmap(self.fd, size)
        except BaseException:
            os.close(self.fd)
            raise
        self.size = size
        self.free: list[tuple[int, int]] = [(0, size)]  # (offset, length), sorted, never adjacent
        self.used: dict[int, int] = {}  # offset -> length of live blocks
        self.used_bytes = 0

    def allocate(self, nbytes: int) -> int | None:
        need = max(ALIGN, -(-nbytes // ALIGN) * ALIGN)
        for i, (offset, length) in enumerate(self.free):
            if length >= need:
                self.free[i : i + 1] = [(offset + need, length - need)] if length > need else []
                self.used[offset] = need
                self.used_bytes += need
                return offset
        return None

    def release(self, offset: int) -> None:
        length = self.used.pop(offset)
        self.used_bytes -= length
        i = bisect.bisect(self.free, (offset, 0))
        if i < len(self.free) and offset + length == self.free[i][0]:  # merge with the next free block
            length += self.free.pop(i)[1]
        if i > 0 and self.free[i - 1][0] + self.free[i - 1][1] == offset:  # and with the previous one
            offset, prev = self.free.pop(i - 1)
            length += prev
            i -= 1
        self.free.insert(i, (offset, length))

    def view(self, offset: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        return np.ndarray(shape, dtype, buffer=self.map, offset=offset)

    def close(self) -> None:
        """Close the descriptor the workers inherited (the mapping stays)."""
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


def resolve(value: Any, region: mmap.mmap) -> Any:
    """A job argument as the job sees it: a SharedArray becomes a view of the region, others stay."""
    if isinstance(value, SharedArray):
        dtype = np.dtype(value.dtype)
        return np.ndarray(value.shape, dtype, buffer=region, offset=value.offset, strides=value.strides)
    return value
