"""Shared test setup: no network, one device switch, real photos, tiny models of the real architectures."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the hub is never contacted in tests
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("YOLO_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from visionbench.images import sample_images  # noqa: E402

# OMP_NUM_THREADS, when set, wins: several test runs sharing two cores must not oversubscribe them.
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or max(1, min(2, os.cpu_count() or 1))))


@pytest.fixture(scope="session")
def device() -> str:
    """The device every test runs on: VISIONBENCH_DEVICE (default cpu), so a GPU box runs the same suite."""
    dev = os.environ.get("VISIONBENCH_DEVICE", "cpu")
    if dev.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip("VISIONBENCH_DEVICE asks for CUDA but none is available")
    return dev


@pytest.fixture(scope="session")
def photo_paths() -> list:
    """The two real photos ultralytics ships: bus.jpg (810x1080) and zidane.jpg (1280x720)."""
    return sample_images()


@pytest.fixture(scope="session")
def bus(photo_paths) -> Image.Image:
    return Image.open(photo_paths[0]).convert("RGB")


@pytest.fixture(scope="session")
def zidane(photo_paths) -> Image.Image:
    return Image.open(photo_paths[1]).convert("RGB")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@contextlib.contextmanager
def _nobody() -> Iterator[None]:
    """This process's effective user and groups set to nobody's, then back: permissions apply (root ignores them).

    In-process because the interpreter may live where nobody cannot run it (a pyenv under /root).
    """
    groups = os.getgroups()
    os.setgroups([])
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
        os.setgroups(groups)


@pytest.fixture
def as_nobody():
    """`with as_nobody(): ...` runs a block as the unprivileged user nobody (tests that need permissions to bite)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    return _nobody
