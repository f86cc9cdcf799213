"""Depth metrics against hand-computed values, perfect scores for ground truth, known errors, boundary F1."""

from __future__ import annotations

import math

import numpy as np
import pytest

from visionbench.depth.boundary import boundary_f1, si_boundary_f1, thresholds_and_weights
from visionbench.depth.metrics import (
    align_inverse_depth,
    depth_metrics,
    focal_error_pct,
    resize_to,
    summarise,
    valid_mask,
)
from visionbench.errors import BadInputError


def test_metrics_match_hand_computed_values() -> None:
    gt = np.array([[1.0, 2.0], [4.0, np.inf]])
    pred = np.array([[2.0, 2.0], [2.0, 7.0]])
    m = depth_metrics(pred, gt, valid_mask(gt, pred))
    # valid pixels: (2 vs 1), (2 vs 2), (2 vs 4); the inf one is unknown
    assert m["abs_rel"] == pytest.approx((1 / 1 + 0 + 2 / 4) / 3)
    assert m["sq_rel"] == pytest.approx((1 / 1 + 0 + 4 / 4) / 3)
    assert m["rmse"] == pytest.approx(math.sqrt((1 + 0 + 4) / 3))
    ln2 = math.log(2)
    g = [ln2, 0.0, -ln2]  # ln d - ln d*
    assert m["rmse_log"] == pytest.approx(math.sqrt(sum(x * x for x in g) / 3))
    assert m["log10"] == pytest.approx((math.log10(2) * 2) / 3)
    mean_g2, mean_g = sum(x * x for x in g) / 3, sum(g) / 3
    assert m["silog_eigen"] == pytest.approx(math.sqrt(mean_g2 - 0.5 * mean_g**2))
    assert m["silog_kitti"] == pytest.approx(100 * math.sqrt(mean_g2 - mean_g**2))
    # ratios max(d/d*, d*/d) = 2, 1, 2: only the exact pixel is under 1.25, 1.25^2 and 1.25^3 (1.95)
    assert m["delta1"] == pytest.approx(1 / 3)
    assert m["delta2"] == pytest.approx(1 / 3)
    assert m["delta3"] == pytest.approx(1 / 3)


def test_silog_conventions_differ_when_the_mean_error_is_not_zero() -> None:
    gt = np.array([[1.0, 1.0]])
    pred = np.array([[math.e, 1.0]])  # g = 1, 0
    m = depth_metrics(pred, gt, np.ones_like(gt, bool))
    assert m["silog_eigen"] == pytest.approx(math.sqrt(0.5 - 0.5 * 0.25))
    assert m["silog_kitti"] == pytest.approx(100 * math.sqrt(0.5 - 0.25))


def test_ground_truth_as_prediction_scores_perfectly() -> None:
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.5, 20.0, (60, 80)).astype(np.float32)
    gt[rng.random(gt.shape) < 0.1] = np.inf
    m = depth_metrics(gt, gt, valid_mask(gt, gt))
    for k in ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "silog_eigen", "silog_kitti"):
        assert m[k] == pytest.approx(0.0, abs=1e-12), k
    assert m["delta1"] == m["delta2"] == m["delta3"] == 1.0
    assert si_boundary_f1(gt, gt) == pytest.approx(1.0)


@pytest.mark.parametrize("scale", [0.75, 1.1, 1.3, 2.0])
def test_a_known_scale_error_gives_the_known_abs_rel(scale: float) -> None:
    gt = np.random.default_rng(1).uniform(1.0, 10.0, (40, 50))
    m = depth_metrics(gt * scale, gt, valid_mask(gt))
    assert m["abs_rel"] == pytest.approx(abs(scale - 1))
    assert m["rmse_log"] == pytest.approx(abs(math.log(scale)))
    assert m["silog_kitti"] == pytest.approx(0.0, abs=1e-6)  # scale-invariant
    assert m["silog_eigen"] == pytest.approx(math.sqrt(0.5) * abs(math.log(scale)))
    assert m["delta1"] == (1.0 if max(scale, 1 / scale) < 1.25 else 0.0)


def test_valid_mask_honours_range_and_prediction() -> None:
    gt = np.array([0.0, -1.0, np.nan, np.inf, 0.5, 5.0, 50.0])
    pred = np.array([1, 1, 1, 1, 1, np.nan, 1.0])
    assert valid_mask(gt).tolist() == [False, False, False, False, True, True, True]
    assert valid_mask(gt, max_depth=10).tolist() == [False] * 4 + [True, True, False]
    assert valid_mask(gt, pred, min_depth=1.0).tolist() == [False] * 5 + [False, True]


def test_alignment_recovers_scale_and_shift_of_inverse_depth() -> None:
    gt = np.random.default_rng(2).uniform(1.0, 8.0, (30, 40))
    rel = 3.0 * (1.0 / gt) - 0.1  # what a relative model might output
    mask = valid_mask(gt)
    aligned, s, t = align_inverse_depth(rel, gt, mask)
    assert s == pytest.approx(1 / 3)
    assert t == pytest.approx(0.1 / 3)
    assert np.allclose(aligned, gt, rtol=1e-5)
    assert depth_metrics(aligned, gt, mask)["abs_rel"] < 1e-5


def test_resize_to_keeps_aspect_or_refuses() -> None:
    d = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert resize_to(d, (6, 8)).shape == (6, 8)
    with pytest.raises(BadInputError, match="aspect ratio"):
        resize_to(d, (8, 8))


def test_focal_error_and_summary() -> None:
    assert focal_error_pct(110.0, 100.0) == pytest.approx(10.0)
    assert focal_error_pct(None, 100.0) is None
    rows = [{"a": 1.0, "b": None}, {"a": 3.0, "b": float("nan")}]
    assert summarise(rows, ["a", "b"]) == {"a": 2.0, "b": None}


def test_boundary_f1_hand_computed() -> None:
    ts, ws = thresholds_and_weights()
    assert ts[0] == pytest.approx(1.05) and ts[-1] == pytest.approx(1.25) and len(ts) == 10
    assert ws.sum() == pytest.approx(1.0)
    # a near square (1 m) on a far wall (4 m): inverse depth ratio 4 > every threshold
    gt = np.full((20, 20), 4.0)
    gt[5:15, 5:15] = 1.0
    assert si_boundary_f1(gt, gt) == pytest.approx(1.0)
    assert si_boundary_f1(gt * 7.0, gt) == pytest.approx(1.0)  # scale-invariant
    assert si_boundary_f1(np.full_like(gt, 2.0), gt) == 0.0  # no edges predicted
    # the square shifted by one column: per direction, left/right contours miss, up/down match 9 of 10
    shifted = np.full((20, 20), 4.0)
    shifted[5:15, 6:16] = 1.0
    valid = np.ones_like(gt, bool)
    f1, p, r = boundary_f1(1 / shifted, 1 / gt, valid, 1.1)
    assert r == pytest.approx((0 + 0 + 0.9 + 0.9) / 4)
    assert p == pytest.approx(r)
    assert f1 == pytest.approx(0.45)
    assert si_boundary_f1(shifted, gt) == pytest.approx(0.45)


def test_boundary_f1_ignores_pairs_with_unknown_ground_truth() -> None:
    gt = np.full((10, 10), 3.0)
    gt[:, 5:] = np.inf  # unknown half: no contour is invented at its border
    pred = np.full((10, 10), 3.0)
    pred[:, 5:] = 1.0
    assert si_boundary_f1(pred, gt) == 0.0  # no contours anywhere in the valid part: F1 0, not a false 1
    pred2 = pred.copy()
    pred2[:, :5] = 3.0
    assert si_boundary_f1(pred2, gt, valid=np.isfinite(gt)) == 0.0
