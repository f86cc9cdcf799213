"""The device peak probe and each model's utilisation: real measurements, checked against their definitions."""

from __future__ import annotations

import pytest
import torch

from visionbench.bench.worker import bench_model
from visionbench.config import BenchConfig
from visionbench.measure.peak import arithmetic_intensity, datasheet_peak, measure_peak, memory_bound, ridge_point


def test_probe_is_a_real_measurement(device):
    p = measure_peak(device, "float32", budget_s=0.4)
    assert p.matmul_samples >= 3 and p.matmul_size > 0
    # a real figure: positive and below what any machine does (1 PFLOP/s fp32 is far above every device)
    assert 1e8 < p.matmul_flops_per_s < 1e15
    assert p.copy_bytes_per_s is not None and p.copy_bytes_per_s > 1e7
    # consistent with timing one matmul of the same size here (within a factor the machine's noise allows)
    n = p.matmul_size
    a = torch.randn(n, n, device=device)
    import time

    torch.mm(a, a)
    t0 = time.perf_counter()
    torch.mm(a, a)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    once = 2 * n**3 / (time.perf_counter() - t0)
    assert 0.1 < p.matmul_flops_per_s / once < 10


def test_datasheet_table():
    assert datasheet_peak("NVIDIA H100 80GB HBM3", "bfloat16") == ("H100 SXM", pytest.approx(989.4e12))
    assert datasheet_peak("NVIDIA H100 PCIe", "float16")[0] == "H100 PCIe"
    assert datasheet_peak("Tesla T4", "bfloat16") is None  # no bf16 on Turing
    assert datasheet_peak("AMD EPYC 7B13", "float32") is None


def test_model_utilisation_matches_flops_over_time(device, photo_paths, tmp_path):
    config = BenchConfig(models=["yolo11n"], device=device, input_size=128, runs=3, budget=0.0, threads=1,
                         e2e=False, batch_sizes=[1, 2])  # fmt: skip
    r = bench_model("yolo11n", config, photo_paths[:1], tmp_path)
    assert r.status == "ok", r.error
    assert r.peak is not None and r.peak.dtype == "float32"
    for b in r.batches:
        achieved = b.flops / (b.model_latency.median_ms / 1e3)
        assert b.achieved_flops_per_s == pytest.approx(achieved)
        assert b.utilisation == pytest.approx(achieved / r.peak.best_flops_per_s)
        assert 0 < b.utilisation < 1  # a small convnet never beats a large matmul
        assert (b.utilisation_datasheet is None) == (r.peak.datasheet_flops_per_s is None)
    ridge = ridge_point(r.peak)
    assert ridge == pytest.approx(r.peak.matmul_flops_per_s / r.peak.copy_bytes_per_s)
    intensity = arithmetic_intensity(r.flops, r.weights_bytes)
    assert intensity == pytest.approx(r.flops / r.weights_bytes)
    assert memory_bound(r.flops, r.weights_bytes, r.peak) == (intensity < ridge)
    assert memory_bound(r.flops, None, r.peak) is None


def test_report_shows_utilisation_and_variants(device, photo_paths, tmp_path):
    from visionbench.bench.suite import run_suite
    from visionbench.report import build_report

    config = BenchConfig(models=["yolo11n"], device=device, input_size=128, runs=2, budget=0.0, threads=1,
                         e2e=False, variants=["channels-last", "bf16"])  # fmt: skip
    run, run_dir = run_suite(config, tmp_path)
    build_report(run_dir)
    md = (run_dir / "report.md").read_text()
    assert "Utilisation against the device's peak" in md and "of measured" in md
    assert "Optimisations, measured with their accuracy cost" in md and "channels-last" in md
    m = run.models[0]
    if m.variants[1].status == "not_applicable":
        assert "bfloat16: not applicable" in md
    csv = (run_dir / "summary.csv").read_text().splitlines()
    assert "utilisation" in csv[0].split(",") and "utilisation_datasheet" in csv[0].split(",")
