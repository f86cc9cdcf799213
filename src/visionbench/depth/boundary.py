"""The scale-invariant boundary F1 of the DepthPro paper (Bochkovskii et al. 2024, sec. 3.2), from depth ground truth.

Definition, as in apple/ml-depth-pro `eval/boundary_metrics.py` (written here from the definition):
- work in inverse depth; a pair of neighbouring pixels (i, j) has an occluding contour when
  inv[j] / inv[i] > t, i.e. pixel j is nearer than pixel i by more than the factor t. Each of the four
  directions (left, up, right, down neighbour) is a separate set of contour pixels;
- precision and recall of the predicted contours against the ground-truth ones are averaged over the four
  directions, F1 = 2 P R / (P + R) (0 when both are 0);
- the thresholds are t = linspace(1.05, 1.25, 10) and the F1 values are averaged with weights t / sum(t).
Ratios make it invariant to the scale of the prediction, so relative models need no alignment.
One deliberate difference: a pair with an invalid ground-truth or predicted pixel (unknown depth, out of range)
counts for neither side, where the reference (which assumes dense ground truth) would see a contour there.
"""

from __future__ import annotations

import numpy as np

T_MIN, T_MAX, N_THRESHOLDS = 1.05, 1.25, 10


def thresholds_and_weights(
    t_min: float = T_MIN, t_max: float = T_MAX, n: int = N_THRESHOLDS
) -> tuple[np.ndarray, np.ndarray]:
    t = np.linspace(t_min, t_max, n)
    return t, t / t.sum()


def _inverse(depth: np.ndarray, valid: np.ndarray) -> np.ndarray:
    inv = np.zeros(depth.shape, dtype=np.float64)
    inv[valid] = 1.0 / depth[valid].astype(np.float64)
    return inv


def _neighbour_pairs(inv: np.ndarray, valid: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """For each direction: (this pixel's inverse depth, the neighbour's, both valid)."""
    left, right = inv[:, :-1], inv[:, 1:]
    ok_h = valid[:, :-1] & valid[:, 1:]
    top, bottom = inv[:-1, :], inv[1:, :]
    ok_v = valid[:-1, :] & valid[1:, :]
    # (here, there): the contour is "there is nearer than here by more than t"
    return [(right, left, ok_h), (left, right, ok_h), (bottom, top, ok_v), (top, bottom, ok_v)]


def contours(inv: np.ndarray, valid: np.ndarray, t: float) -> list[np.ndarray]:
    """Four boolean maps: neighbour nearer than this pixel by more than factor t (valid pairs only)."""
    out = []
    for here, there, ok in _neighbour_pairs(inv, valid):
        with np.errstate(divide="ignore", invalid="ignore"):
            out.append(ok & (here > 0) & (there / np.where(here > 0, here, 1.0) > t))
    return out


def boundary_f1(pred_inv: np.ndarray, gt_inv: np.ndarray, valid: np.ndarray, t: float) -> tuple[float, float, float]:
    """(F1, precision, recall) at one threshold, precision and recall averaged over the four directions."""
    p_maps, g_maps = contours(pred_inv, valid, t), contours(gt_inv, valid, t)
    recall = precision = 0.0
    for p, g in zip(p_maps, g_maps, strict=True):
        hit = np.count_nonzero(p & g)
        recall += hit / max(np.count_nonzero(g), 1) / 4
        precision += hit / max(np.count_nonzero(p), 1) / 4
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return f1, precision, recall


def si_boundary_f1(
    pred_depth: np.ndarray,
    gt_depth: np.ndarray,
    valid: np.ndarray | None = None,
    t_min: float = T_MIN,
    t_max: float = T_MAX,
    n: int = N_THRESHOLDS,
) -> float:
    """Scale-invariant boundary F1 in [0, 1] of a depth (or any positive, scale-free) prediction."""
    if pred_depth.shape != gt_depth.shape:
        raise ValueError(f"shapes differ: pred {pred_depth.shape}, gt {gt_depth.shape}")
    if valid is None:
        valid = np.isfinite(gt_depth) & (gt_depth > 0)
    valid = valid & np.isfinite(pred_depth) & (pred_depth > 0)
    pi, gi = _inverse(pred_depth, valid), _inverse(gt_depth, valid)
    ts, ws = thresholds_and_weights(t_min, t_max, n)
    return float(sum(w * boundary_f1(pi, gi, valid, float(t))[0] for t, w in zip(ts, ws, strict=True)))
