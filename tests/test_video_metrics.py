"""Temporal metrics against hand-computed values; ground truth fed back scores 0; the built-in sequence is exact."""

from __future__ import annotations

import math

import numpy as np
import pytest

from visionbench.depth.metrics import depth_metrics, valid_mask
from visionbench.video import metrics as vm
from visionbench.video.groundtruth import load_ground_truth
from visionbench.video.sample import camera_path, make_sample


def test_opw_hand_computed_weighted_mean() -> None:
    prev = np.array([[1, 2, 3], [1, 2, 3]], np.float32)  # median 2 -> 0.5 1 1.5
    cur = np.array([[2, 4, 6], [2, 4, 8]], np.float32)  # median 4 -> 0.5 1 1.5 / 0.5 1 2
    photo_prev = np.zeros((2, 3, 3), np.uint8)
    photo_cur = photo_prev.copy()
    photo_cur[1, 2, 0] = 51  # 0.2 on 0..1: weight exp(-50 * 0.04) = exp(-2) where the depths differ by 0.5
    got = vm.opw(prev, cur, photo_prev, photo_cur, flow=np.zeros((2, 3, 2), np.float32))
    w = math.exp(-2.0)
    assert got == pytest.approx(w * 0.5 / (5 + w), rel=1e-6)


def test_opw_is_zero_for_ground_truth_moved_by_the_flow_and_for_a_global_scale() -> None:
    rng = np.random.default_rng(0)
    photo = (rng.random((40, 60, 3)) * 255).astype(np.uint8)
    depth = (1.0 + rng.random((40, 60))).astype(np.float32)
    shift = 3  # the scene moves 3 px right: frame t at x shows frame t-1 at x - 3
    photo_cur, depth_cur = np.roll(photo, shift, axis=1), np.roll(depth, shift, axis=1)
    flow = np.zeros((40, 60, 2), np.float32)
    flow[..., 0] = -shift
    assert vm.opw(depth, depth_cur, photo, photo_cur, flow=flow) == 0.0
    zero = np.zeros((40, 60, 2), np.float32)
    assert vm.opw(depth, 2.5 * depth, photo, photo, flow=zero) == pytest.approx(0.0, abs=1e-7)  # median-normalised
    flicker = depth * (1 + 0.2 * rng.standard_normal(depth.shape)).astype(np.float32)
    assert vm.opw(depth, flicker, photo, photo, flow=zero) > 0.1


def test_opw_with_estimated_flow_scores_ground_truth_far_below_flicker() -> None:
    import cv2

    rng = np.random.default_rng(1)
    photo = cv2.GaussianBlur((rng.random((96, 128, 3)) * 255).astype(np.uint8), (5, 5), 0)
    depth = cv2.GaussianBlur((1.0 + rng.random((96, 128))).astype(np.float32), (9, 9), 0)
    cur_photo, cur_depth = np.roll(photo, 2, axis=1), np.roll(depth, 2, axis=1)
    gt_score = vm.opw(depth, cur_depth, photo, cur_photo)
    noisy = cur_depth * (1 + 0.1 * rng.standard_normal(cur_depth.shape)).astype(np.float32)
    assert gt_score is not None and gt_score < 0.01
    assert vm.opw(depth, noisy, photo, cur_photo) > 5 * gt_score


def test_scale_drift_hand_computed() -> None:
    got = vm.scale_drift([1.0, 2.0, 4.0], "metric", focals_px=[90.0, 100.0, 110.0])
    r = np.array([0.5, 1.0, 2.0])
    assert got["median_depth"] == 2.0 and got["ratio_std"] == pytest.approx(r.std())
    assert got["ratio_max_dev_pct"] == pytest.approx(100.0) and got["median_max_dev_m"] == pytest.approx(2.0)
    assert got["median_std_m"] == pytest.approx(np.std([1.0, 2.0, 4.0]))
    assert got["focal_spread_pct"] == pytest.approx(np.std([90, 100, 110]) / 100 * 100)
    assert got["focal_range_pct"] == pytest.approx(20.0)
    assert "median_std_m" not in vm.scale_drift([1.0, 2.0], "relative-inverse")


def test_disparity_fit_equals_lstsq_on_the_stacked_sequence() -> None:
    rng = np.random.default_rng(2)
    gts = [1 + 3 * rng.random((8, 9)).astype(np.float32) for _ in range(3)]
    gts[1][0, :4] = np.inf  # unknown pixels are left out
    preds = [(0.7 / g + 0.05 + 0.01 * rng.standard_normal(g.shape)).astype(np.float32) for g in gts]
    fit = vm.DisparityFit()
    for p, g in zip(preds, gts, strict=True):
        fit.add(p, "relative-inverse", g)
    p, g = np.concatenate(preds), np.concatenate(gts)
    ok = np.isfinite(g)
    a = np.stack([np.maximum(p[ok], 1e-3), np.ones(ok.sum())], axis=1).astype(np.float64)
    (s, t), *_ = np.linalg.lstsq(a, 1.0 / g[ok].astype(np.float64), rcond=None)
    assert fit.solve() == pytest.approx((s, t), rel=1e-9)


def _plane_sequence(n: int = 3, z: float = 2.0, fx: float = 100.0, h: int = 20, w: int = 30):
    """A fronto-parallel plane; the camera moves z / fx sideways per frame: exactly 1 px, no rounding."""
    k = np.array([[fx, 0, (w - 1) / 2], [0, fx, (h - 1) / 2], [0, 0, 1.0]])
    poses = np.tile(np.eye(4), (n, 1, 1))
    poses[:, 0, 3] = np.arange(n) * z / fx
    return k, poses, [np.full((h, w), z, np.float32) for _ in range(n)]


def test_tae_is_zero_for_ground_truth_and_matches_a_hand_computed_offset() -> None:
    k, poses, gts = _plane_sequence()
    ones = np.ones_like(gts[0], bool)
    terms = []
    for i in range(2):
        terms += vm.tae_pair(gts[i], gts[i + 1], k, poses[i], poses[i + 1], ones, ones)
    assert vm.tae(terms) == 0.0
    # frame 1 predicted 10 % farther: 1->2 gives |2.2 - 2| / 2.2, 2->1 gives |2 - 2.2| / 2
    e12, e21 = vm.tae_pair(gts[0], gts[1] * 1.1, k, poses[0], poses[1], ones, ones)
    assert e12 == pytest.approx(0.2 / 2.2) and e21 == pytest.approx(0.1)
    assert vm.tae([e12, e21]) == pytest.approx(100 * (0.2 / 2.2 + 0.1) / 2)


def test_reproject_keeps_the_nearest_point_and_leaves_holes_zero() -> None:
    k = np.array([[10.0, 0, 2], [0, 10.0, 2], [0, 0, 1]])
    depth = np.full((5, 5), 4.0)
    depth[2, 2] = 2.0  # a near point in front
    rel = np.eye(4)
    rel[0, 3] = -0.4  # moves pixels of depth 2 by 2 px left, depth 4 by 1 px left
    got = vm.reproject(depth, k, rel)
    assert got[2, 0] == 2.0  # the near point lands on (2, 0), over the far one from (2, 1)
    assert (got[:, 4] == 0).all()  # nothing comes in from the right: a hole


def test_video_level_alignment_gives_ground_truth_back_exactly() -> None:
    k, poses, gts = _plane_sequence()
    gts = [g * (1 + 0.1 * i) for i, g in enumerate(gts)]  # depth differs between frames: a real fit
    gts[0][:, :5] = 3.0
    preds = [1.0 / g for g in gts]  # a relative model that is exactly right (inverse depth)
    fit = vm.DisparityFit()
    for p, g in zip(preds, gts, strict=True):
        fit.add(p, "relative-inverse", g)
    s, t = fit.solve()
    assert (s, t) == pytest.approx((1.0, 0.0), abs=1e-6)  # float32 predictions
    pooled = vm.PooledScores()
    for p, g in zip(preds, gts, strict=True):
        pooled.add(vm.aligned_depth(p, "relative-inverse", s, t, max_depth=10.0), g)
    assert pooled.result()["abs_rel"] == pytest.approx(0.0, abs=1e-6) and pooled.result()["delta1"] == 1.0
    scores = vm.frame_scores(preds[1] * 3 + 0.2, "relative-inverse", gts[1])  # per-frame alignment undoes s, t
    assert scores["abs_rel_aligned"] == pytest.approx(0.0, abs=1e-5)


def test_pooled_scores_equal_depth_metrics_on_all_pixels() -> None:
    rng = np.random.default_rng(3)
    gts = [1 + rng.random((6, 7)).astype(np.float32) for _ in range(2)]
    preds = [g * (1 + 0.3 * rng.standard_normal(g.shape)).clip(0.2).astype(np.float32) for g in gts]
    pooled = vm.PooledScores()
    for p, g in zip(preds, gts, strict=True):
        pooled.add(p, g)
    p, g = np.concatenate(preds), np.concatenate(gts)
    ref = depth_metrics(p, g, valid_mask(g, p))
    assert pooled.result() == pytest.approx({"abs_rel": ref["abs_rel"], "delta1": ref["delta1"]})


def test_built_in_sequence_is_exact(tmp_path) -> None:
    from PIL import Image

    from visionbench.depth.datasets import middlebury_motorcycle

    folder = make_sample(tmp_path / "s", frames=4, scale=0.25)
    gt = load_ground_truth(folder)
    assert len(gt) == 4 and gt.has_geometry and np.allclose(gt.poses, camera_path(4))
    assert np.allclose(gt.poses[0], np.eye(4))
    src = middlebury_motorcycle()
    size = Image.open(folder / "frames" / "frame_0000.png").size
    ref = np.asarray(Image.fromarray(src.depth_m).resize(size, Image.Resampling.NEAREST))
    assert np.array_equal(gt.depth(0), np.where(np.isfinite(ref), ref, np.inf))  # frame 0 is the source view
    # every frame's ground truth reprojects onto the next one up to the pixel grid's rounding
    terms = []
    for i in range(3):
        d0, d1 = gt.depth(i), gt.depth(i + 1)
        assert 0.6 < np.isfinite(d1).mean() < 0.95  # some disocclusion, most pixels known
        terms += vm.tae_pair(d0, d1, gt.k, gt.poses[i], gt.poses[i + 1], np.isfinite(d0), np.isfinite(d1))
    gt_tae = vm.tae(terms)
    wrong = [vm.tae_pair(gt.depth(i), gt.depth(i + 1) * 1.05, gt.k, gt.poses[i], gt.poses[i + 1],
                         np.isfinite(gt.depth(i)), np.isfinite(gt.depth(i + 1))) for i in range(3)]  # fmt: skip
    assert gt_tae is not None and gt_tae < 1.0
    assert vm.tae([t for pair in wrong for t in pair]) > 3 * gt_tae
