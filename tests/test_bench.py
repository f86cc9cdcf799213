"""`visionbench bench` and the per-model worker: real tiny models on real photos, files parsed back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from visionbench.bench.events import EventSink
from visionbench.bench.process import flush_denormal_enabled
from visionbench.bench.stopped import collect_result
from visionbench.bench.suite import prepare_images
from visionbench.bench.worker import bench_model, is_oom
from visionbench.cli import app
from visionbench.config import BenchConfig
from visionbench.errors import BadInputError
from visionbench.measure.allocator import malloc_setting
from visionbench.results import BatchResult, ModelResult, load_run, save_model_result

runner = CliRunner()


@pytest.fixture()
def corrupt(tmp_path: Path, photo_paths: list[Path]) -> Path:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(photo_paths[0].read_bytes()[:300])  # a truncated JPEG
    return bad


def test_worker_measures_everything_in_process(photo_paths: list[Path], device: str, tmp_path: Path) -> None:
    config = BenchConfig(
        models=["yolo11n"], device=device, input_size=128, runs=3, budget=0.0, batch_sizes=[1, 2], threads=1
    )
    callers_threads, callers_flush, callers_malloc = torch.get_num_threads(), flush_denormal_enabled(), malloc_setting()
    torch.set_num_threads(2)
    try:
        # one photo twice: every batch shares its shape (YOLO letterboxes a same-shape batch rectangularly),
        # so FLOPs at batch 2 are exactly twice those at batch 1
        r = bench_model("yolo11n", config, [photo_paths[0]] * 2, tmp_path)
        # a library call leaves its caller's process as it found it: threads, denormal mode, malloc
        assert torch.get_num_threads() == 2 and flush_denormal_enabled() == callers_flush
        assert malloc_setting() == callers_malloc
    finally:
        torch.set_num_threads(callers_threads)
    assert r.status == "ok", r.error
    assert r.threads == 1  # ...while inside it ran with what was asked
    assert r.params == 2_616_248 and r.card["name"] == "yolo11n"  # the module as run: fused, as ultralytics predicts
    assert r.card["params"] == 2_624_080 and r.input_size == 128  # the published count
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
    res = runner.invoke(app, ["bench", "yolo11n", "--batch-sizes", "1,x", "--out", str(out)])
    assert res.exit_code == 2 and "--batch-sizes" in res.output
    assert not out.exists() or not any(out.iterdir())  # no run folder half-made


def test_channels_last_runs_and_is_recorded(photo_paths: list[Path], device: str) -> None:
    config = BenchConfig(models=["yolo11n"], device=device, input_size=64, runs=2, budget=0.0, e2e=False,
                         channels_last=True)  # fmt: skip
    r = bench_model("yolo11n", config, photo_paths[:1])
    assert r.status == "ok", r.error
    assert r.channels_last and not r.compile and r.primary is not None and r.primary.model_latency is not None


def test_yolo_runs_fused_by_default_and_unfused_on_request(photo_paths: list[Path], device: str) -> None:
    """The predictor's form (Conv+BN folded) is what a user runs; --no-fuse measures the trained module as built."""
    config = BenchConfig(models=["yolo11n"], device=device, input_size=64, runs=2, budget=0.0, e2e=False)
    fused = bench_model("yolo11n", config, photo_paths[:1])
    unfused = bench_model("yolo11n", config.model_copy(update={"fuse": False}), photo_paths[:1])
    assert (fused.status, unfused.status) == ("ok", "ok")
    assert (fused.variant, unfused.variant) == ("fused", "unfused")
    assert fused.params < unfused.params == fused.card["params"]  # BN folded away; the card keeps the published count


@pytest.mark.slow  # torch.compile builds C++ kernels: tens of seconds on a 2-core CPU
def test_compile_runs_and_is_recorded(photo_paths: list[Path], device: str) -> None:
    config = BenchConfig(models=["yolo11n"], device=device, input_size=64, runs=2, budget=0.0, e2e=False,
                         compile=True)  # fmt: skip
    r = bench_model("yolo11n", config, photo_paths[:1])
    assert r.status == "ok", r.error
    assert r.compile and r.primary is not None and r.primary.model_latency is not None
    assert r.flops == bench_model("yolo11n", config.model_copy(update={"compile": False}), photo_paths[:1]).flops


def test_a_model_stopped_midway_keeps_what_it_measured(photo_paths: list[Path], device: str, tmp_path: Path) -> None:
    """A timeout (or crash) before result.json is written: load time, parameters, FLOPs and samples stay."""
    config = BenchConfig(models=["yolo11n"], device=device, input_size=64, runs=3, budget=0.0, e2e=False)
    done = bench_model("yolo11n", config, photo_paths[:1], tmp_path, EventSink(tmp_path / "events.jsonl"))
    (tmp_path / "result.json").unlink()  # as if the worker was killed during its first timed loop
    r = collect_result("yolo11n", tmp_path, "yolo11n", -9, "timeout", "exceeded --timeout 5 s during model #3")
    assert r.status == "timeout" and r.error and "--timeout" in r.error
    assert r.load_time_s == pytest.approx(done.load_time_s) and r.params == done.params == 2_616_248
    assert r.flops == done.flops and r.weights is not None and r.weights.mode == done.weights.mode  # type: ignore[union-attr]
    stopped = r.batches[0]
    assert stopped.status == "timeout" and stopped.model_latency is not None
    assert stopped.model_latency.samples_ms == pytest.approx(done.batches[0].model_latency.samples_ms)  # type: ignore[union-attr]
    assert r.primary is None  # an unfinished loop is never ranked as a measurement
    assert r.partial and "timeout" in (r.partial_reason or "")


def test_worker_killed_after_a_batch_size_keeps_it_and_records_the_limit(tmp_path: Path) -> None:
    """A worker the kernel kills (SIGKILL, out of memory) at batch 4 keeps batch 1 and 2; 4 is the limit."""
    done = [BatchResult(batch_size=1, status="ok"), BatchResult(batch_size=2, status="ok")]
    partial = ModelResult(name="m", status="interrupted", error="partial", batches=done)
    save_model_result(partial, tmp_path / "result.json")
    spec = {"config": BenchConfig(models=["m"], batch_sizes=[1, 2, 4]).model_dump()}
    (tmp_path / "worker_spec.json").write_text(json.dumps(spec))
    (tmp_path / "worker.log").write_text("loading\n")
    r = collect_result("m", tmp_path, "m", -9, None, None)
    assert r.status == "ok" and r.oom_batch_size == 4
    (tmp_path / "result.json").unlink()
    r = collect_result("m", tmp_path, "m", -9, None, None)
    assert r.status == "oom" and "SIGKILL" in (r.error or "") and "out of memory" in (r.error or "")


def test_oom_classification() -> None:
    assert is_oom(MemoryError())
    assert is_oom(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes"))
    assert is_oom(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_oom(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert not is_oom(RuntimeError("shape mismatch")) and not is_oom(ValueError("out of memory"))


def test_a_missing_weights_file_is_one_line_before_any_run_folder(tmp_path):
    res = runner.invoke(app, ["bench", "depth-anything-v2-tiny", "--weights", str(tmp_path / "nope.safetensors"),
                              "--out", str(tmp_path / "runs")])  # fmt: skip
    assert res.exit_code == 2 and "no such file or folder" in res.output
    assert not list((tmp_path / "runs").glob("*"))
