"""Losing a node mid-run: a real two-node Ray cluster on this machine (`ray.cluster_utils.Cluster`), 120 real
photo crops through a tiny DepthPro, the worker node killed once a fifth of the images are written. Every
image must end done or failed with a reason, once each (here: all done, as nothing else can fail them),
and every file on disk must be whole.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import hypothesis  # noqa: F401 - see below
import numpy as np
import pytest
from PIL import Image

from visionbench.depth.options import DepthOptions
from visionbench.depth.pointcloud import read_ply
from visionbench.depth.ray_engine import run_depth_ray
from visionbench.images import sample_images

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

IMAGES = 120
# hypothesis is imported here, before Ray's threads exist: pytest imports it again at the session's end, and
# CPython 3.11's AST parser (assertion rewriting) then failed with "AST constructor recursion depth mismatch"
# after this test had passed.


def _crops(folder: Path) -> None:
    """120 distinct small crops of the two real photos (sizes vary, so batches and files differ)."""
    folder.mkdir(parents=True)
    photos = [Image.open(p).convert("RGB") for p in sample_images()]
    for i in range(IMAGES):
        im = photos[i % 2]
        x, y = (i * 37) % (im.width - 200), (i * 53) % (im.height - 200)
        im.crop((x, y, x + 120 + i % 5 * 8, y + 90 + i % 3 * 8)).save(folder / f"crop_{i:03d}.jpg", quality=90)


@pytest.fixture
def two_nodes():
    """Head (driver, 4 logical CPUs) and one worker node (4 logical CPUs); logical CPUs let two actors and
    the read tasks fit on the head alone after the worker is gone, while the two real cores are shared."""
    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 4, "include_dashboard": False})
    worker = cluster.add_node(num_cpus=4)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    yield cluster, worker
    ray.shutdown()
    cluster.shutdown()


def _whole(stem: Path) -> None:
    np.load(f"{stem}.depth.npy")
    for suffix in (".depth.png", ".depth16.png"):
        with Image.open(f"{stem}{suffix}") as im:
            im.load()
    read_ply(Path(f"{stem}.ply"))
    json.loads(Path(f"{stem}.json").read_text())


def test_a_node_lost_mid_run_loses_no_image_and_leaves_whole_files(tmp_path, two_nodes) -> None:
    cluster, worker = two_nodes
    _crops(tmp_path / "photos")
    out = tmp_path / "out"
    removed_at: list[int] = []

    def kill_worker_node() -> None:
        while len(removed_at) == 0:
            written = len(list(out.glob("*.json"))) if out.exists() else 0
            if written >= IMAGES // 5:
                cluster.remove_node(worker, allow_graceful=False)
                removed_at.append(written)
            time.sleep(0.05)

    killer = threading.Thread(target=kill_worker_node, daemon=True)
    killer.start()
    # --focal-px: random weights give a degenerate FOV head, and a point cloud needs a focal length
    opts = DepthOptions(model="depthpro-tiny", weights="random", device="cpu", out=out, ply=True, ply_stride=4,
                        focal_px=100.0)  # fmt: skip
    summary = run_depth_ray([str(tmp_path / "photos")], opts, actors=2, show_progress=False)
    killer.join(timeout=5)

    assert removed_at and removed_at[0] < IMAGES, "the node must be lost while images were still to do"
    assert len(ray.nodes()) == 2 and sum(n["Alive"] for n in ray.nodes()) == 1
    assert summary.total == IMAGES and summary.done + summary.failed + summary.skipped == IMAGES
    assert summary.done == IMAGES, summary.failures[:3]  # Ray retried what the node took with it
    assert summary.actors == 2
    failed = [f.path for f in summary.failures]
    assert len(failed) == len(set(failed)) == summary.failed and all(f.error for f in summary.failures)
    done = {p.name.removesuffix(".json") for p in out.glob("crop_*.json")}
    assert len(done) == summary.done
    for name in done:
        _whole(out / name)
    recorded = json.loads((out / "depth_run.json").read_text())["summary"]
    assert (recorded["done"], recorded["failed"]) == (summary.done, summary.failed)
    print(f"node removed after {removed_at[0]} images; {summary.done} done, {summary.failed} failed")
