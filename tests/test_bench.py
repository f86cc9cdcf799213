"""`visionbench bench` and the per-model worker: real tiny models on real photos, files parsed back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from visionbench.bench.suite import _collect, prepare_images
from visionbench.bench.worker import _is_oom, bench_model
from visionbench.cli import app
from visionbench.config import BenchConfig
from visionbench.errors import BadInputError
from visionbench.report import analysis as an
from visionbench.results import BatchResult, ModelResult, load_run, save_model_result

runner = CliRunner()


@pytest.fixture()
def corrupt(tmp_path: Path, photo_paths: list[Path]) -> Path:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(photo_paths[0].read_bytes()[:300])  # a truncated JPEG
    return bad


def test_worker_measures_everything_in_process(photo_paths: list[Path], device: str, tmp_path: Path) -> None:
    config = BenchConfig(models=["yolo11n"], device=device, input_size=128, runs=3, budget_s=0.0, batch_sizes=[1, 2])
    r = bench_model("yolo11n", config, photo_paths, tmp_path)  # two photos: end-to-end calls take them in turn
    assert r.status == "ok", r.error
    assert r.params == 2_624_080 and r.card["name"] == "yolo11n" and r.input_size == 128
    assert r.weights is not None and r.weights.mode in {"random", "pretrained"}
    assert r.load_time_s is not None and r.load_time_s > 0
    assert [b.batch_size for b in r.batches] == [1, 2] and r.max_batch_size == 2 and r.oom_batch_size is None
    b1, b2 = r.batches
    assert b1.model_latency is not None and b1.model_latency.count >= 3 and len(b1.model_latency.samples_ms) >= 3
    assert b1.model_latency.warmup_calls == 1 and len(b1.model_latency.warmup_ms) == 1
    e2e = b1.e2e_latency
    assert e2e is not None and set(e2e.phases_ms or {}) == {"decode", "preprocess", "forward", "postprocess"}
    assert all(len(v) == e2e.count for v in (e2e.phases_ms or {}).values())
    # end to end contains the forward: its median is larger than the forward phase's median
    assert e2e.median_ms > sorted(e2e.phases_ms["forward"])[e2e.count // 2] * 0.99  # type: ignore[index]
    assert b1.flops and b2.flops and b2.flops == pytest.approx(2 * b1.flops, rel=0.01)
    assert r.flops == b1.flops and b1.achieved_flops_per_s and b1.achieved_flops_per_s > 0
    mem = b1.memory
    assert mem is not None and mem.baseline_rss_bytes and mem.run_peak_rss_bytes
    assert mem.peak_bytes == mem.run_peak_rss_bytes - mem.baseline_rss_bytes  # type: ignore[operator]
    assert len(r.images) == 2 and len(r.output_summary) == 1 and "detections" in r.output_summary[0]
    assert (tmp_path / "result.json").exists()


def test_images_corrupt_ones_are_skipped_with_their_name(
    photo_paths: list[Path], corrupt: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    shutil.copy(photo_paths[1], folder / "zidane.jpg")
    shutil.copy(corrupt, folder / "broken.jpg")
    usable, skipped = prepare_images([str(folder)])
    assert [p.name for p in usable] == ["zidane.jpg"]
    assert len(skipped) == 1 and "broken.jpg" in skipped[0]
    with pytest.raises(BadInputError, match="no usable image"):
        prepare_images([str(corrupt)])


def test_cli_bench_writes_a_complete_run_folder(tmp_path: Path, device: str) -> None:
    res = runner.invoke(app, ["bench", "depth-anything-v2-tiny", "--device", device, "--runs", "2", "--budget", "0",
                              "--out", str(tmp_path), "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    printed = json.loads(res.stdout)
    run_dir = next(tmp_path.iterdir())
    assert len(run_dir.name) == 15 and run_dir.name[8] == "_"  # YYYYMMDD_HHMMSS
    run = load_run(run_dir)
    assert run.status == "complete" and printed["run_id"] == run.run_id
    m = run.models[0]
    assert m.status == "ok" and m.primary is not None and m.primary.model_latency.count >= 2  # type: ignore[union-attr]
    assert (run_dir / m.folder / "result.json").exists() and (run_dir / m.folder / "worker.log").exists()
    csv_text = (run_dir / "summary.csv").read_text().splitlines()
    assert csv_text[0].startswith("model,status") and csv_text[1].startswith("depth-anything-v2-tiny,ok")
    report = (run_dir / "report.md").read_text()
    head = "\n".join(report.splitlines()[:6])  # weights mode and device in the first lines
    assert "depth-anything-v2-tiny" in report and f"Device {device}" in head and "RANDOM weights" in head
    assert (run_dir / "report.html").exists()
    assert run.environment.weights_modes["depth-anything-v2-tiny"] in {"random", "pretrained"}


def test_cli_bad_input_is_one_line_exit_2(corrupt: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    res = runner.invoke(app, ["bench", "yolo11n", "--images", str(corrupt), "--out", str(out)])
    assert res.exit_code == 2 and "no usable image" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["bench", "yolo11n", "--batch-size", "1,x", "--out", str(out)])
    assert res.exit_code == 2 and "--batch-size" in res.output
    assert not out.exists()  # nothing half-made


def test_worker_killed_after_a_batch_size_keeps_it_and_records_the_limit(tmp_path: Path) -> None:
    """A worker the kernel kills (SIGKILL, out of memory) at batch 4 keeps batch 1 and 2; 4 is the limit."""
    done = [BatchResult(batch_size=1, status="ok"), BatchResult(batch_size=2, status="ok")]
    partial = ModelResult(name="m", status="interrupted", error="partial", batches=done)
    save_model_result(partial, tmp_path / "result.json")
    spec = {"config": BenchConfig(models=["m"], batch_sizes=[1, 2, 4]).model_dump()}
    (tmp_path / "worker_spec.json").write_text(json.dumps(spec))
    (tmp_path / "worker.log").write_text("loading\n")
    r = _collect("m", tmp_path, "m", -9, None, None)
    assert r.status == "ok" and r.oom_batch_size == 4
    (tmp_path / "result.json").unlink()
    r = _collect("m", tmp_path, "m", -9, None, None)
    assert r.status == "oom" and "SIGKILL" in (r.error or "") and "out of memory" in (r.error or "")


def test_oom_classification() -> None:
    assert _is_oom(MemoryError())
    assert _is_oom(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes"))
    assert _is_oom(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert not _is_oom(RuntimeError("shape mismatch"))
    assert an.ok_models  # analysis is importable without torch work
