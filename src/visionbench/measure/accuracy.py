"""How far one model output is from another's on the same image: a variant's or a lower precision's accuracy
cost against float32.

- depth: `max_rel` = max|d - ref| / max|ref|, `mean_rel` = mean|d - ref| / mean|ref| (both relative to the
  map's scale, so pixels near zero do not dominate), `abs_rel` = mean(|d - ref| / ref) over ref > 0;
- detection: boxes matched one to one, highest IoU first (`match_boxes`); `box_match_iou90` is the share of
  reference boxes with a same-class box at IoU >= 0.9, and `box_count_ratio` the ratio of counts;
- masks: `mask_iou`, the mean IoU of the masks paired in order (the same prompts or detections).

numpy, not torchvision.ops: importing that maps its C++ ops into every worker's memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def depth_difference(ref: np.ndarray, d: np.ndarray) -> dict[str, float | None]:
    """max_rel, mean_rel (relative to the map's scale) and AbsRel of `d` against `ref` (same shape)."""
    ref, d = np.asarray(ref, np.float64), np.asarray(d, np.float64)
    ok = np.isfinite(ref) & np.isfinite(d)
    ref, d = ref[ok], d[ok]
    if ref.size == 0:
        return {"max_rel": None, "mean_rel": None, "abs_rel": None}
    diff = np.abs(d - ref)
    scale_max, scale_mean = float(np.abs(ref).max()), float(np.abs(ref).mean())
    pos = ref > 0
    return {
        "max_rel": float(diff.max() / scale_max) if scale_max > 0 else None,
        "mean_rel": float(diff.mean() / scale_mean) if scale_mean > 0 else None,
        "abs_rel": float((diff[pos] / ref[pos]).mean()) if pos.any() else None,
    }


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of xyxy boxes a [N, 4] and b [M, 4]."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: np.clip(x[:, 2:] - x[:, :2], 0, None).prod(-1)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def match_boxes(
    a: np.ndarray, b: np.ndarray, min_iou: float = 0.5, allowed: np.ndarray | None = None
) -> tuple[list[float], list[tuple[int, int]]]:
    """Greedy one-to-one matching, highest IoU first, down to `min_iou`; `allowed` [N, M] limits the pairs
    (e.g. same class). Returns the matched IoUs and (index in a, index in b) pairs."""
    if not len(a) or not len(b):
        return [], []
    iou = box_iou(a, b)
    if allowed is not None:
        iou = np.where(allowed, iou, -1.0)
    ious, pairs = [], []
    while iou.max() >= min_iou:
        i, j = np.unravel_index(int(iou.argmax()), iou.shape)
        ious.append(float(iou[i, j]))
        pairs.append((int(i), int(j)))
        iou[i, :], iou[:, j] = -1.0, -1.0
    return ious, pairs


def box_match_share(
    ref_boxes: np.ndarray, ref_classes: np.ndarray, boxes: np.ndarray, classes: np.ndarray, iou: float = 0.9
) -> float | None:
    """Share of reference boxes matched one to one by a same-class box at IoU >= `iou`; None without any."""
    if len(ref_boxes) == 0:
        return None if len(boxes) == 0 else 0.0
    same = np.asarray(ref_classes)[:, None] == np.asarray(classes)[None, :]
    _, pairs = match_boxes(ref_boxes, boxes, iou, same)
    return len(pairs) / len(ref_boxes)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boolean masks (1 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def paired_mask_iou(ref: np.ndarray, masks: np.ndarray) -> float | None:
    """Mean IoU of masks paired in order, unpaired ones counting 0; None when there are none."""
    n = min(len(ref), len(masks))
    if n == 0:
        return None if len(ref) == len(masks) else 0.0
    return sum(mask_iou(a, b) for a, b in zip(ref[:n], masks[:n], strict=True)) / max(len(ref), len(masks))


def accuracy_cost(reference: list[Any], preds: list[Any]) -> dict[str, float | None]:
    """The accuracy cost of `preds` against `reference` (Predictions of the same images), averaged per image
    (`max_rel`: the largest)."""
    rows: list[dict[str, float | None]] = []
    for ref, p in zip(reference, preds, strict=False):
        row: dict[str, float | None] = {}
        if ref.depth is not None and p.depth is not None:
            row.update(depth_difference(ref.depth, p.depth))
        if ref.boxes is not None and p.boxes is not None:
            row["box_match_iou90"] = box_match_share(ref.boxes, ref.classes, p.boxes, p.classes)
            row["box_count_ratio"] = len(p.boxes) / len(ref.boxes) if len(ref.boxes) else None
        if ref.masks is not None and p.masks is not None:
            row["mask_iou"] = paired_mask_iou(ref.masks, p.masks)
        rows.append(row)
    out: dict[str, float | None] = {}
    for k in sorted({k for r in rows for k in r}):
        vals = [r[k] for r in rows if r.get(k) is not None]
        out[k] = float(max(vals)) if k == "max_rel" and vals else (float(np.mean(vals)) if vals else None)
    return out
