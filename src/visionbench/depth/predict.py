"""One forward + postprocess of a depth model, with known focal lengths given to DepthPro *before* its depth is made.

DepthPro predicts canonical inverse depth c; post-processing turns it into metres with a focal length:
inverse depth = c * W / f, then interpolation to the image size and 1 / clamp(., 1e-4, 1e4). Replacing the
FOV head's output by the field of view of a known focal length before post-processing therefore gives the
depth that focal length implies, exactly and with the same clamping (scaling finished depth by f' / f would
also scale the clamped, far-away pixels). The FOV head's own estimate is kept for the record.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from visionbench.depth.intrinsics import focal_from_fov_deg, fov_deg_from_focal
from visionbench.errors import UnsupportedOptionError
from visionbench.models.base import Batch, Prediction, VisionModel


def is_depth_pro(model: VisionModel) -> bool:
    from visionbench.models.depth_pro import DepthProModel

    return isinstance(model, DepthProModel)


def depth_kind(name: str, task: str, command: str = "depth", ply: bool = False) -> str:
    """ "metric" or "relative-inverse"; a model that makes no depth, or --ply without metres, is refused."""
    if not task.startswith("depth"):
        raise UnsupportedOptionError(f"{name} is a {task} model; `{command}` needs a depth model")
    kind = "metric" if task == "depth-metric" else "relative-inverse"
    if ply and kind != "metric":
        raise UnsupportedOptionError(f"--ply needs metric depth; {name} predicts relative inverse depth")
    return kind


def batch_key(model: VisionModel) -> Any:
    """DepthPro resizes every image to one square: any images stack. Others keep aspect: group by size."""
    return None if is_depth_pro(model) else (lambda im: im.size)


def override_fov(
    outputs: Any, sizes: Sequence[tuple[int, int]], focals_px: Sequence[float | None]
) -> list[float | None]:
    """Put the FOVs of the known focal lengths into DepthPro's outputs; return the FOV head's focal lengths (px).

    Images without a known focal length keep the head's FOV; without a FOV head they get f = W, which is
    what transformers assumes then (depth = 1 / c).
    """
    fov = getattr(outputs, "field_of_view", None)
    head = None if fov is None else fov.detach().float().reshape(-1).cpu().tolist()
    predicted = [None if head is None else _focal_or_none(head[i], w) for i, (_, w) in enumerate(sizes)]
    if all(f is None for f in focals_px):
        return predicted
    new = []
    for i, ((_, w), f) in enumerate(zip(sizes, focals_px, strict=True)):
        if f is not None:
            new.append(fov_deg_from_focal(f, w))
        else:
            new.append(head[i] if head is not None else fov_deg_from_focal(float(w), w))
    device = fov.device if fov is not None else outputs.predicted_depth.device
    shape = fov.shape if fov is not None else (len(new),)
    outputs.field_of_view = torch.tensor(new, dtype=torch.float32, device=device).reshape(shape)
    return predicted


def _focal_or_none(fov_deg: float, width: int) -> float | None:
    """A focal length from a FOV in (0, 180) degrees; None for what an untrained head may give (0, negative, nan)."""
    return focal_from_fov_deg(fov_deg, width) if math.isfinite(fov_deg) and 0.0 < fov_deg < 180.0 else None


def has_fov_head(model: VisionModel) -> bool:
    return getattr(model.module, "fov_model", None) is not None


def forward_depth(
    model: VisionModel, batch: Batch, known_focals_px: Sequence[float | None] | None = None
) -> tuple[list[Prediction], list[float | None]]:
    """Predictions for a preprocessed batch and each image's focal length from the model itself (px or None).

    With DepthPro, a known focal length (not None) sets that image's depth scale and its `focal_px`.
    Other models ignore `known_focals_px` (their depth does not depend on it).
    """
    known = list(known_focals_px) if known_focals_px is not None else [None] * batch.batch_size
    with torch.inference_mode():
        outputs = model.forward(batch)
        if is_depth_pro(model):
            predicted = override_fov(outputs, batch.sizes, known)
            preds = model.postprocess(outputs, batch)
        else:
            preds = model.postprocess(outputs, batch)
            predicted = [p.focal_px for p in preds]
    for pred, size in zip(preds, batch.sizes, strict=True):
        pred.depth = image_shaped(pred.depth, size)
    return preds, predicted


def image_shaped(depth: Any, size: tuple[int, int]) -> Any:
    """Depth as [H, W] of its image. transformers' post-processing squeezes every axis of length 1, so a
    photo 1 px wide or high came back 1-D and every writer after it failed; the values are in order."""
    if depth is None or depth.shape == tuple(size):
        return depth
    if depth.size != size[0] * size[1]:
        raise ValueError(f"depth of shape {tuple(depth.shape)} does not fit its image of {size[1]}x{size[0]} px")
    return depth.reshape(size)
