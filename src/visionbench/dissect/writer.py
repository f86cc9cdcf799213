"""Background threads that write pictures and arrays while the forward pass goes on.

The hook copies the channels to be saved to the host and queues a job; numpy, zlib and file writes release
the GIL, so the threads run beside the forward. They start once half of the byte budget is used (host
copies waiting: 256 MiB by default) or when the pass ends: on a CPU the forward's OpenMP threads then keep
every core (a writer that takes a core mid-pass stalls the whole OpenMP team), small models get their files
written right after the pass, and big models write while the pass goes on, at a lower priority. When the
disk falls behind, the pass waits instead of piling host copies up in memory.

An error in a job is re-raised in the caller at the next `put` or at `close`, never swallowed.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

WRITERS = max(1, min(2, os.cpu_count() or 1))
NICE = 10  # writers yield the cores to the forward and catch up in its gaps
_STOP = object()


class BackgroundWriter:
    """Runs submitted jobs on background threads (each job writes its own files, so order does not matter)."""

    kind = "threads"

    def __init__(self, max_queue: int = 64, threads: int = WRITERS, max_bytes: int = 256 << 20) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._budget = threading.Condition()
        self._go = threading.Event()  # set once half the byte budget is queued, or at close
        self.max_bytes, self.pending_bytes, self.peak_pending_bytes = max_bytes, 0, 0
        self.jobs = 0
        self._error: BaseException | None = None
        self._threads = [threading.Thread(target=self._run, name=f"dissect-writer-{i}", daemon=True)
                         for i in range(threads)]  # fmt: skip
        for t in self._threads:
            t.start()

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self.close(wait=exc_type is None)

    def put(self, job: Callable[..., Any], *args: Any, nbytes: int = 0) -> None:
        """Queue `job(*args)`; waits while the queued jobs already hold `max_bytes` of host copies."""
        self._raise_if_failed()
        with self._budget:
            fits = lambda: self.pending_bytes == 0 or self.pending_bytes + nbytes <= self.max_bytes  # noqa: E731
            if not fits():
                self._go.set()  # the writers must be running before anyone waits for them
            self._budget.wait_for(fits)
            self.pending_bytes += nbytes
            self.peak_pending_bytes = max(self.peak_pending_bytes, self.pending_bytes)
            if self.pending_bytes > self.max_bytes // 2 or self._queue.qsize() >= self._queue.maxsize // 2:
                self._go.set()
        self._queue.put((job, args, nbytes))

    def close(self, wait: bool = True) -> None:
        """Finish queued jobs (wait=True) or drop them (after an error), then stop the threads."""
        if not wait:
            self._error = self._error or RuntimeError("writer closed")  # queued jobs are dropped, not run
        self._go.set()
        for _ in self._threads:
            self._queue.put(_STOP)
        for t in self._threads:
            t.join()
        if wait:
            self._raise_if_failed()

    def _run(self) -> None:
        with contextlib.suppress(AttributeError, OSError):  # Linux: per-thread priority; elsewhere none
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
        self._go.wait()
        while (item := self._queue.get()) is not _STOP:
            job, args, nbytes = item
            if self._error is None:
                try:
                    job(*args)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    self._error = exc
            with self._budget:
                self.pending_bytes -= nbytes
                self.jobs += 1
                self._budget.notify_all()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error
