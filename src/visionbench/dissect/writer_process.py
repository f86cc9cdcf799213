"""Picture-writer processes: the dissection's PNG grids and NPY files written by two worker processes.

Why processes, when the writer threads release the GIL for every large step (numpy, zlib, file writes, the
C tile kernel)? Each layer's job is still ~20 short steps, and at each one two threads hand the GIL to each
other through a futex wake-up. On a 2-core VM that made two threads finish yolo11n's 88 conv grids slower
than one (70 vs 52 ms), so the drain after the pass could not use the second core. Two processes have a GIL
each and drain the same jobs in ~31-35 ms (one-off profiles, docs/benchmarks.md; the `threads` row of
benchmarks/dissect_cost.py times the whole pass with threads).

How: the hook copies the channels to be saved straight into a shared-memory region (`host_array`;
shared_region.py), so no pixel is copied or pickled on the way; a job is a small pickle (the function,
paths, title and where its arrays lie in the region) sent down the worker's stdin, and the worker
(writer_worker.py) replies on its own pipe when the files are written, which frees the region's space. The
workers are started once per process (about 0.15 s: Python, numpy and Pillow, never torch) and reused by
every later dissection; they exit when the parent's end of their pipe closes, even when the parent is
killed. The same gating as the threads applies: jobs are held until half the byte budget is used or the
pass ends, so the forward keeps both cores.

Linux only (the region lives in /dev/shm); elsewhere, or with VISIONBENCH_WRITER=threads, or when a worker
cannot start, the dissection uses the writer threads (writer.py) and says so in layers.json.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import pickle
import queue
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Self

import numpy as np

from visionbench.dissect.shared_region import WRITERS, Region, SharedArray, WriterFailed, resolve

ENV_SWITCH = "VISIONBENCH_WRITER"  # "processes" (the default on Linux) or "threads"
WORKER_PACKAGES = frozenset({"visionbench", "numpy", "PIL", "builtins"})
START_TIMEOUT_S = 60.0


def wanted() -> bool:
    """Processes unless switched off or not on Linux."""
    choice = os.environ.get(ENV_SWITCH, "processes").strip().lower()
    return choice not in {"threads", "thread", "0", "off"} and sys.platform.startswith("linux")


class _Worker:
    def __init__(self, region_fd: int) -> None:
        cmd = [sys.executable, "-m", "visionbench.dissect.writer_worker", str(region_fd)]
        package_root = str(Path(__file__).resolve().parents[2])  # importable even when not installed
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True, pass_fds=(region_fd,), env=env
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.jobs_in: BinaryIO = self.proc.stdin
        self.replies: BinaryIO = self.proc.stdout
        self.outstanding = 0
        self.outstanding_bytes = 0
        # writes go through a thread of their own, never under the pool's lock: a full pipe then cannot stop
        # the reply reader (which needs that lock) and so the worker, which would wait for its replies to drain
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._sender = threading.Thread(target=self._send_loop, name="dissect-writer-send", daemon=True)
        self._sender.start()

    def send(self, pickles: bytes) -> None:
        """Queue whole pickled messages (pickled first, so a job that cannot be pickled never half-writes one)."""
        self._outbox.put(pickles)

    def close_input(self) -> None:
        """Send what is queued, then close the worker's stdin: it exits when it has read everything."""
        self._outbox.put(None)
        self._sender.join(timeout=10)

    def _send_loop(self) -> None:
        while (pickles := self._outbox.get()) is not None:
            with contextlib.suppress(OSError, ValueError):  # the worker is gone: its reply reader reports it
                self.jobs_in.write(pickles)
                self.jobs_in.flush()
        with contextlib.suppress(OSError):
            self.jobs_in.close()


class _Pool:
    """The worker processes and the shared region, started once and kept for the life of the process."""

    def __init__(self, workers: int, region_bytes: int) -> None:
        """Starts the processes and returns at once (they import numpy and Pillow meanwhile): see `ready`."""
        self.region = Region(region_bytes)
        self.lock = threading.Condition()
        self.error: BaseException | None = None
        self.broken = False
        self.started = False
        self.pid = os.getpid()  # a forked child must not use (or stop) its parent's workers
        self._start_lock = threading.Lock()
        try:
            self.workers = [_Worker(self.region.fd) for _ in range(workers)]
        except BaseException:
            self.region.close()
            raise
        self.owner: ProcessWriter | None = None
        self.next_id = 0
        self.in_flight: dict[int, tuple[list[int], int]] = {}  # job id -> (its blocks in the region, bytes)
        self.peak_bytes = 0
        self.jobs = 0

    def ready(self) -> None:
        """Wait (once, at most START_TIMEOUT_S) until every worker has mapped the region, then listen for
        their replies."""
        with self._start_lock:
            if self.started:
                return
            if self.broken:
                raise WriterFailed("the picture-writer processes did not start")
            deadline = time.monotonic() + START_TIMEOUT_S
            try:
                for w in self.workers:
                    readable, _, _ = select.select([w.replies], [], [], max(0.0, deadline - time.monotonic()))
                    if not readable:
                        raise WriterFailed(f"a picture-writer process did not start within {START_TIMEOUT_S:.0f} s")
                    if pickle.load(w.replies) != "ready":
                        raise WriterFailed("a picture-writer process did not start")
            except BaseException as exc:
                self.broken = True
                self.shutdown()
                if isinstance(exc, (EOFError, OSError, pickle.UnpicklingError)):
                    raise WriterFailed(f"a picture-writer process did not start ({type(exc).__name__})") from exc
                raise
            finally:
                self.region.close()  # every worker has mapped it (or is gone): the descriptor is not needed
            self.started = True
            for w in self.workers:
                name = "dissect-writer-replies"
                threading.Thread(target=self._read_replies, args=(w,), name=name, daemon=True).start()

    def _read_replies(self, worker: _Worker) -> None:
        while True:
            try:
                job_id, error = pickle.load(worker.replies)
            except (EOFError, OSError, pickle.UnpicklingError):
                with self.lock:
                    if not self.broken:
                        code = worker.proc.poll()
                        self.broken = True
                        self.error = self.error or WriterFailed(
                            f"a picture-writer process exited unexpectedly (exit code {code}); files of the "
                            "layers it was writing are missing"
                        )
                    self.lock.notify_all()
                return
            with self.lock:
                blocks, size = self.in_flight.pop(job_id, ([], 0))
                for offset in blocks:
                    if offset in self.region.used:
                        self.region.release(offset)
                worker.outstanding -= 1
                worker.outstanding_bytes -= size
                self.jobs += 1
                if error is not None and self.error is None:
                    self.error = error
                self.lock.notify_all()

    def shutdown(self) -> None:
        if os.getpid() != self.pid:
            return
        for w in self.workers:
            w.close_input()
        for w in self.workers:
            try:
                w.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                w.proc.kill()
        self.region.close()


_POOL: _Pool | None = None
_POOL_LOCK = threading.Lock()


def prestart(region_bytes: int = 256 << 20) -> None:
    """Start the writer processes now, e.g. while a model loads, so the first dissection does not wait for them.
    Never raises: a dissection that cannot have them uses threads."""
    if wanted():
        with contextlib.suppress(OSError, RuntimeError):
            pool(WRITERS, region_bytes)


def pool(workers: int, region_bytes: int) -> _Pool:
    """The process's worker pool; started on first use, restarted when it broke or the region must grow."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is not None and _POOL.pid != os.getpid():
            _POOL = None  # inherited through fork: the workers are the parent's
        if _POOL is not None and (_POOL.broken or _POOL.region.size < region_bytes or len(_POOL.workers) < workers):
            _POOL.shutdown()
            _POOL = None
        if _POOL is None:
            _POOL = _Pool(workers, region_bytes)
        return _POOL


@atexit.register
def _shutdown_pool() -> None:
    global _POOL
    if _POOL is not None:
        _POOL.shutdown()
        _POOL = None


def worker_pids() -> list[int]:
    """Process ids of the running picture writers (benchmarks add their memory to the parent's)."""
    return [w.proc.pid for w in _POOL.workers] if _POOL is not None else []


def importable_by_worker(job: Callable[..., Any]) -> bool:
    """Whether a worker, which imports only the standard library, numpy, Pillow and this package, can load
    `job` (a function or a bound method) by reference."""
    owner = getattr(job, "__self__", None)
    modules = [getattr(job, "__module__", None), type(owner).__module__ if owner is not None else None]
    return all(
        m is None or (m != "__main__" and m.split(".")[0] in WORKER_PACKAGES | sys.stdlib_module_names)
        for m in modules
    )  # fmt: skip


class ClosingWriter:
    """`with writer:` waits for every file when the block ends normally, drops queued jobs after an error."""

    def close(self, wait: bool = True) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self.close(wait=exc_type is None)


class ProcessWriter(ClosingWriter):
    """BackgroundWriter's interface on the worker processes: `host_array`, `put`, `close`."""

    kind = "processes"

    def __init__(self, max_bytes: int = 256 << 20, workers: int | None = None, max_jobs: int = 1024) -> None:
        self.pool = pool(workers or WRITERS, max_bytes)
        self.pool.ready()
        with self.pool.lock:
            if self.pool.owner is not None:
                raise RuntimeError("one dissection at a time per process uses the picture-writer processes")
            self.pool.owner = self
            self.pool.error = None
            self.pool.peak_bytes = 0
            self._jobs0 = self.pool.jobs
        self.max_bytes, self.max_jobs = max_bytes, max_jobs
        self._held: list[tuple[int, Callable[..., Any], tuple[Any, ...]]] = []  # (job id, job, args) until the go
        self._go = False
        self._arrays: dict[int, tuple[np.ndarray, int]] = {}  # id -> (array from host_array, its block)

    @property
    def jobs(self) -> int:
        return self.pool.jobs - self._jobs0

    @property
    def peak_pending_bytes(self) -> int:
        return self.pool.peak_bytes

    def host_array(self, shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
        """An array in the shared region for the hook to copy into; waits while the byte budget is used up
        (an array alone above the budget waits until nothing else is pending, as with the threads).

        Bigger than the whole region: a private array, pickled to the worker (slow, but correct)."""
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        region = self.pool.region
        if nbytes > region.size:
            return np.empty(shape, dtype)
        with self.pool.lock:
            while True:
                self._raise_if_failed()
                fits = region.used_bytes == 0 or region.used_bytes + nbytes <= self.max_bytes
                offset = region.allocate(nbytes) if fits else None
                if offset is not None:
                    self.pool.peak_bytes = max(self.pool.peak_bytes, region.used_bytes)
                    if region.used_bytes > self.max_bytes // 2:
                        self._release_held()
                    array = region.view(offset, tuple(shape), dtype)
                    self._arrays[id(array)] = (array, offset)
                    return array
                self._release_held()  # the writers must be running before anyone waits for them
                self.pool.lock.wait(1.0)

    def put(self, job: Callable[..., Any], *args: Any, nbytes: int = 0) -> None:
        """Queue `job(*args)` for a worker. An array from `host_array` travels as its place in the shared
        region (pass it whole: the job slices it); any other argument is pickled."""
        with self.pool.lock:
            self._raise_if_failed()
            blocks: list[int] = []
            message_args = []
            for a in args:
                known = self._arrays.pop(id(a), None) if isinstance(a, np.ndarray) else None
                if known is None or known[0] is not a:
                    message_args.append(a)
                    continue
                blocks.append(known[1])
                message_args.append(SharedArray(known[1], a.shape, a.strides, a.dtype.str))
            job_id = self.pool.next_id
            self.pool.next_id += 1
            size = sum(self.pool.region.used[b] for b in blocks) or nbytes
            self.pool.in_flight[job_id] = (blocks, size)
            self._held.append((job_id, job, tuple(message_args)))
            if self._go or len(self._held) >= self.max_jobs:
                self._release_held()

    def close(self, wait: bool = True) -> None:
        """Send what is held and wait until every job is written (wait=False: drop what was not sent)."""
        with self.pool.lock:
            if wait:
                self._release_held()
            else:
                for job_id, _, _ in self._held:
                    self.pool.in_flight.pop(job_id, None)
                self._held.clear()
            while any(w.outstanding for w in self.pool.workers) and not self.pool.broken:
                self.pool.lock.wait(1.0)
            for offset in list(self.pool.region.used):  # blocks no job took (a hook that failed midway)
                self.pool.region.release(offset)
            self.pool.in_flight.clear()
            self._arrays.clear()
            self.pool.owner = None
            if wait:
                self._raise_if_failed()

    def _release_held(self) -> None:
        """(lock held) Send every held job, each to the worker with the fewest bytes outstanding, in one
        write per worker."""
        self._go = True
        batches: dict[int, list[bytes]] = {}
        for message in self._held:
            job_id, job, args = message
            try:
                if not importable_by_worker(job):
                    raise pickle.PicklingError("not importable by a worker")
                payload = pickle.dumps((job, args), protocol=pickle.HIGHEST_PROTOCOL)
                data = pickle.dumps((job_id, payload), protocol=pickle.HIGHEST_PROTOCOL)
            except (pickle.PicklingError, AttributeError, TypeError):  # a lambda, a test's helper: run it here
                self._run_here(message)
                continue
            index = min(range(len(self.pool.workers)), key=lambda i: self.pool.workers[i].outstanding_bytes)
            worker = self.pool.workers[index]
            worker.outstanding += 1
            worker.outstanding_bytes += self.pool.in_flight[job_id][1]
            batches.setdefault(index, []).append(data)
        self._held.clear()
        for index, parts in batches.items():
            self.pool.workers[index].send(b"".join(parts))

    def _run_here(self, message: tuple[int, Callable[..., Any], tuple[Any, ...]]) -> None:
        """(lock held) A job no worker can import (a lambda, a local function) runs in this thread instead."""
        job_id, job, args = message
        try:
            job(*(resolve(a, self.pool.region.map) for a in args))
        except BaseException as exc:  # noqa: BLE001 - reported like a worker's error
            self.pool.error = self.pool.error or exc
        for offset in self.pool.in_flight.pop(job_id, ([], 0))[0]:
            if offset in self.pool.region.used:
                self.pool.region.release(offset)
        self.pool.jobs += 1

    def _raise_if_failed(self) -> None:
        if self.pool.error is not None:
            raise self.pool.error
