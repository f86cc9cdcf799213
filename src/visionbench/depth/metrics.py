"""Standard monocular depth metrics over valid pixels, and the alignment relative models need first.

With d the prediction and d* the ground truth (metres), over the valid pixels:
    abs_rel = mean(|d - d*| / d*)           sq_rel = mean((d - d*)^2 / d*)
    rmse = sqrt(mean((d - d*)^2))           rmse_log = sqrt(mean((ln d - ln d*)^2))
    log10 = mean(|log10 d - log10 d*|)
    g = ln d - ln d*:  silog_eigen = sqrt(mean g^2 - 0.5 (mean g)^2)       (Eigen et al. 2014, lambda 0.5)
                       silog_kitti = 100 sqrt(mean g^2 - (mean g)^2)        (KITTI benchmark, lambda 1, x100)
    delta_k = fraction with max(d / d*, d* / d) < 1.25^k, k = 1, 2, 3
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from visionbench.errors import BadInputError

METRIC_NAMES = ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "silog_eigen", "silog_kitti",
                "delta1", "delta2", "delta3")  # fmt: skip
ASPECT_TOLERANCE = 0.02  # relative; more than this is another picture, not another resolution


def valid_mask(
    gt: np.ndarray, pred: np.ndarray | None = None, min_depth: float = 1e-3, max_depth: float | None = None
) -> np.ndarray:
    """Pixels that count: ground truth finite, positive, inside [min_depth, max_depth]; prediction finite, > 0."""
    ok = np.isfinite(gt) & (gt > 0) & (gt >= min_depth)
    if max_depth is not None:
        ok &= gt <= max_depth
    if pred is not None:
        ok &= np.isfinite(pred) & (pred > 0)
    return ok


def resize_to(depth: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a prediction to the ground truth's (H, W); refuses another aspect ratio."""
    if depth.shape == tuple(shape):
        return depth
    h, w = depth.shape
    gh, gw = shape
    if abs((h / w) / (gh / gw) - 1.0) > ASPECT_TOLERANCE:
        raise BadInputError(
            f"ground truth is {gw}x{gh} but the image is {w}x{h}: another aspect ratio, so not the same view "
            "(crop or resize the ground truth to the image)"
        )
    t = torch.from_numpy(np.array(depth, dtype=np.float32))[None, None]  # a writable copy
    return F.interpolate(t, size=(gh, gw), mode="bilinear", align_corners=False)[0, 0].numpy()


def depth_metrics(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """The metrics above over `mask`, computed in float64; NaN everywhere when no pixel is valid."""
    if pred.shape != gt.shape or mask.shape != gt.shape:
        raise ValueError(f"shapes differ: pred {pred.shape}, gt {gt.shape}, mask {mask.shape}")
    d = pred[mask].astype(np.float64)
    t = gt[mask].astype(np.float64)
    if d.size == 0:
        return dict.fromkeys(METRIC_NAMES, math.nan)
    diff = d - t
    g = np.log(d) - np.log(t)
    ratio = np.maximum(d / t, t / d)
    mean_g, mean_g2 = g.mean(), (g**2).mean()
    return {
        "abs_rel": float(np.mean(np.abs(diff) / t)),
        "sq_rel": float(np.mean(diff**2 / t)),
        "rmse": float(np.sqrt(np.mean(diff**2))),
        "rmse_log": float(np.sqrt(mean_g2)),
        "log10": float(np.mean(np.abs(np.log10(d) - np.log10(t)))),
        "silog_eigen": float(np.sqrt(max(mean_g2 - 0.5 * mean_g**2, 0.0))),
        "silog_kitti": float(100.0 * np.sqrt(max(mean_g2 - mean_g**2, 0.0))),
        "delta1": float(np.mean(ratio < 1.25)),
        "delta2": float(np.mean(ratio < 1.25**2)),
        "delta3": float(np.mean(ratio < 1.25**3)),
    }


def align_inverse_depth(
    pred_inverse: np.ndarray, gt: np.ndarray, mask: np.ndarray, max_depth: float | None = None
) -> tuple[np.ndarray, float, float]:
    """Least-squares scale s and shift t with s * pred + t ~ 1 / gt over `mask`; returns depth 1 / (s pred + t).

    Relative models (Depth Anything) predict inverse depth up to scale and shift, so this is the fair
    alignment (MiDaS protocol). Aligned inverse depth is floored at 1 / max_depth (or the farthest
    ground truth) so no pixel ends up at a negative or infinite depth.
    """
    p = pred_inverse[mask].astype(np.float64)
    y = 1.0 / gt[mask].astype(np.float64)
    if p.size < 2:
        raise BadInputError("fewer than 2 valid pixels: cannot align a relative prediction to the ground truth")
    a = np.stack([p, np.ones_like(p)], axis=1)
    (s, t), *_ = np.linalg.lstsq(a, y, rcond=None)
    far = max_depth if max_depth is not None else float(gt[mask].max())
    inv = np.maximum(s * pred_inverse.astype(np.float64) + t, 1.0 / far)
    return (1.0 / inv).astype(np.float32), float(s), float(t)


def focal_error_pct(pred_px: float | None, true_px: float | None) -> float | None:
    """|f - f*| / f* in percent, or None when either is unknown."""
    if pred_px is None or true_px is None or not true_px:
        return None
    return float(abs(pred_px - true_px) / true_px * 100.0)


def summarise(rows: list[dict[str, float | None]], keys: list[str]) -> dict[str, float | None]:
    """Mean over images of each metric (the usual protocol: per-image metrics, then the mean)."""
    out: dict[str, float | None] = {}
    for k in keys:
        vals = [float(r[k]) for r in rows if r.get(k) is not None and math.isfinite(float(r[k]))]  # type: ignore[arg-type]
        out[k] = float(np.mean(vals)) if vals else None
    return out
