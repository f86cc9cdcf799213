"""The built-in sequence: the Middlebury 2014 motorcycle view moved along a short camera path.

Why: no download, and the ground truth is exact by construction. Each frame is the left photo
reprojected with its own depth (from the ground-truth disparity, as `eval` reads it) into a camera
that moves a few centimetres and turns a degree or two: every source pixel is back-projected with K,
moved into the new camera, projected to the nearest pixel, and the nearest point wins (z-buffer).
A frame's ground-truth depth is exactly the depth of the point drawn at each pixel; pixels no point
reaches (disocclusions, cracks) and points whose source disparity is unknown are marked unknown (inf).
The photo's holes are filled with the nearest drawn colour so the model sees no black gaps.

The principal point is taken at the image centre ((W - 1) / 2, (H - 1) / 2) and fx = fy = 994.978 px
(scaled with the image): the sequence is exact for the K it records in intrinsics.json.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from visionbench.depth.datasets import middlebury_motorcycle
from visionbench.files import write_bytes
from visionbench.video.groundtruth import write_intrinsics


def camera_path(n: int, shift_m: float = 0.04, turn_deg: float = 1.5) -> np.ndarray:
    """[n, 4, 4] camera-to-world poses: frame 0 is the source camera, then a small loop sideways and forward."""
    poses = np.tile(np.eye(4), (n, 1, 1))
    for i in range(n):
        th = 2 * math.pi * i / max(n, 1)
        phi = math.radians(turn_deg) * math.sin(th)
        c, s = math.cos(phi), math.sin(phi)
        poses[i, :3, :3] = [[c, 0, s], [0, 1, 0], [-s, 0, c]]  # about y (the image's vertical)
        poses[i, :3, 3] = [
            shift_m * math.sin(th),
            0.25 * shift_m * math.sin(2 * th),
            0.75 * shift_m * (1 - math.cos(th)),
        ]
    return poses


def nearest_fill(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Each unknown pixel takes the value of the nearest known one."""
    from scipy.ndimage import distance_transform_edt

    if known.all() or not known.any():
        return values
    idx = distance_transform_edt(~known, return_distances=False, return_indices=True)
    return values[tuple(idx)]


def render(photo: np.ndarray, depth: np.ndarray, valid: np.ndarray, k: np.ndarray,
           pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The source view (photo, depth with holes filled, which depths are real) seen by a camera at `pose`."""
    h, w = depth.shape
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    z = depth.astype(np.float64)
    pts = np.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], axis=-1).reshape(-1, 3)
    cam = (pts - pose[:3, 3]) @ pose[:3, :3]  # R^T (X - t), row vectors
    zc = cam[:, 2]
    front = zc > 1e-6
    ub = np.full(zc.shape, -1, np.int64)
    vb = np.full(zc.shape, -1, np.int64)
    ub[front] = np.rint(cam[front, 0] * fx / zc[front] + cx).astype(np.int64)
    vb[front] = np.rint(cam[front, 1] * fy / zc[front] + cy).astype(np.int64)
    inb = front & (ub >= 0) & (ub < w) & (vb >= 0) & (vb < h)
    flat = vb * w + ub
    zbuf = np.full(h * w, np.inf)
    np.minimum.at(zbuf, flat[inb], zc[inb])
    win = inb.copy()
    win[inb] = zc[inb] == zbuf[flat[inb]]  # the nearest point at each pixel
    colour = np.zeros((h * w, 3), np.uint8)
    real = np.zeros(h * w, bool)
    colour[flat[win]] = photo.reshape(-1, 3)[win]
    real[flat[win]] = valid.reshape(-1)[win]
    drawn = np.isfinite(zbuf)
    gt = np.where(drawn & real, zbuf, np.inf).reshape(h, w).astype(np.float32)
    rgb = nearest_fill(colour.reshape(h, w, 3), drawn.reshape(h, w))
    return rgb, gt


def make_sample(folder: str | Path, frames: int = 10, scale: float = 1.0) -> Path:
    """Write the sequence under `folder`: frames/, depth/ (npy, metres), poses.npy, intrinsics.json."""
    import io

    folder = Path(folder)
    src = middlebury_motorcycle()
    photo, depth = src.image, src.depth_m
    if scale != 1.0:
        size = (max(8, round(photo.width * scale)), max(8, round(photo.height * scale)))
        photo = photo.resize(size, Image.Resampling.BOX)
        depth = np.asarray(Image.fromarray(depth).resize(size, Image.Resampling.NEAREST), np.float32)
    rgb = np.asarray(photo.convert("RGB"))
    h, w = depth.shape
    f = float(src.focal_px) * w / src.image.width  # type: ignore[arg-type]
    k = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1.0]])
    valid = np.isfinite(depth) & (depth > 0)
    filled = nearest_fill(depth, valid)
    poses = camera_path(frames)
    for i, pose in enumerate(poses):
        frame, gt = render(rgb, filled, valid, k, pose)
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="PNG", compress_level=1)
        write_bytes(folder / "frames" / f"frame_{i:04d}.png", buf.getvalue())
        buf = io.BytesIO()
        np.save(buf, gt)
        write_bytes(folder / "depth" / f"frame_{i:04d}.npy", buf.getvalue())
    buf = io.BytesIO()
    np.save(buf, poses)
    write_bytes(folder / "poses.npy", buf.getvalue())
    write_intrinsics(folder / "intrinsics.json", k)
    return folder
