"""Temporal metrics of video depth: scale drift, OPW-style flicker, TAE, one alignment per sequence.

Definitions, sources and conventions are in docs/video.md; in short:
- scale drift: r_t = m_t / median(m) with m_t frame t's median depth; std and max |r_t - 1|.
- flicker (OPW, NVDS, Wang et al. ICCV 2023): with backward flow F (frame t -> t-1) from the photos,
  D^_{t-1}(x) = D_{t-1}(x + F(x)) and I^_{t-1} likewise; w = exp(-50 sum_c (I^_{t-1} - I_t)^2), RGB on
  0..1; OPW_t = sum w |D_t - D^_{t-1}| / sum w over pixels warped from inside the frame, each depth
  map divided by its own median first. The sequence's value is the mean over pairs.
- TAE (Video Depth Anything, Chen et al. CVPR 2025): disparity aligned once per sequence (least squares
  scale and shift against 1 / GT), frame k back-projected with K, moved by the relative pose,
  reprojected (nearest pixel), AbsRel against frame k+1's aligned depth, both directions, mean over
  the 2 (N-1) terms, x100. Where several points land on one pixel the nearest wins (z-buffer).
"""

from __future__ import annotations

import math

import numpy as np

from visionbench.depth.metrics import depth_metrics, valid_mask

OPW_ALPHA = 50.0  # NVDS's weight exp(-alpha * ||I^ - I||^2), images on 0..1
# Flicker is computed at a working size of at most this many pixels on the long side: DIS flow at
# 640x480 costs several times a tiny model's forward on one core, and the flow is smooth anyway.
OPW_MAX_SIDE = 320
DISPARITY_FLOOR = 1e-3  # VDA clips predicted and aligned disparity here before inverting


def finite_positive(d: np.ndarray) -> np.ndarray:
    return np.isfinite(d) & (d > 0)


def median_normalised(depth: np.ndarray) -> np.ndarray | None:
    """Depth divided by its median over valid pixels (NaN elsewhere); None if nothing is valid."""
    ok = finite_positive(depth)
    if not ok.any():
        return None
    out = np.full(depth.shape, np.nan, np.float32)
    out[ok] = depth[ok] / np.median(depth[ok])
    return out


def backward_flow(photo_cur: np.ndarray, photo_prev: np.ndarray, method: str = "dis") -> np.ndarray:
    """[H, W, 2] flow with photo_cur(x) ~ photo_prev(x + F(x)): OpenCV DIS (fast preset) or Farneback."""
    import cv2

    cur = cv2.cvtColor(np.ascontiguousarray(photo_cur), cv2.COLOR_RGB2GRAY)
    prev = cv2.cvtColor(np.ascontiguousarray(photo_prev), cv2.COLOR_RGB2GRAY)
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(cur, prev, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    # FAST, not MEDIUM: on a 320x240 pan, mean |I^ - I| 2.02 vs 1.95 grey levels for a third of the time
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    return dis.calc(cur, prev, None)


def warp_backward(src: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """src sampled at x + F(x) (bilinear; NaN propagates) and where that point lies inside the frame."""
    import cv2

    h, w = flow.shape[:2]
    mx = flow[..., 0] + np.arange(w, dtype=np.float32)[None, :]
    my = flow[..., 1] + np.arange(h, dtype=np.float32)[:, None]
    # replicate, not a NaN border: the last row and column interpolate with the pixel beyond them
    warped = cv2.remap(np.ascontiguousarray(src, np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    return warped, inside


def opw(
    depth_prev: np.ndarray,
    depth_cur: np.ndarray,
    photo_prev: np.ndarray,
    photo_cur: np.ndarray,
    flow: np.ndarray | None = None,
    *,
    alpha: float = OPW_ALPHA,
    method: str = "dis",
    max_side: int | None = OPW_MAX_SIDE,
) -> float | None:
    """OPW of one pair of frames (see the module docstring); photos are uint8 RGB [H, W, 3].

    `flow` (backward, t -> t-1, at the photos' size) is estimated from the photos when not given;
    without a given flow, frames larger than `max_side` are first shrunk (photos by area, depth by nearest
    neighbour, so no depth is invented across an edge). None: no valid pixel.
    """
    if flow is None and max_side is not None and max(depth_cur.shape) > max_side:
        depth_prev, depth_cur, photo_prev, photo_cur = _shrink([depth_prev, depth_cur, photo_prev, photo_cur], max_side)
    prev_n, cur_n = median_normalised(depth_prev), median_normalised(depth_cur)
    if prev_n is None or cur_n is None:
        return None
    if flow is None:
        flow = backward_flow(photo_cur, photo_prev, method)
    d_warp, inside = warp_backward(prev_n, flow)
    i_warp, _ = warp_backward(np.asarray(photo_prev, np.float32) / 255.0, flow)
    diff2 = ((i_warp - np.asarray(photo_cur, np.float32) / 255.0) ** 2).sum(axis=-1)
    weight = np.exp(-alpha * diff2.astype(np.float64))
    ok = inside & np.isfinite(d_warp) & np.isfinite(cur_n) & np.isfinite(weight)
    total = weight[ok].sum()
    if not ok.any() or total <= 0:
        return None
    return float((weight[ok] * np.abs(cur_n[ok].astype(np.float64) - d_warp[ok])).sum() / total)


def _shrink(arrays: list[np.ndarray], max_side: int) -> list[np.ndarray]:
    import cv2

    h, w = arrays[0].shape[:2]
    f = max_side / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    how = {2: cv2.INTER_NEAREST, 3: cv2.INTER_AREA}  # depth by nearest neighbour, photos by area
    return [cv2.resize(np.ascontiguousarray(a), size, interpolation=how[a.ndim]) for a in arrays]


def scale_drift(medians: list[float], kind: str, focals_px: list[float] | None = None) -> dict[str, float | None]:
    """How far each frame's median depth strays from the sequence's; DepthPro's focal spread too."""
    m = np.array([x for x in medians if x is not None and math.isfinite(x) and x > 0], np.float64)
    out: dict[str, float | None] = {}
    if m.size:
        ref = float(np.median(m))
        r = m / ref
        out.update(median_depth=ref, ratio_std=float(r.std()), ratio_max_dev_pct=float(np.abs(r - 1).max() * 100),
                   ratio_min=float(r.min()), ratio_max=float(r.max()))  # fmt: skip
        if kind == "metric":
            out.update(median_std_m=float(m.std()), median_max_dev_m=float(np.abs(m - ref).max()),
                       median_std_pct=float(m.std() / ref * 100))  # fmt: skip
    f = np.array([x for x in (focals_px or []) if x is not None and math.isfinite(x) and x > 0], np.float64)
    if f.size:
        out.update(focal_mean_px=float(f.mean()), focal_spread_pct=float(f.std() / f.mean() * 100),
                   focal_range_pct=float((f.max() - f.min()) / f.mean() * 100))  # fmt: skip
    return out


def disparity(pred: np.ndarray, kind: str) -> np.ndarray:
    """What the alignment fits: 1 / depth for metric models, the output itself for relative ones."""
    p = pred.astype(np.float64)
    if kind == "metric":
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.where(finite_positive(p), 1.0 / p, np.nan)
    return p


class DisparityFit:
    """Least-squares s, t with s p + t ~ 1 / gt over every valid pixel of a sequence, fed frame by frame.

    The five sums are what `lstsq` on the stacked frames solves, so a sequence never has to sit in memory.
    As in VDA's code the predicted disparity is clipped at 1e-3 before the fit.
    """

    def __init__(self) -> None:
        self.spp = self.sp = self.n = self.spy = self.sy = 0.0

    def add(self, pred: np.ndarray, kind: str, gt: np.ndarray) -> None:
        p = np.maximum(disparity(pred, kind), DISPARITY_FLOOR)
        ok = valid_mask(gt) & np.isfinite(p)
        p, y = p[ok], 1.0 / gt[ok].astype(np.float64)
        self.spp += float(p @ p)
        self.sp += float(p.sum())
        self.n += float(p.size)
        self.spy += float(p @ y)
        self.sy += float(y.sum())

    def solve(self) -> tuple[float, float] | None:
        det = self.spp * self.n - self.sp * self.sp
        if self.n < 2 or det <= 0:
            return None
        return (self.n * self.spy - self.sp * self.sy) / det, (self.spp * self.sy - self.sp * self.spy) / det


def aligned_depth(pred: np.ndarray, kind: str, scale: float, shift: float, max_depth: float) -> np.ndarray:
    """Depth from aligned disparity, clipped as VDA does: disparity >= 1e-3, depth in [1e-3, max_depth]."""
    disp = np.maximum(scale * np.maximum(disparity(pred, kind), DISPARITY_FLOOR) + shift, DISPARITY_FLOOR)
    depth = np.clip(1.0 / disp, 1e-3, max_depth)
    return np.where(np.isfinite(depth), depth, max_depth).astype(np.float32)


def reproject(depth: np.ndarray, k: np.ndarray, rel: np.ndarray, src_mask: np.ndarray | None = None) -> np.ndarray:
    """Depth of frame a seen from frame b: back-project with K, apply rel = T_b<-a (4x4), project, round.

    Pixels no point lands on are 0; where several land, the nearest wins.
    """
    h, w = depth.shape
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    z = depth.astype(np.float64)
    ok = finite_positive(z) if src_mask is None else finite_positive(z) & src_mask
    pts = np.stack([(u[ok] - cx) * z[ok] / fx, (v[ok] - cy) * z[ok] / fy, z[ok]], axis=1)
    moved = pts @ rel[:3, :3].T + rel[:3, 3]
    zb = moved[:, 2]
    front = zb > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        ub = np.rint(moved[:, 0] * fx / zb + cx)
        vb = np.rint(moved[:, 1] * fy / zb + cy)
    inb = front & (ub >= 0) & (ub < w) & (vb >= 0) & (vb < h)
    flat = vb[inb].astype(np.int64) * w + ub[inb].astype(np.int64)
    out = np.full(h * w, np.inf)
    np.minimum.at(out, flat, zb[inb])
    out[~np.isfinite(out)] = 0.0
    return out.reshape(h, w)


def abs_rel_against(target: np.ndarray, projected: np.ndarray, mask: np.ndarray) -> float | None:
    """mean |target - projected| / target where both are positive and `mask` holds (VDA's order)."""
    ok = (projected > 0) & finite_positive(target) & mask
    if not ok.any():
        return None
    t = target[ok].astype(np.float64)
    return float(np.mean(np.abs(t - projected[ok]) / t))


def tae_pair(d1: np.ndarray, d2: np.ndarray, k: np.ndarray, pose1: np.ndarray, pose2: np.ndarray,
             mask1: np.ndarray, mask2: np.ndarray) -> tuple[float | None, float | None]:  # fmt: skip
    """Both directions of one pair; poses are camera-to-world 4x4, so T_2<-1 = inv(pose2) pose1."""
    rel21 = np.linalg.inv(pose2) @ pose1
    e12 = abs_rel_against(d2, reproject(d1, k, rel21), mask2)
    e21 = abs_rel_against(d1, reproject(d2, k, np.linalg.inv(rel21)), mask1)
    return e12, e21


def tae(terms: list[float | None]) -> float | None:
    """x100 mean of the pair terms; a pair with no overlap counts 0, as in VDA's code."""
    if not terms:
        return None
    return float(100.0 * np.mean([0.0 if t is None else t for t in terms]))


def frame_scores(pred: np.ndarray, kind: str, gt: np.ndarray) -> dict[str, float | None]:
    """Per-frame AbsRel and delta1: aligned per frame (scale and shift in disparity), and raw for metric models."""
    from visionbench.depth.metrics import align_inverse_depth

    mask = valid_mask(gt, pred if kind == "metric" else None)
    out: dict[str, float | None] = {}
    if mask.sum() < 2:
        return out
    disp = disparity(pred, kind)
    mask &= np.isfinite(disp)
    aligned, _, _ = align_inverse_depth(np.nan_to_num(disp).astype(np.float32), gt, mask)
    m = depth_metrics(aligned, gt, mask & finite_positive(aligned))
    out.update(abs_rel_aligned=m["abs_rel"], delta1_aligned=m["delta1"])
    if kind == "metric":
        raw = depth_metrics(pred, gt, mask)
        out.update(abs_rel=raw["abs_rel"], delta1=raw["delta1"])
    return out


class PooledScores:
    """Video-level AbsRel and delta1 over every valid pixel of the sequence, after one alignment."""

    def __init__(self) -> None:
        self.abs_rel_sum = 0.0
        self.delta1_hits = 0.0
        self.n = 0

    def add(self, aligned: np.ndarray, gt: np.ndarray) -> None:
        ok = valid_mask(gt, aligned)
        d, t = aligned[ok].astype(np.float64), gt[ok].astype(np.float64)
        self.abs_rel_sum += float(np.sum(np.abs(d - t) / t))
        self.delta1_hits += float(np.sum(np.maximum(d / t, t / d) < 1.25))
        self.n += int(d.size)

    def result(self) -> dict[str, float | None]:
        if not self.n:
            return {"abs_rel": None, "delta1": None}
        return {"abs_rel": self.abs_rel_sum / self.n, "delta1": self.delta1_hits / self.n}
