"""The suite: failures recorded while others go on, timeouts, Ctrl-C keeps finished models, --resume, --quick."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from visionbench.bench.hooks import dissection_available
from visionbench.bench.suite import SuiteObserver, run_suite
from visionbench.cli import app
from visionbench.config import BenchConfig, ModelPlan
from visionbench.results import load_run

FAST = dict(runs=2, budget_s=0.0, e2e=True)


class Recorder(SuiteObserver):
    """Remembers which models started; can press Ctrl-C once a given model is running."""

    def __init__(self, interrupt_on: str | None = None) -> None:
        self.started_models: list[str] = []
        self.interrupt_on = interrupt_on
        self.etas: list[float] = []

    def model_started(self, name: str, index: int, total: int, eta_s: float) -> None:
        self.started_models.append(name)
        self.etas.append(eta_s)

    def progress(self, name: str, phase: str, eta_s: float) -> None:
        if name == self.interrupt_on and phase not in {"starting", "import"}:
            raise KeyboardInterrupt


def test_failures_are_recorded_and_the_others_finish(tmp_path: Path, device: str) -> None:
    config = BenchConfig(
        models=["no-such-model", "depthpro-tiny", "yolo11n"], device=device,
        plans={"yolo11n": ModelPlan(input_size=128), "depthpro-tiny": ModelPlan(input_size=128)}, dissect=True, **FAST,
    )  # fmt: skip
    run, run_dir = run_suite(config, tmp_path)
    by = {m.name: m for m in load_run(run_dir).models}
    assert by["no-such-model"].status == "failed" and "unknown model" in (by["no-such-model"].error or "")
    # raised inside its worker (depthpro-tiny cannot run at 128 px): recorded with the reason, not a crash
    assert by["depthpro-tiny"].status == "failed" and "256" in (by["depthpro-tiny"].error or "")
    assert by["yolo11n"].status == "ok" and by["yolo11n"].input_size == 128
    assert run.status == "complete"
    ref = by["yolo11n"].dissection  # dissected after benchmarking, next to its result.json
    if dissection_available():
        assert ref is not None and ref.error is None and (run_dir / ref.path / "layers.json").is_file()
        assert ref.summary.get("layer_count", 0) > 0
    report = (run_dir / "report.md").read_text()
    assert "## Failures" in report and "no-such-model" in report


def test_timeout_is_recorded(tmp_path: Path, device: str) -> None:
    config = BenchConfig(models=["depth-anything-v2-tiny"], device=device, timeout_s=1.0, **FAST)
    run, _ = run_suite(config, tmp_path)
    assert run.models[0].status == "timeout" and "--timeout 1 s" in (run.models[0].error or "")


def test_interrupt_keeps_finished_models_and_resume_runs_only_the_rest(tmp_path: Path, device: str) -> None:
    yolo = {"yolo11n": ModelPlan(input_size=128)}
    first, run_dir = run_suite(BenchConfig(models=["yolo11n"], device=device, plans=yolo, **FAST), tmp_path)
    assert first.models[0].status == "ok"
    done_at = first.models[0].finished_at

    # resume with a second model, and press Ctrl-C while it runs
    rec = Recorder(interrupt_on="depth-anything-v2-tiny")
    more = BenchConfig(models=["yolo11n", "depth-anything-v2-tiny"], device=device, **FAST)
    with pytest.raises(KeyboardInterrupt):
        run_suite(more, resume=run_dir, observer=rec)
    assert rec.started_models == ["depth-anything-v2-tiny"]  # yolo11n was finished: skipped
    saved = load_run(run_dir)
    assert saved.status == "interrupted"
    assert [(m.name, m.status) for m in saved.models] == [("yolo11n", "ok"), ("depth-anything-v2-tiny", "interrupted")]
    assert saved.models[0].finished_at == done_at

    # resume again: only the interrupted model runs; the first model's figures are untouched
    rec = Recorder()
    run, same_dir = run_suite(BenchConfig(models=["yolo11n"]), resume=run_dir, observer=rec)
    assert same_dir == run_dir and rec.started_models == ["depth-anything-v2-tiny"]
    assert run.status == "complete" and [m.status for m in run.models] == ["ok", "ok"]
    assert run.models[0].finished_at == done_at and run.config.plans["yolo11n"].input_size == 128
    assert rec.etas and all(e > 0 for e in rec.etas)


def test_cli_run_quick_says_what_it_cut(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["run", "--quick", "--models", "depthpro,yolo11n", "--device", "cpu",
                                   "--input-size", "128", "--out", str(tmp_path)])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "depthpro skipped" in res.output and "min runs 3" in res.output
    run = load_run(next(tmp_path.iterdir()))
    assert [m.name for m in run.models] == ["yolo11n"] and run.config.quick and run.config.cuts
    assert "Shortened run" in (next(tmp_path.iterdir()) / "report.md").read_text()
