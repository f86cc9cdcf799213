"""Where each image's outputs go, and writing them: picture, raw depth, 16-bit PNG, point cloud, sidecar.

Outputs keep the input's relative path under `--out`: `photos/a/b.jpg` given as the folder `photos`
becomes `OUT/a/b.depth.png`, `OUT/a/b.depth.npy`, ... The JSON sidecar is written last, so its
presence (with the other files, each checked whole) is what `--resume` trusts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from visionbench.depth import io
from visionbench.depth.inputs import find_inputs
from visionbench.depth.pointcloud import backproject, write_ply
from visionbench.errors import BadInputError, VisionbenchError


class OutputWriteError(VisionbenchError):
    """Writing an output failed in the filesystem (disk full, read-only, no permission): the run stops there."""

    exit_code = 1


@dataclass(frozen=True)
class OutputPlan:
    """The files one input image produces (all under the output folder)."""

    source: Path
    base: Path  # OUT/rel/stem, without suffix

    def files(self, *, kind: str, side_by_side: bool, ply: bool, raw: bool = True) -> dict[str, Path]:
        metric = kind == "metric"
        out = {"picture": self.with_suffix(".depth.png")}
        if raw:
            out["npy"] = self.with_suffix(".depth.npy" if metric else ".inverse_depth.npy")
            if metric:
                out["png16_mm"] = self.with_suffix(".depth16.png")
        if side_by_side:
            out["side_by_side"] = self.with_suffix(".side.png")
        if ply and metric:
            out["ply"] = self.with_suffix(".ply")
        out["sidecar"] = self.with_suffix(".json")
        return out

    def with_suffix(self, suffix: str) -> Path:
        return self.base.with_name(self.base.name + suffix)

    def complete(self, **kw: Any) -> bool:
        """Every output is there and whole (a truncated or garbled file means the image is done again)."""
        return all(io.is_whole(p) for p in self.files(**kw).values())


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


@dataclass
class InputScan:
    """What a run will read: one plan per image, files left out (inside `--out`), paths that could not be read."""

    plans: list[OutputPlan]
    excluded: list[Path]
    problems: list[tuple[Path, str]]  # (path, reason): unlistable folders, symlink loops, dangling links


def scan_inputs(inputs: list[str | Path], out: Path) -> InputScan:
    """Images found in `inputs` with their output names, the files left out and the paths that cannot be read.

    The output folder may sit inside an input folder: its files are never read back as inputs. It may
    not be an input folder itself or contain one (outputs would mix with, or shadow, the photos).
    """
    out = Path(out).expanduser().resolve()
    plans: list[OutputPlan] = []
    excluded: list[Path] = []
    problems: list[tuple[Path, str]] = []
    used: set[Path] = set()
    for item in inputs:
        root_arg = Path(item).expanduser()
        found = find_inputs([root_arg])  # a missing input or a symlink loop is a BadInputError naming it
        problems += found.problems
        root = root_arg.resolve()
        if root.is_dir() and (root == out or _inside(root, out)):
            raise BadInputError(f"--out {out} is the input folder {root} or contains it; choose a separate folder")
        base_dir = root if root.is_dir() else root.parent
        for path in found.paths:
            resolved = path.expanduser().resolve()
            if _inside(resolved, out):
                excluded.append(path)
                continue
            rel = resolved.relative_to(base_dir) if _inside(resolved, base_dir) else Path(resolved.name)
            base = out / rel.parent / rel.stem
            if base in used:  # a.jpg and a.png side by side, or the same name from two inputs
                base = out / rel.parent / (rel.stem + "_" + rel.suffix.lstrip(".").lower())
                n = 2
                while base in used:
                    base, n = out / rel.parent / f"{rel.stem}_{n}", n + 1
            used.add(base)
            plans.append(OutputPlan(path, base))
    return InputScan(plans, excluded, problems)


def no_images_message(inputs: list[str | Path], scan: InputScan, out: Path) -> str:
    """Why a run has nothing to do, in the words that help: all inside --out, unreadable, or none there."""
    where = ", ".join(map(str, inputs))
    if scan.excluded:
        return (f"every image found in {where} ({len(scan.excluded)}) lies inside --out {out}; outputs are never "
                "read back as inputs: pass the photos' folder or choose another --out")  # fmt: skip
    if scan.problems:
        path, reason = scan.problems[0]
        more = f" (and {len(scan.problems) - 1} more)" if len(scan.problems) > 1 else ""
        return f"no images could be read in {where}: {path}: {reason}{more}"
    return f"no images found in {where} (looked for jpg, jpeg, png, webp, bmp, tiff)"


def weights_record(model: Any) -> dict[str, Any]:
    """The model's weights record as the adapter exposes it (source, revision, file hashes when known):
    the results-schema form (`record()`) where the adapter has it, so every output says the same."""
    weights = model.weights
    if callable(getattr(weights, "record", None)):
        weights = weights.record()
    if hasattr(weights, "model_dump"):
        return weights.model_dump(mode="json")
    from dataclasses import asdict, is_dataclass

    return asdict(weights) if is_dataclass(weights) else {"source": str(weights)}


def depth_stats(depth: np.ndarray) -> dict[str, float | None]:
    d = depth[np.isfinite(depth)]
    if not d.size:
        return dict.fromkeys(("min", "max", "mean", "median", "std"))
    return {"min": float(d.min()), "max": float(d.max()), "mean": float(d.mean()),
            "median": float(np.median(d)), "std": float(d.std())}  # fmt: skip


def write_image_outputs(
    plan: OutputPlan,
    photo: Image.Image,
    depth: np.ndarray,
    *,
    kind: str,
    focal_px: float | None,
    cmap: str,
    side_by_side: bool,
    ply: bool,
    ply_stride: int,
    sidecar: dict[str, Any],
    raw: bool = True,
) -> dict[str, Path]:
    """Write every file of one image; the sidecar goes last and lists the others (relative names)."""
    files = plan.files(kind=kind, side_by_side=side_by_side, ply=ply, raw=raw)
    picture = io.colourise(depth, kind, cmap)
    io.save_image(files["picture"], picture)
    if "npy" in files:
        io.save_npy(files["npy"], depth)
    if "png16_mm" in files:
        io.save_png16_mm(files["png16_mm"], depth)
    if "side_by_side" in files:
        io.save_image(files["side_by_side"], io.side_by_side(photo, picture))
    if "ply" in files:
        if focal_px is None or not math.isfinite(focal_px) or focal_px <= 0:
            raise BadInputError(f"{plan.source}: no focal length for the point cloud (pass --focal-px)")
        points, colours = backproject(depth, focal_px, stride=ply_stride, colours=np.asarray(photo.convert("RGB")))
        write_ply(files["ply"], points, colours)
        sidecar["ply_points"] = int(len(points))
    sidecar["files"] = {k: p.name for k, p in files.items() if k != "sidecar"}
    io.write_json(files["sidecar"], sidecar)
    return files
