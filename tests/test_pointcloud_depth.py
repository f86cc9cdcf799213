"""Point-cloud geometry on synthetic planes of known depth and focal length, and the PLY file round trip."""

from __future__ import annotations

import numpy as np
import pytest

from visionbench.depth.pointcloud import backproject, read_ply, write_ply


def test_fronto_parallel_plane_lands_at_its_depth_with_pinhole_extent() -> None:
    h, w, f, z = 60, 80, 100.0, 2.5
    pts, _ = backproject(np.full((h, w), z, np.float32), f)
    assert pts.shape == (h * w, 3)
    assert np.allclose(pts[:, 2], z)
    # the outermost pixel centres are at u + 0.5 - cx = +-(w/2 - 0.5): x = that * z / f
    assert pts[:, 0].min() == pytest.approx(-(w / 2 - 0.5) * z / f, rel=1e-6)
    assert pts[:, 0].max() == pytest.approx((w / 2 - 0.5) * z / f, rel=1e-6)
    assert pts[:, 1].max() == pytest.approx((h / 2 - 0.5) * z / f, rel=1e-6)
    # the cloud is centred on the optical axis
    assert abs(pts[:, 0].mean()) < 1e-6 and abs(pts[:, 1].mean()) < 1e-6


def test_tilted_plane_is_recovered_from_its_depth_map() -> None:
    """A plane n.X = d seen through a pinhole camera: depth z(u, v) = d / (n . ray); points must lie on it."""
    h, w, f = 48, 64, 70.0
    n = np.array([0.0, -0.4, 1.0])
    n /= np.linalg.norm(n)
    d = 3.0
    v, u = np.mgrid[0:h, 0:w]
    rays = np.stack([(u + 0.5 - w / 2) / f, (v + 0.5 - h / 2) / f, np.ones((h, w))], axis=-1)
    depth = (d / (rays @ n)).astype(np.float32)
    pts, _ = backproject(depth, f)
    assert np.allclose(pts @ n, d, atol=1e-4)
    # distances between neighbouring points along a row grow with depth, as perspective demands
    row_top, row_bottom = pts[:w], pts[-w:]
    assert np.linalg.norm(np.diff(row_top, axis=0), axis=1).mean() != pytest.approx(
        np.linalg.norm(np.diff(row_bottom, axis=0), axis=1).mean(), rel=1e-3
    )


def test_stride_invalid_pixels_and_colours() -> None:
    depth = np.full((10, 12), 1.0, np.float32)
    depth[0, 0], depth[2, 4], depth[4, 4] = np.inf, np.nan, -1.0
    rgb = np.zeros((10, 12, 3), np.uint8)
    rgb[..., 0] = np.arange(12)[None, :] * 10
    pts, cols = backproject(depth, 50.0, stride=2, colours=rgb)
    assert len(pts) == 5 * 6 - 3  # (0,0), (2,4) and (4,4) are on the stride-2 grid and invalid
    assert cols is not None and set(cols[:, 0].tolist()) <= {0, 20, 40, 60, 80, 100}
    with pytest.raises(ValueError):
        backproject(depth, 50.0, stride=0)


def test_ply_round_trip(tmp_path) -> None:
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(100, 3)).astype(np.float32)
    cols = rng.integers(0, 256, (100, 3)).astype(np.uint8)
    path = write_ply(tmp_path / "a" / "cloud.ply", pts, cols)
    head = path.read_bytes()[:200]
    assert head.startswith(b"ply\nformat binary_little_endian 1.0\n") and b"element vertex 100" in head
    p2, c2 = read_ply(path)
    assert np.array_equal(p2, pts) and c2 is not None and np.array_equal(c2, cols)
    p3, c3 = read_ply(write_ply(tmp_path / "plain.ply", pts))
    assert np.array_equal(p3, pts) and c3 is None
    assert not list(tmp_path.rglob("*.tmp"))
