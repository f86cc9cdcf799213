"""Ground truth for a video: per-frame depth, camera poses and intrinsics, in one documented folder layout.

    DIR/depth/NAME.npy | NAME.png   depth of frame k = the k-th file in natural order (npy: metres,
                                    16-bit png: millimetres); 0, negative, non-finite = unknown
    DIR/poses.npy                   optional, [N, 4, 4] camera-to-world (x right, y down, z forward)
    DIR/intrinsics.json             optional, {"fx": px, "fy": px, "cx": px, "cy": px}
TAE needs the poses and intrinsics; the depth alone gives the per-frame and video-level scores.
The built-in sequence (`visionbench video --sample`) is written in this layout.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visionbench.depth.datasets import read_depth
from visionbench.errors import BadInputError
from visionbench.video.source import natural_key


@dataclass
class GroundTruth:
    root: Path
    depth_files: list[Path]
    poses: np.ndarray | None  # [N, 4, 4] camera-to-world
    k: np.ndarray | None  # [3, 3]

    def __len__(self) -> int:
        return len(self.depth_files)

    def depth(self, index: int) -> np.ndarray:
        if index >= len(self.depth_files):
            raise BadInputError(f"{self.root}: no ground-truth depth for frame {index} "
                                f"(depth/ has {len(self.depth_files)} files)")  # fmt: skip
        return read_depth(self.depth_files[index])

    @property
    def has_geometry(self) -> bool:
        return self.poses is not None and self.k is not None


def load_ground_truth(root: str | Path) -> GroundTruth:
    root = Path(root).expanduser()
    depth_dir = root / "depth"
    if not depth_dir.is_dir():
        raise BadInputError(f"--ground-truth {root}: missing depth/ (layout: depth/NAME.npy|png, poses.npy, "
                            "intrinsics.json; see docs/video.md)")  # fmt: skip
    files = sorted((p for p in depth_dir.iterdir() if p.suffix.lower() in {".npy", ".png"}),
                   key=lambda p: natural_key(p.name))  # fmt: skip
    if not files:
        raise BadInputError(f"--ground-truth {root}: depth/ holds no .npy or .png file")
    poses = None
    if (root / "poses.npy").exists():
        try:
            poses = np.load(root / "poses.npy", allow_pickle=False).astype(np.float64)
        except (OSError, ValueError) as exc:
            raise BadInputError(f"{root / 'poses.npy'}: cannot read ({exc})") from exc
        if poses.ndim != 3 or poses.shape[1:] != (4, 4) or not np.isfinite(poses).all():
            raise BadInputError(f"{root / 'poses.npy'}: expected finite [N, 4, 4] camera-to-world, found {poses.shape}")
        if len(poses) < len(files):
            raise BadInputError(f"{root / 'poses.npy'}: {len(poses)} poses for {len(files)} depth files")
    k = _read_k(root / "intrinsics.json") if (root / "intrinsics.json").exists() else None
    return GroundTruth(root, files, poses, k)


def _read_k(path: Path) -> np.ndarray:
    try:
        data = json.loads(path.read_text())
        vals = [float(data[key]) for key in ("fx", "fy", "cx", "cy")]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadInputError(f'{path}: expected {{"fx": px, "fy": px, "cx": px, "cy": px}} ({exc})') from exc
    if not all(math.isfinite(v) for v in vals) or vals[0] <= 0 or vals[1] <= 0:
        raise BadInputError(f"{path}: fx and fy must be positive numbers of pixels")
    fx, fy, cx, cy = vals
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def write_intrinsics(path: Path, k: np.ndarray) -> None:
    from visionbench.files import write_json

    write_json(path, {"fx": float(k[0, 0]), "fy": float(k[1, 1]), "cx": float(k[0, 2]), "cy": float(k[1, 2])})
