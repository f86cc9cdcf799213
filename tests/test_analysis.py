"""Analysis over records: ranks, baseline ratios, efficiency, cost, suitability; report.md and summary.csv from them."""

from __future__ import annotations

import pytest

from visionbench.config import BenchConfig
from visionbench.measure.environment import capture_environment
from visionbench.measure.timing import latency_stats
from visionbench.report import analysis as an
from visionbench.report import summary_csv, write_run_files
from visionbench.results import BatchResult, MemoryStats, ModelResult, RunResult, WeightsRecord, now_iso

MB = 1_000_000


def model(
    name: str, median_ms: float, peak_mb: float, params: int, e2e_ms: float | None = None, mode: str = "random"
) -> ModelResult:
    ms = latency_stats([median_ms * f for f in (0.9, 1.0, 1.1)], kind="model")
    e2e = latency_stats([e2e_ms] * 3, kind="end_to_end") if e2e_ms else None
    mem = MemoryStats(device_type="cpu", method="test", peak_bytes=int(peak_mb * MB))
    batch = BatchResult(batch_size=1, status="ok", model_latency=ms, e2e_latency=e2e, memory=mem, flops=10**9)
    return ModelResult(
        name=name, status="ok", params=params, batches=[batch], weights=WeightsRecord(mode=mode, source="t")
    )  # type: ignore[arg-type]


def make_run(*models: ModelResult, baseline: str = "depthpro") -> RunResult:
    names = [m.name for m in models]
    env = capture_environment("cpu", weights_modes={m.name: m.weights.mode for m in models if m.weights})
    return RunResult(run_id="t", started_at=now_iso(), config=BenchConfig(models=names, baseline=baseline),
                     environment=env, models=list(models))  # fmt: skip


def test_ranks_share_ties_and_skip_missing() -> None:
    assert an.ranks({"a": 3.0, "b": 1.0, "c": 3.0, "d": None}) == {"a": 2, "b": 1, "c": 2, "d": None}
    assert an.ranks({"a": 3.0, "b": 1.0}, lower_is_better=False) == {"a": 1, "b": 2}


def test_ratios_against_baseline() -> None:
    run = make_run(model("depthpro", 100_000, 8000, 952_000_000), model("yolo11n", 50, 200, 2_600_000, e2e_ms=60))
    base, how = an.pick_baseline(run)
    assert base is not None and base.name == "depthpro" and "as asked" in how
    r = an.ratios(run, base)
    assert r["yolo11n"].speedup == pytest.approx(2000.0)
    assert r["yolo11n"].memory_factor == pytest.approx(40.0)
    assert r["depthpro"].speedup == pytest.approx(1.0)


def test_missing_baseline_falls_back_to_slowest_and_says_so() -> None:
    run = make_run(model("a", 10, 100, 10**6), model("b", 30, 100, 10**6))
    base, how = an.pick_baseline(run)
    assert base is not None and base.name == "b" and "depthpro was not measured" in how


def test_efficiency_and_cost() -> None:
    m = model("a", 20, 100, 4_000_000)
    assert an.fps_per_mparam(m) == pytest.approx(50 / 4)
    thr = 3 / (sum([18.0, 20.0, 22.0]) / 1000)
    assert an.best_throughput(m) == (pytest.approx(thr), 1)
    assert an.cost_per_1000_s(m) == pytest.approx(1000 / thr)


def test_suitability_verdicts_follow_the_figures() -> None:
    fast = {v.requirement.key: v for v in an.suitability(model("fast", 8, 150, 10**6, e2e_ms=12))}
    assert fast["video30"].passed and fast["ar60"].passed and fast["driving"].passed
    assert fast["mobile_mem"].passed and fast["mobile_lat"].passed and fast["batch1000"].passed
    slow = {v.requirement.key: v for v in an.suitability(model("slow", 117_000, 8000, 10**9, e2e_ms=120_000))}
    assert not any(v.passed for k, v in slow.items() if k != "batch1000")
    assert not slow["batch1000"].passed  # 1000 x 120 s is 33 h
    assert "ms" in slow["video30"].note and "x the limit" in slow["video30"].note
    edge = {v.requirement.key: v for v in an.suitability(model("edge", 40, 600, 10**6, e2e_ms=40))}
    assert not edge["video30"].passed and edge["driving"].passed and not edge["mobile_mem"].passed
    no_e2e = {v.requirement.key: v for v in an.suitability(model("m", 10, 10, 10**6))}
    assert "end to end not measured" in no_e2e["video30"].note


def render_report(run: RunResult, folder) -> str:
    """report.md as the suite writes it after every model."""
    write_run_files(run, folder)
    return (folder / "report.md").read_text()


def test_report_is_computed_from_figures(tmp_path) -> None:
    failed = ModelResult(name="broken", status="failed", error="RuntimeError: boom")
    run = make_run(model("depthpro", 100_000, 8000, 952_000_000, e2e_ms=101_000),
                   model("yolo11n", 50, 200, 2_600_000, e2e_ms=60), failed)  # fmt: skip
    text = render_report(run, tmp_path)
    head = "\n".join(text.splitlines()[:5])
    assert "RANDOM weights" in head and "Device cpu" in head
    assert "Fastest: yolo11n, median 50.00 ms" in text
    assert "| yolo11n | 2,000.00x | 40.00x |" in text  # speed and memory against the baseline
    assert "broken" in text and "RuntimeError: boom" in text
    assert "Real-time video (30 FPS): 0 of 2 models pass" in text
    # a different figure changes the sentence: nothing is written in advance
    run.models[1] = model("yolo11n", 5, 200, 2_600_000, e2e_ms=10)
    assert "Real-time video (30 FPS): 1 of 2 models pass on this device (yolo11n)" in render_report(run, tmp_path)
    assert (tmp_path / "report.html").is_file() and (tmp_path / "run.json").is_file()


def test_summary_csv_has_one_row_per_model() -> None:
    import csv
    import io

    run = make_run(model("a", 10, 100, 10**6), ModelResult(name="b", status="timeout", error="slow"))
    rows = list(csv.DictReader(io.StringIO(summary_csv(run))))
    assert [r["model"] for r in rows] == ["a", "b"]
    assert float(rows[0]["model_median_ms"]) == pytest.approx(10.0)
    assert rows[1]["status"] == "timeout" and rows[1]["error"] == "slow"


def test_report_while_running_has_every_table_and_leaves_charts_for_the_end(tmp_path) -> None:
    run = make_run(model("depthpro", 100_000, 8000, 952_000_000), model("yolo11n", 50, 200, 2_600_000))
    running = render_report(run, tmp_path)
    assert "![" not in running and "charts and pictures are drawn when the run completes" in running
    assert not (tmp_path / "report_files").exists()
    run.status = "complete"
    final = render_report(run, tmp_path)
    assert "](report_files/latency.png)" in final and (tmp_path / "report_files" / "latency.png").is_file()
    tables = [line for line in running.splitlines() if line.startswith("| ")]
    assert tables == [line for line in final.splitlines() if line.startswith("| ")]  # the same figures
