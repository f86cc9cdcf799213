"""The streaming loader: input order kept, failures in place, same-shape batches, bounded prefetch."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PIL import Image

from visionbench.depth.loader import LoadedImage, group_batches, prefetch, stream_images


def test_stream_keeps_order_and_reports_broken_files_in_place(tmp_path) -> None:
    paths = []
    for i in range(12):
        p = tmp_path / f"{i:02d}.png"
        if i % 5 == 3:
            p.write_bytes(b"broken")
        else:
            Image.new("RGB", (10 + i, 8), (i, 0, 0)).save(p)
        paths.append(p)
    items = list(stream_images(paths, workers=3, prefetch=4))
    assert [it.index for it in items] == list(range(12))
    assert [it.path for it in items] == paths
    assert [it.error is not None for it in items] == [i % 5 == 3 for i in range(12)]
    assert all(it.image.size == (10 + it.index, 8) for it in items if it.error is None)


def test_group_batches_stacks_same_shapes_and_passes_failures_at_once() -> None:
    def item(i: int, w: int | None) -> LoadedImage:
        if w is None:
            return LoadedImage(i, Path(f"{i}.jpg"), error=f"{i}.jpg: bad")
        return LoadedImage(i, Path(f"{i}.jpg"), Image.new("RGB", (w, 4)))

    widths = [4, 6, 4, None, 4, 6, 6, 4]
    batches = list(group_batches((item(i, w) for i, w in enumerate(widths)), 2, key=lambda im: im.size))
    seen = sorted(it.index for b in batches for it in b)
    assert seen == list(range(len(widths)))  # nothing lost, nothing twice
    for b in batches:
        assert len(b) <= 2
        if b[0].error is None:
            assert len({it.image.size for it in b}) == 1
        else:
            assert len(b) == 1
    assert [it.index for it in batches[1]] == [3]  # the failure comes out as soon as it arrives
    # no key: any images stack, in order
    plain = list(group_batches((item(i, w) for i, w in enumerate([4, 6, 5])), 2))
    assert [[it.index for it in b] for b in plain] == [[0, 1], [2]]


def test_prefetch_runs_ahead_in_a_thread_and_reraises() -> None:
    names = []

    def fn(x: int) -> int:
        names.append(threading.current_thread().name)
        return x * 2

    assert list(prefetch(range(5), fn)) == [0, 2, 4, 6, 8]
    assert set(names) == {"vb-prefetch"}

    def bad(x: int) -> int:
        if x == 2:
            raise ValueError("boom")
        return x

    got = []
    with pytest.raises(ValueError, match="boom"):
        for v in prefetch(range(5), bad):
            got.append(v)
    assert got == [0, 1]
