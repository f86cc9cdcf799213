"""Streaming images from disk to the model: decoding in worker threads, shape-aware batches, a prefetch stage.

Pillow's decoders release the GIL, so a few threads decode the next images while the main thread
runs the model. Memory stays bounded: at most `prefetch` decoded images wait at any time. A file
that cannot be read becomes a `LoadedImage` with `error` set, in its place in the stream; it never
stops the stream.
"""

from __future__ import annotations

import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image

from visionbench.depth.inputs import readable_reason
from visionbench.depth.intrinsics import exif_focal_35mm
from visionbench.errors import BadInputError
from visionbench.images import load_image

T = TypeVar("T")
U = TypeVar("U")


@dataclass
class LoadedImage:
    """One input in stream order: the decoded RGB image, or the reason it could not be read."""

    index: int
    path: Path
    image: Image.Image | None = None
    exif_focal_35mm: float | None = None
    error: str | None = None
    decode_ms: float = 0.0


def default_workers() -> int:
    """Leave a core to the model: decoding threads that outnumber the free cores only slow the forward."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def decode_image(index: int, path: Path, read_exif: bool) -> LoadedImage:
    import time

    t0 = time.perf_counter()
    reason = readable_reason(path)  # permission denied or a symlink loop is said as such, never "corrupt"
    if reason is not None:
        return LoadedImage(index, path, error=f"{path}: cannot read ({reason})")
    try:
        image = load_image(path)
    except BadInputError as exc:
        return LoadedImage(index, path, error=str(exc))
    except Exception as exc:  # noqa: BLE001 - any decoder failure is this file's failure, not the run's
        return LoadedImage(index, path, error=f"{path}: cannot read ({type(exc).__name__}: {exc})")
    f35 = exif_focal_35mm(path) if read_exif else None
    return LoadedImage(index, path, image, f35, decode_ms=(time.perf_counter() - t0) * 1e3)


def stream_images(
    paths: Iterable[Path], *, workers: int | None = None, prefetch: int = 16, read_exif: bool = True
) -> Iterator[LoadedImage]:
    """Decoded images in input order, `workers` threads decoding up to `prefetch` images ahead."""
    workers = workers or default_workers()
    pending: deque[Future[LoadedImage]] = deque()
    items = iter(enumerate(paths))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vb-decode") as pool:
        try:
            for i, p in items:
                pending.append(pool.submit(decode_image, i, Path(p), read_exif))
                if len(pending) >= max(prefetch, workers):
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for fut in pending:
                fut.cancel()


def group_batches(
    items: Iterable[LoadedImage],
    batch_size: int,
    key: Callable[[Image.Image], Hashable] | None = None,
    window: int | None = None,
) -> Iterator[list[LoadedImage]]:
    """Batches of up to `batch_size` images with the same `key` (e.g. size), so their tensors stack
    without distortion. A failed image is yielded alone at once; at most `window` images wait."""
    window = window or batch_size * 4
    groups: dict[Hashable, list[LoadedImage]] = {}
    waiting = 0
    for item in items:
        if item.error is not None or item.image is None:
            yield [item]
            continue
        k = key(item.image) if key else None
        groups.setdefault(k, []).append(item)
        waiting += 1
        if len(groups[k]) >= batch_size:
            waiting -= len(groups[k])
            yield groups.pop(k)
        elif waiting >= window:
            biggest = max(groups, key=lambda g: len(groups[g]))
            waiting -= len(groups[biggest])
            yield groups.pop(biggest)
    yield from groups.values()


_DONE = object()


def prefetch(items: Iterable[T], fn: Callable[[T], U], depth: int = 2, torch_threads: int | None = None) -> Iterator[U]:
    """`fn(item)` for each item, computed in a background thread up to `depth` results ahead.

    Used for the model's preprocessing so that the main thread only runs forwards. An exception in
    `fn` or in `items` is re-raised in the consumer. `torch_threads` caps torch's intra-op threads in
    that thread only (OpenMP's setting is per thread): with the model on the CPU, a preprocessing thread
    that starts its own team of threads fights the forward's team for the same cores.
    """
    q: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def work() -> None:
        if torch_threads is not None:
            import torch

            torch.set_num_threads(torch_threads)
        try:
            for item in items:
                if stop.is_set():
                    return
                q.put((fn(item), None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put((None, exc))
        q.put(_DONE)

    thread = threading.Thread(target=work, name="vb-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            got = q.get()
            if got is _DONE:
                return
            value, exc = got
            if exc is not None:
                raise exc
            yield value
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)
