"""Variants and the fast preset: real tiny models, timed after the main measurement, each with its accuracy cost."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from visionbench.bench.variants import native_low_precision
from visionbench.bench.worker import bench_model
from visionbench.config import BenchConfig
from visionbench.measure.accuracy import accuracy_cost, box_match_share, depth_difference
from visionbench.models.base import Prediction


def _config(model: str, device: str, **kw) -> BenchConfig:
    size = {"yolo11n": 128}.get(model)
    return BenchConfig(models=[model], device=device, input_size=size, runs=2, budget=0.0, threads=1, e2e=False, **kw)


def test_variant_names_are_checked_before_any_work():
    assert BenchConfig(models=["x"], variants="bf16,channels_last,BF16").variants == ["bfloat16", "channels-last"]
    with pytest.raises(ValueError, match="--variants 'int4'"):
        BenchConfig(models=["x"], variants=["int4"])
    with pytest.raises(ValueError, match="--preset"):
        BenchConfig(models=["x"], preset="fastest")


def test_depth_variants_measured_with_their_accuracy_cost(device, photo_paths, tmp_path):
    config = _config("depth-anything-v2-tiny", device, variants=["channels-last", "sdpa", "bfloat16", "cuda-graphs"])
    r = bench_model("depth-anything-v2-tiny", config, photo_paths[:1], tmp_path)
    assert r.status == "ok", r.error
    by = {v.name: v for v in r.variants}
    assert list(by) == ["channels-last", "sdpa", "bfloat16", "cuda-graphs"]  # none silently dropped
    for v in by.values():
        assert v.status in {"ok", "not_applicable"}, (v.name, v.reason)
        assert (v.status == "ok") == (v.reason is None)
    cl = by["channels-last"]
    assert cl.status == "ok" and cl.latency is not None and cl.latency.count >= 2
    assert cl.speedup == pytest.approx(r.primary.model_latency.median_ms / cl.latency.median_ms)
    # same weights and input, a layout change only: the depth maps agree to float32 rounding, not exactly by fiat
    assert cl.accuracy["mean_rel"] is not None and cl.accuracy["mean_rel"] < 1e-4
    assert cl.accuracy["abs_rel"] is not None and cl.accuracy["max_rel"] >= cl.accuracy["mean_rel"] * 0.0
    if device == "cpu":
        assert by["cuda-graphs"].status == "not_applicable" and "CUDA" in by["cuda-graphs"].reason
        native = native_low_precision(torch.device("cpu"))
        assert (by["bfloat16"].status == "not_applicable") == (native["bfloat16"] is not None)
    if by["bfloat16"].status == "ok":  # a real precision change: a visible, bounded difference
        assert 0 < by["bfloat16"].accuracy["mean_rel"] < 0.1


def test_yolo_variants_and_fast_preset(device, photo_paths, tmp_path):
    # timeout 60 s: compiling (predicted 30 s, over a quarter of it) is skipped with its reason, keeping the test short
    config = _config("yolo11n", device, variants=["fused", "channels-last"], preset="fast", timeout=60)
    r = bench_model("yolo11n", config, photo_paths[:1], tmp_path)
    assert r.status == "ok", r.error
    by = {v.name: v for v in r.variants}
    assert by["fused"].status == "not_applicable" and "already" in by["fused"].reason  # main run is fused
    assert by["sdpa"].status == "not_applicable"
    cl = by["channels-last"]
    assert cl.status == "ok" and "box_match_iou90" in cl.accuracy and "box_count_ratio" in cl.accuracy
    fast = by["fast"]
    assert fast.status in {"ok", "not_applicable"}
    assert fast.status == "ok" or "no piece was faster" in (fast.reason or "")
    if fast.status == "ok":
        assert fast.applied and fast.speedup and fast.speedup > 0
    assert by["compile"].status in {"ok", "skipped"} and by["compile"].reason != ""  # never absent


def test_slow_model_variants_are_skipped_with_the_reason(device, photo_paths, tmp_path):
    # a --timeout already spent by the load alone (bench_model in this process does not stop the model; the
    # suite's parent would): no time is left, so the rule, not the machine's speed, skips every variant
    config = _config("yolo11n", device, variants=["channels-last"], timeout=0.001)
    r = bench_model("yolo11n", config, photo_paths[:1], tmp_path)
    assert r.status == "ok", r.error
    (v,) = r.variants
    assert v.status == "skipped" and "--timeout" in v.reason


def test_depth_difference_and_box_matching():
    ref = np.linspace(1, 2, 100).reshape(10, 10)
    d = depth_difference(ref, ref * 1.01)
    assert d["abs_rel"] == pytest.approx(0.01) and d["mean_rel"] == pytest.approx(0.01)
    assert d["max_rel"] == pytest.approx(0.01)
    assert depth_difference(ref, ref)["max_rel"] == 0.0
    boxes = np.array([[0, 0, 10, 10], [20, 20, 40, 40]], float)
    assert box_match_share(boxes, np.array([1, 2]), boxes + 0.1, np.array([1, 2])) == 1.0
    assert box_match_share(boxes, np.array([1, 2]), boxes, np.array([1, 3])) == 0.5  # class must match
    assert box_match_share(boxes, np.array([1, 2]), boxes + 3, np.array([1, 2])) == 0.0  # IoU < 0.9
    a = Prediction(task="detect", boxes=boxes, classes=np.array([1, 2]))
    b = Prediction(task="detect", boxes=boxes[:1], classes=np.array([1]))
    cost = accuracy_cost([a], [b])
    assert cost["box_match_iou90"] == 0.5 and cost["box_count_ratio"] == 0.5


def test_gpu_suite_dry_run_first_steps(tmp_path):
    """The GPU suite's rehearsal: wheels install as for the host's Python 3.12, imports resolve, every step
    is planned and, with no time left, skipped and logged (the full dry run takes minutes: see the script)."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    if not list((root / ".whl").glob("*.whl")):
        pytest.skip("no carried wheels in .whl/ (see benchmarks/gpu_suite.sh for the command)")
    env = {**__import__("os").environ, "SUITE_BUDGET_S": "20"}
    res = subprocess.run([str(root / "benchmarks" / "gpu_suite.sh"), "--dry-run", str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    log = (tmp_path / "suite.log").read_text()
    assert res.returncode == 0, log + res.stderr
    assert "wheels: " in log and "pydantic" in log
    assert "visionbench" in (tmp_path / "env.txt").read_text()
    for name in ("bench-float32", "depthpro-batches", "fast", "gpu-tests", "dissect", "loader"):
        assert f"SKIP {name}" in log or f"END {name}" in log
    assert (tmp_path / "utilisation.txt").exists() and "done in" in log
