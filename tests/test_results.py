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
    RunResult,
    atomic_write_text,
    load_run,
    now_iso,
    run_json_schema,
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


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.txt"]


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
