"""run.json: round trip, atomic writes, clear errors for files that are not runs, the JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from visionbench.config import BenchConfig
from visionbench.errors import BadInputError
from visionbench.measure.environment import capture_environment
from visionbench.measure.timing import latency_stats
from visionbench.results import (
    SCHEMA_VERSION,
    BatchResult,
    ModelResult,
    ProfileFailure,
    ProfileResult,
    RunResult,
    load_model_result,
    load_run,
    now_iso,
    run_json_schema,
    save_model_result,
    save_run,
)


def make_run(tmp_path: Path) -> RunResult:
    stats = latency_stats([3.0, 1.0, 2.0], kind="model")
    model = ModelResult(
        name="yolo11n", status="ok", batches=[BatchResult(batch_size=1, status="ok", model_latency=stats)]
    )
    return RunResult(
        run_id="r1", started_at=now_iso(), config=BenchConfig(models=["yolo11n", "x"]),
        environment=capture_environment("cpu", seed=3), models=[model],
    )  # fmt: skip


def test_round_trip_keeps_raw_samples(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    path = save_run(run, tmp_path)
    assert path.name == "run.json"
    back = load_run(tmp_path)
    assert back == run
    assert back.models[0].primary.model_latency.samples_ms == [3.0, 1.0, 2.0]  # type: ignore[union-attr]
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION
    assert load_run(path) == run  # the file itself works too
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # no temporary files left behind


def test_upsert_replaces_and_keeps_config_order(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    run.upsert(ModelResult(name="x", status="failed", error="boom"))
    run.upsert(ModelResult(name="yolo11n", status="timeout"))
    assert [(m.name, m.status) for m in run.models] == [("yolo11n", "timeout"), ("x", "failed")]


def test_environment_is_read_not_assumed() -> None:
    env = capture_environment("cpu", seed=7)
    assert env.seed == 7 and env.device == "cpu"
    assert env.torch_threads >= 1 and env.cpu_cores_logical and env.cpu_model
    assert env.versions["torch"] and env.versions["visionbench"]


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "not a visionbench run folder"), ("{not json", "unreadable"),
     ('{"schema_version": "99.0"}', "version 99.0"), ('{"schema_version": "1.0", "run_id": 5}', "does not match")],
)  # fmt: skip
def test_bad_run_files_are_one_clear_error(tmp_path: Path, content: str | None, message: str) -> None:
    if content is not None:
        (tmp_path / "run.json").write_text(content)
    with pytest.raises(BadInputError, match=message):
        load_run(tmp_path)


def test_run_files_follow_the_umask_and_leave_no_temporary_file(tmp_path: Path) -> None:
    import os

    old = os.umask(0o022)
    try:
        path = save_run(make_run(tmp_path), tmp_path)
        save_model_result(ModelResult(name="m", status="ok"), tmp_path / "m" / "result.json")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644  # not 0600: a run folder is shared like any output
    assert (tmp_path / "m" / "result.json").stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["m", "result.json", "run.json"]


def test_same_major_with_new_fields_is_read(tmp_path: Path) -> None:
    """A newer minor version adds fields (in config, a model, the environment): this reader skips them."""
    run = make_run(tmp_path)
    data = json.loads(run.model_dump_json())
    major = SCHEMA_VERSION.split(".")[0]
    data["schema_version"] = f"{major}.99"
    data["config"]["a_new_option"] = 3
    data["models"][0]["a_new_figure_ms"] = 1.5
    data["environment"]["a_new_fact"] = "x"
    data["a_new_top_level"] = []
    (tmp_path / "run.json").write_text(json.dumps(data))
    back = load_run(tmp_path)
    assert back.models[0].primary.model_latency.samples_ms == [3.0, 1.0, 2.0]  # type: ignore[union-attr]
    assert back.config == run.config
    (tmp_path / "m.json").write_text(json.dumps({**data["models"][0], "other": 1}))
    assert load_model_result(tmp_path / "m.json").name == "yolo11n"


def test_other_major_is_refused_in_one_line(tmp_path: Path) -> None:
    data = json.loads(make_run(tmp_path).model_dump_json())
    data["schema_version"] = f"{int(SCHEMA_VERSION.split('.')[0]) + 1}.0"
    (tmp_path / "run.json").write_text(json.dumps(data))
    with pytest.raises(BadInputError) as info:
        load_run(tmp_path)
    assert "\n" not in str(info.value) and f"version {data['schema_version']}" in str(info.value)


def _profile_dict() -> dict:
    component = {"label": "a", "prefixes": ["a"], "calls": 1, "time_ms": 2.0, "time_share": 1.0,
                 "time_ms_samples": [2.0], "flops": 10, "flop_share": 1.0, "params": 5, "param_share": 1.0}  # fmt: skip
    return {"model": "m", "task": "t", "device": "cpu", "dtype": "float32", "input_size": 64, "batch_size": 1,
            "input_shapes": {"x": [1, 3, 64, 64]}, "weights_mode": "random", "runs": 1, "warmup": 0,
            "forward_ms": 2.0, "forward_ms_samples": [2.0], "hooked_ms": 2.0, "hooked_ms_samples": [2.0],
            "hook_overhead": 0.0, "noise": 0.0, "used_runs": [0], "params": 5, "flops": 10,
            "components": [component]}  # fmt: skip


def test_profile_is_stored_typed_and_a_failure_keeps_its_reason(tmp_path: Path) -> None:
    result = ModelResult(name="m", status="ok")
    result.profile = _profile_dict()  # type: ignore[assignment]  # as a worker hands it over
    assert isinstance(result.profile, ProfileResult) and result.profile.components[0].label == "a"
    result.profile = {"error": "RuntimeError: boom"}  # type: ignore[assignment]
    assert result.profile == ProfileFailure(error="RuntimeError: boom")
    save_model_result(result, tmp_path / "r.json")
    assert load_model_result(tmp_path / "r.json").profile == ProfileFailure(error="RuntimeError: boom")
    with pytest.raises(ValueError):
        result.status = "finished"  # type: ignore[assignment]  # assignments are checked like construction


def test_partial_result_round_trip(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    run.upsert(ModelResult(name="x", status="timeout", error="exceeded --timeout 5 s", partial=True,
                           partial_reason="timeout", load_time_s=1.5, params=10))  # fmt: skip
    save_run(run, tmp_path)
    back = load_run(tmp_path).result("x")
    assert back is not None and back.partial and back.partial_reason == "timeout" and back.load_time_s == 1.5
    assert load_run(tmp_path).result("yolo11n").partial is False  # type: ignore[union-attr]


def test_json_schema_documents_the_fields() -> None:
    schema = run_json_schema()
    props = schema["properties"]
    assert {"schema_version", "config", "environment", "models"} <= set(props)
    latency = schema["$defs"]["LatencyStats"]["properties"]
    assert "samples_ms" in latency and "description" in latency["p90_ms"]


def test_schema_doc_is_current() -> None:
    """docs/results-schema.md is generated; VISIONBENCH_UPDATE_SNAPSHOTS=1 rewrites it."""
    import os

    from visionbench.report import schema_doc

    doc = Path(__file__).resolve().parents[1] / "docs" / "results-schema.md"
    if os.environ.get("VISIONBENCH_UPDATE_SNAPSHOTS"):
        doc.write_text(schema_doc())
    assert doc.read_text() == schema_doc(), "regenerate: VISIONBENCH_UPDATE_SNAPSHOTS=1 pytest tests/test_results.py"
