"""The suite: failures recorded while others go on, timeouts, Ctrl-C keeps finished models, --resume, --quick."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from visionbench.bench.suite import SuiteObserver, resume_suite, run_suite
from visionbench.cli import app
from visionbench.config import BenchConfig, ModelPlan
from visionbench.results import load_run

FAST = dict(runs=2, budget=0.0, e2e=True)


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
    assert ref is not None and ref.error is None and (run_dir / ref.path / "layers.json").is_file()
    assert ref.summary.get("layer_count", 0) > 0
    report = (run_dir / "report.md").read_text()
    assert "## Failures" in report and "no-such-model" in report


def test_timeout_is_recorded(tmp_path: Path, device: str) -> None:
    config = BenchConfig(models=["depth-anything-v2-tiny"], device=device, timeout=1.0, **FAST)
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
        resume_suite(run_dir, models=more.models, observer=rec)
    assert rec.started_models == ["depth-anything-v2-tiny"]  # yolo11n was finished: skipped
    saved = load_run(run_dir)
    assert saved.status == "interrupted"
    assert [(m.name, m.status) for m in saved.models] == [("yolo11n", "ok"), ("depth-anything-v2-tiny", "interrupted")]
    assert saved.models[0].finished_at == done_at

    # resume again: only the interrupted model runs; the first model's figures are untouched
    rec = Recorder()
    run, same_dir = resume_suite(run_dir, observer=rec)  # no models named: the run's unfinished ones
    assert same_dir == run_dir and rec.started_models == ["depth-anything-v2-tiny"]
    assert run.status == "complete" and [m.status for m in run.models] == ["ok", "ok"]
    assert run.models[0].finished_at == done_at and run.config.plans["yolo11n"].input_size == 128
    assert rec.etas and all(e > 0 for e in rec.etas)


def test_cli_run_quick_says_what_it_cut(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["run", "yolo11n", "--quick", "--device", "cpu",
                                   "--input-size", "128", "--out", str(tmp_path)])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "min runs 3" in res.output and "no dissection" in res.output
    run = load_run(next(tmp_path.iterdir()))
    assert [m.name for m in run.models] == ["yolo11n"] and run.config.quick and run.config.cuts
    assert "Shortened run" in (next(tmp_path.iterdir()) / "report.md").read_text()


class Evil:
    """Unpickling this writes a marker file: proof that code from a checkpoint ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {self.marker}",))


def test_resume_never_grants_trust_from_the_run_folder(tmp_path: Path) -> None:
    """run.json saying trust_remote_code: true does not let `--resume` unpickle a checkpoint."""
    marker = tmp_path / "code-ran"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"model": Evil(str(marker))}))
    name = f"ultralytics:{evil}"
    run, run_dir = run_suite(BenchConfig(models=[name], device="cpu", **FAST), tmp_path / "runs")
    assert run.models[0].status == "failed" and not marker.exists()
    doc = json.loads((run_dir / "run.json").read_text())
    doc["config"]["trust_remote_code"] = True  # what an attacker who can write the folder would do
    (run_dir / "run.json").write_text(json.dumps(doc))
    res = CliRunner().invoke(app, ["bench", "--out", str(run_dir), "--resume"])
    assert res.exit_code == 1, res.output  # the model failed again, refused; nothing ran
    assert not marker.exists()
    assert load_run(run_dir).config.trust_remote_code is False  # this command line's answer, recorded


def test_resume_names_the_missing_folder_and_refuses_new_options(tmp_path: Path) -> None:
    missing = tmp_path / "runs" / "20990101_000000"
    res = CliRunner().invoke(app, ["bench", "--out", str(missing), "--resume"])
    assert res.exit_code == 2 and str(missing) in res.output and "no such run folder" in res.output
    assert not missing.exists()
    (missing).mkdir(parents=True)
    (missing / "run.json").write_text("{}")
    res = CliRunner().invoke(app, ["bench", "--out", str(missing), "--resume", "--dtype", "float16"])
    assert res.exit_code == 2 and "--dtype" in res.output and "Traceback" not in res.output


def test_a_worker_dies_with_its_parent(tmp_path: Path) -> None:
    """A parent killed with SIGKILL runs no cleanup: the worker must notice on its own."""
    pid_file = tmp_path / "child.pid"
    parent = subprocess.Popen([sys.executable, "-c", f"""
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "from visionbench.bench.process import die_with_parent; import os, time; die_with_parent(); "
    "open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"], start_new_session=True)
time.sleep(120)
"""])  # fmt: skip
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    child = int(pid_file.read_text())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split()[2] == "Z")  # a zombie has ended


def test_config_reads_renamed_and_newer_fields_of_stored_runs() -> None:
    """run.json from before the renames, or from a later release of the same schema, still reads."""
    old = {"models": ["yolo11n"], "budget_s": 3.0, "timeout_s": 60.0, "loop_cap_s": 30.0, "added_later": 1}
    config = BenchConfig.model_validate(old, extra="ignore")  # how results.load_run reads stored records
    assert (config.budget, config.timeout, config.max_loop_time) == (3.0, 60.0, 30.0)
    assert "budget" in config.model_dump() and "budget_s" not in config.model_dump()
    with pytest.raises(ValueError, match="added_later"):
        BenchConfig(models=["yolo11n"], added_later=1)  # in Python a misspelt option is an error
