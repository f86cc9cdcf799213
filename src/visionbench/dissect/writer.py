"""Background threads that write pictures and arrays while the forward pass goes on.

`open_writer` picks worker processes (writer_process.py) where it can and these threads otherwise; both
hold jobs the same way. The writers start once half of the byte budget is used (host copies waiting:
256 MiB by default), or when the pass ends: on a CPU the forward's OpenMP threads then keep both cores (a
writer that takes a core mid-pass stalls the whole OpenMP team), small models get their files written right
after the pass on both cores, and big models write while the pass goes on. When the disk (or PNG encoding)
falls behind, the pass waits instead of piling host copies up in memory.

An error in the writer is re-raised in the caller at the next `put` or at `close`, never swallowed.
"""

from __future__ import annotations

import logging
import pickle
import queue
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from visionbench.dissect import writer_process
from visionbench.dissect.shared_region import WRITERS, lower_priority
from visionbench.dissect.writer_process import ClosingWriter, ProcessWriter

log = logging.getLogger("visionbench")
_STOP = object()


class BackgroundWriter(ClosingWriter):
    """Runs submitted jobs on background threads (each job writes its own files, so order does not matter)."""

    kind = "threads"

    def __init__(self, max_queue: int = 64, threads: int | None = None, max_bytes: int = 256 << 20) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._budget = threading.Condition()
        self._go = threading.Event()  # set once half the byte budget is queued, or at close
        self.max_bytes, self.pending_bytes, self.peak_pending_bytes = max_bytes, 0, 0
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self.jobs = 0
        # the fallback of the writer processes: short GIL hand-offs keep two threads from using two cores fully
        # (writer_process.py); during the pass they only take what the forward leaves (lower priority)
        count = threads or WRITERS
        self._threads = [
            threading.Thread(target=self._run, name=f"dissect-writer-{i}", daemon=True) for i in range(count)
        ]
        for t in self._threads:
            t.start()

    def host_array(self, shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
        """Where the hook copies channels to; the byte budget is enforced when the job is `put`."""
        return np.empty(shape, dtype)

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
        """Finish queued jobs (wait=True) or drop them (after an error), then stop the thread."""
        if not wait:
            self._drain()
        self._go.set()
        for _ in self._threads:
            self._queue.put(_STOP)
        for t in self._threads:
            t.join()
        if wait:
            self._raise_if_failed()

    def _run(self) -> None:
        lower_priority()
        self._go.wait()
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self._error is not None:
                with self._budget:  # keep draining so `put` never blocks forever
                    self.pending_bytes -= item[2]
                    self._budget.notify_all()
                continue
            job, args, nbytes = item
            try:
                job(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                self._error = exc
            with self._budget:
                self.pending_bytes -= nbytes
                self._budget.notify_all()
            with self._lock:
                self.jobs += 1

    def _drain(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                with self._budget:
                    self.pending_bytes -= item[2]
                    self._budget.notify_all()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error


def open_writer(max_queue: int, max_bytes: int) -> BackgroundWriter | ProcessWriter:
    """The picture writer of one dissection: worker processes where they can run (writer_process.py says
    why), else threads. A failure to start the processes is logged and never fails the dissection."""
    if writer_process.wanted():
        try:
            return writer_process.ProcessWriter(max_bytes, max_jobs=max_queue)
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
            log.warning("picture-writer processes unavailable (%s): writing with threads instead", exc)
    return BackgroundWriter(max_queue, max_bytes=max_bytes)
