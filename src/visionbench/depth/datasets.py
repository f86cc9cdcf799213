"""Depth ground truth to evaluate against: a built-in offline sample and a simple folder layout.

Built in: `middlebury-motorcycle`, the Middlebury 2014 "motorcycle" pair that ships with scikit-image
(`skimage.data.stereo_motorcycle()`, 741x500, left view). Depth (metres) comes from its ground-truth
disparity d with the calibration of the down-sampled images: depth = B f / (d + dx), f = 994.978 px,
B = 193.001 mm, dx = 31.086 px (difference of the two principal points); unknown disparity (inf) stays
unknown (inf).

A folder (see docs/depth.md):
    DIR/images/NAME.jpg|png|...      the photos
    DIR/depth/NAME.npy               float depth in metres (times --depth-scale), or
    DIR/depth/NAME.png               16-bit depth, metres = value * --depth-scale (default 0.001: millimetres)
    DIR/intrinsics.json              optional: {"NAME": {"fx": 1000.0}, "*": {"fx": ...}} (px; "*" = every image)
Pairs are made by NAME (the file stem). 0, negative and non-finite ground truth are unknown pixels.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from visionbench.depth.inputs import missing_reason, os_reason, readable_reason
from visionbench.depth.io import read_png16
from visionbench.errors import BadInputError
from visionbench.images import IMAGE_SUFFIXES, load_image

MIDDLEBURY_FOCAL_PX = 994.978
MIDDLEBURY_BASELINE_M = 0.193001
MIDDLEBURY_DOFFS_PX = 31.086
BUILTIN = ("middlebury-motorcycle",)


@dataclass
class Sample:
    """One evaluation pair: the photo (RGB, EXIF-rotated), depth in metres (inf = unknown), intrinsics."""

    name: str
    image: Image.Image
    depth_m: np.ndarray
    focal_px: float | None = None


@dataclass
class SampleRef:
    """A sample not loaded yet: datasets of thousands of pairs stream one at a time."""

    name: str
    load: Callable[[], Sample]


@dataclass
class Dataset:
    name: str
    refs: list[SampleRef]
    max_depth: float | None = None  # default upper bound of valid ground truth, metres
    skipped: list[str] | None = None  # images without ground truth (named in the report)

    def __len__(self) -> int:
        return len(self.refs)

    def __iter__(self) -> Iterator[SampleRef]:
        return iter(self.refs)


def disparity_to_depth(disparity: np.ndarray, focal_px: float, baseline_m: float, doffs_px: float) -> np.ndarray:
    """Stereo depth in metres; unknown (non-finite or non-positive) disparity becomes inf."""
    d = disparity.astype(np.float64)
    ok = np.isfinite(d) & (d > 0)
    depth = np.full(d.shape, np.inf)
    depth[ok] = baseline_m * focal_px / (d[ok] + doffs_px)
    return depth.astype(np.float32)


def middlebury_motorcycle() -> Sample:
    from skimage.data import stereo_motorcycle

    left, _right, disparity = stereo_motorcycle()
    depth = disparity_to_depth(disparity, MIDDLEBURY_FOCAL_PX, MIDDLEBURY_BASELINE_M, MIDDLEBURY_DOFFS_PX)
    return Sample("motorcycle", Image.fromarray(left).convert("RGB"), depth, MIDDLEBURY_FOCAL_PX)


def load_dataset(name_or_dir: str | Path, depth_scale: float | None = None) -> Dataset:
    """A built-in dataset by name, or a folder in the layout above."""
    if str(name_or_dir) == "middlebury-motorcycle":
        return Dataset("middlebury-motorcycle", [SampleRef("motorcycle", middlebury_motorcycle)])
    root = Path(name_or_dir).expanduser()
    if not root.exists():
        why = missing_reason(root)
        why = "no such folder" if why.startswith("no such") else why
        raise BadInputError(f"--dataset {name_or_dir}: not a built-in dataset ({', '.join(BUILTIN)}) and {why}")
    if not root.is_dir():
        raise BadInputError(f"--dataset {root}: expected a folder with images/ and depth/ (see docs/depth.md)")
    images_dir, depth_dir = root / "images", root / "depth"
    for sub in (images_dir, depth_dir):
        if not sub.is_dir():
            raise BadInputError(
                f"--dataset {root}: missing {sub.name}/ folder (layout: images/NAME.jpg + depth/NAME.npy|png)"
            )
    intrinsics = _read_intrinsics(root / "intrinsics.json")
    depth_files: dict[str, Path] = {}
    for p in _listing(depth_dir):
        if p.suffix.lower() in {".npy", ".png"}:
            if p.stem in depth_files:
                raise BadInputError(
                    f"{depth_dir}: two ground-truth files for {p.stem!r} ({depth_files[p.stem].name}, {p.name})"
                )
            depth_files[p.stem] = p
    refs, skipped = [], []
    for img in (p for p in _listing(images_dir) if p.suffix.lower() in IMAGE_SUFFIXES):
        gt = depth_files.get(img.stem)
        if gt is None:
            skipped.append(img.name)
            continue
        focal = intrinsics.get(img.stem, intrinsics.get("*"))
        refs.append(SampleRef(img.stem, _loader(img, gt, depth_scale, focal)))
    if not refs:
        raise BadInputError(f"--dataset {root}: no image in images/ has a ground-truth file of the same name in depth/")
    return Dataset(root.name, refs, skipped=skipped)


def _listing(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError as exc:
        raise BadInputError(f"{folder}: cannot list this folder ({os_reason(exc)})") from None


def _loader(image: Path, gt: Path, depth_scale: float | None, focal: float | None) -> Callable[[], Sample]:
    def load() -> Sample:
        for path in (image, gt):  # permission denied or a symlink loop is said as such, never "corrupt"
            if (why := readable_reason(path)) is not None:
                raise BadInputError(f"{path}: cannot read ({why})")
        return Sample(image.stem, load_image(image), read_depth(gt, depth_scale), focal)

    return load


def read_depth(path: Path, depth_scale: float | None = None) -> np.ndarray:
    """Ground-truth depth in metres from .npy (x scale, default 1) or 16-bit .png (x scale, default 0.001)."""
    try:
        if path.suffix.lower() == ".npy":
            raw = np.load(path, allow_pickle=False)
            if raw.ndim == 3 and 1 in (raw.shape[0], raw.shape[-1]):
                raw = raw.squeeze()
            if raw.ndim != 2 or not np.issubdtype(raw.dtype, np.number):
                raise BadInputError(f"{path}: ground truth must be a 2-D numeric array, found {raw.dtype} {raw.shape}")
            depth = raw.astype(np.float32) * np.float32(depth_scale or 1.0)
        else:
            depth = read_png16(path, depth_scale if depth_scale is not None else 0.001)
    except BadInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - unreadable ground truth: one clear line
        raise BadInputError(f"{path}: cannot read ground-truth depth ({type(exc).__name__}: {exc})") from exc
    return np.where(np.isfinite(depth) & (depth > 0), depth, np.inf).astype(np.float32)


def _read_intrinsics(path: Path) -> dict[str, float]:
    """NAME -> fx in pixels; entries may be a number or an object with fx (fy, cx, cy are allowed, unused)."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read ({os_reason(exc)})") from None
    except ValueError as exc:
        raise BadInputError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise BadInputError(f'{path}: expected an object {{"NAME": {{"fx": px}}}}')
    out: dict[str, float] = {}
    for name, value in data.items():
        fx = value.get("fx") if isinstance(value, dict) else value
        try:
            out[name] = float(fx)
        except (TypeError, ValueError):
            raise BadInputError(f'{path}: entry {name!r} needs "fx" in pixels, found {value!r}') from None
        if not (out[name] > 0 and math.isfinite(out[name])):
            raise BadInputError(f"{path}: entry {name!r}: fx must be a positive number of pixels")
    return out
