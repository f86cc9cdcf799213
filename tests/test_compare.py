"""`compare RUN_A RUN_B`: changes flagged only beyond the runs' own noise, on samples of known distribution."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from visionbench.cli import app
from visionbench.config import BenchConfig
from visionbench.measure.environment import capture_environment
from visionbench.measure.timing import latency_stats
from visionbench.report.compare import compare_runs, latency_verdict, memory_verdict, scaled_mad
from visionbench.results import BatchResult, MemoryStats, ModelResult, RunResult, WeightsRecord, now_iso, save_run

MIB = 2**20
ENV = capture_environment("cpu", 0)


def _samples(median: float, spread: float, n: int = 30, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(median + spread * rng.standard_normal(n))


def _model(name: str, samples: list[float], peak_bytes: int) -> ModelResult:
    memory = MemoryStats(device_type="cpu", method="test", peak_bytes=peak_bytes)
    batch = BatchResult(batch_size=1, status="ok", memory=memory,
                        model_latency=latency_stats(samples, kind="model", batch_size=1))  # fmt: skip
    return ModelResult(name=name, status="ok", batches=[batch], params=1_000_000)


def _run(run_id: str, models: list[ModelResult], dtype: str = "float32") -> RunResult:
    config = BenchConfig(models=[m.name for m in models], device="cpu", dtype=dtype)
    return RunResult(run_id=run_id, started_at=now_iso(), config=config, environment=ENV, models=models)


def test_scaled_mad_ignores_one_outlier():
    assert scaled_mad([10.0, 10.0, 10.0, 10.0, 500.0]) == 0.0
    data = _samples(100, 5, n=4000)
    assert scaled_mad(data) == pytest.approx(5, rel=0.1)  # estimates the std of normal samples


def test_latency_flags_follow_the_rule():
    base = _samples(20, 1, seed=1)
    assert latency_verdict(base, _samples(20, 1, seed=2))[0] == "within noise"  # same distribution
    assert latency_verdict(base, _samples(30, 1, seed=3))[0] == "slower"
    assert latency_verdict(base, _samples(14, 1, seed=4))[0] == "faster"
    # consistent but tiny shift (0.5 %): a test alone would call it, the spread rule does not
    assert latency_verdict(base, [x * 1.005 for x in base])[0] == "within noise"
    # one stray sample does not move a run
    assert latency_verdict(base, [*base[:-1], 500.0])[0] == "within noise"
    flag, p, spread = latency_verdict([20.0], [40.0])
    assert flag == "n/a" and p is None


def test_memory_flags():
    assert memory_verdict(500 * MIB, 600 * MIB) == ("more memory", pytest.approx(0.2))
    assert memory_verdict(500 * MIB, 510 * MIB)[0] == "within noise"  # 2 %
    assert memory_verdict(100 * MIB, 110 * MIB)[0] == "within noise"  # 10 % but only 10 MiB
    assert memory_verdict(None, 5)[0] == "n/a"


def test_compare_runs_models_statuses_and_environment():
    a = _run("a", [_model("fast", _samples(10, 0.3, seed=5), 200 * MIB), _model("gone", _samples(5, 0.1), MIB)])
    b = _run("b", [_model("fast", _samples(15, 0.3, seed=6), 200 * MIB), _model("new", _samples(5, 0.1), MIB)],
             dtype="bfloat16")  # fmt: skip
    c = compare_runs(a, b)
    by = {d.name: d for d in c.models}
    assert list(by) == ["fast", "gone", "new"]
    assert by["fast"].latency_flag == "slower" and by["fast"].latency_change == pytest.approx(0.5, abs=0.05)
    assert by["fast"].memory_flag == "within noise"
    assert (by["gone"].status_a, by["gone"].status_b) == ("ok", "absent")
    assert by["new"].status_a == "absent" and by["new"].latency_flag == "n/a"
    assert c.environment_differences == ["dtype: float32 -> bfloat16"]


def test_cli_compare_writes_md_and_json(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    save_run(_run("a", [_model("m", _samples(10, 0.2, seed=7), 100 * MIB)]), a)
    save_run(_run("b", [_model("m", _samples(8, 0.2, seed=8), 300 * MIB)]), b)
    res = CliRunner().invoke(app, ["compare", str(a), str(b), "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "compare.json").read_text())
    assert data["models"][0]["latency_flag"] == "faster" and data["models"][0]["memory_flag"] == "more memory"
    md = (tmp_path / "compare.md").read_text()
    assert "| m | ok / ok |" in md and "Mann-Whitney" in md
    bad = CliRunner().invoke(app, ["compare", str(a), str(tmp_path / "missing")])
    assert bad.exit_code == 2 and "missing: no such run folder" in bad.output


def _weighted(name: str, **weights) -> ModelResult:
    m = _model(name, _samples(10, 0.2), 100 * MIB)
    m.weights = WeightsRecord(**{"mode": "pretrained", "source": "hub"} | weights)
    return m


def test_compare_says_when_two_runs_used_different_weights(tmp_path):
    same = {"files": {"/a/model.safetensors": "ab" * 32}}
    moved = {"files": {"/elsewhere/model.safetensors": "ab" * 32}, "source": "a copy"}  # same bytes, other path
    a = _run("a", [_weighted("same", **same), _weighted("file", **same), _weighted("rev", revision="r1"),
                   _weighted("mode")])  # fmt: skip
    b = _run("b", [_weighted("same", **moved), _weighted("file", files={"/a/model.safetensors": "cd" * 32}),
                   _weighted("rev", revision="r2"), _weighted("mode", mode="random")])  # fmt: skip
    by = {d.name: d.weights_differ for d in compare_runs(a, b).models}
    assert by == {"same": None, "file": "different weight files (SHA-256)", "rev": "revision r1 -> r2",
                  "mode": "pretrained -> random"}  # fmt: skip
    save_run(a, tmp_path / "a")
    save_run(b, tmp_path / "b")
    res = CliRunner().invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "different weights: rev: revision r1 -> r2" in res.output
    assert "Different weights" in (tmp_path / "compare.md").read_text()
