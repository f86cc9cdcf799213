"""Coloured point clouds from metric depth through the pinhole model, written as binary PLY.

Camera frame as OpenCV: x right, y down, z forward (metres). Pixel (row v, column u) is seen at its
centre (u + 0.5, v + 0.5); the principal point defaults to the image centre (W / 2, H / 2):
    x = (u + 0.5 - cx) * z / fx,   y = (v + 0.5 - cy) * z / fy,   z = depth[v, u]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from visionbench.depth.io import atomic_write


def backproject(
    depth_m: np.ndarray,
    focal_px: float,
    *,
    focal_y_px: float | None = None,
    cx: float | None = None,
    cy: float | None = None,
    stride: int = 1,
    colours: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """[N, 3] float32 points of the valid pixels (finite, > 0), every `stride`-th row and column,
    and their [N, 3] uint8 colours when an [H, W, 3] image is given."""
    if stride < 1:
        raise ValueError("stride must be at least 1")
    h, w = depth_m.shape
    fx, fy = float(focal_px), float(focal_y_px or focal_px)
    cx = w / 2.0 if cx is None else cx
    cy = h / 2.0 if cy is None else cy
    v, u = np.mgrid[0:h:stride, 0:w:stride]
    z = depth_m[::stride, ::stride].astype(np.float64)
    ok = np.isfinite(z) & (z > 0)
    z, u, v = z[ok], u[ok], v[ok]
    x = (u + 0.5 - cx) * z / fx
    y = (v + 0.5 - cy) * z / fy
    points = np.stack([x, y, z], axis=1).astype(np.float32)
    rgb = None
    if colours is not None:
        rgb = np.asarray(colours)[::stride, ::stride][ok].astype(np.uint8)
    return points, rgb


def ply_bytes(points: np.ndarray, colours: np.ndarray | None = None) -> bytes:
    """Binary little-endian PLY: float x y z, and uchar red green blue when colours are given."""
    n = len(points)
    header = ["ply", "format binary_little_endian 1.0", "comment visionbench depth: metres, OpenCV camera frame",
              f"element vertex {n}", "property float x", "property float y", "property float z"]  # fmt: skip
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if colours is not None:
        header += ["property uchar red", "property uchar green", "property uchar blue"]
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    header.append("end_header")
    rec = np.empty(n, dtype=fields)
    rec["x"], rec["y"], rec["z"] = points[:, 0], points[:, 1], points[:, 2]
    if colours is not None:
        rec["red"], rec["green"], rec["blue"] = colours[:, 0], colours[:, 1], colours[:, 2]
    return ("\n".join(header) + "\n").encode("ascii") + rec.tobytes()


def write_ply(path: Path, points: np.ndarray, colours: np.ndarray | None = None) -> Path:
    data = ply_bytes(points, colours)
    return atomic_write(path, lambda fh: fh.write(data))


def read_ply(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read back what `write_ply` writes (tests, quick checks); not a general PLY reader."""
    raw = Path(path).read_bytes()
    end = raw.index(b"end_header\n") + len(b"end_header\n")
    lines = raw[:end].decode("ascii").splitlines()
    n = int(next(ln for ln in lines if ln.startswith("element vertex")).split()[-1])
    coloured = any(ln.endswith(" red") for ln in lines)
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")] + ([("r", "u1"), ("g", "u1"), ("b", "u1")] if coloured else [])
    rec = np.frombuffer(raw[end:], dtype=fields, count=n)
    points = np.stack([rec["x"], rec["y"], rec["z"]], axis=1)
    colours = np.stack([rec["r"], rec["g"], rec["b"]], axis=1) if coloured else None
    return points, colours
