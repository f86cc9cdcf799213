"""The picture writers: threads and worker processes run every job, report failures, respect the byte
budget, never hang on a dead worker, and write the same files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from visionbench.dissect import writer_process
from visionbench.dissect.writer import BackgroundWriter, open_writer
from visionbench.dissect.writer_process import ProcessWriter, WriterFailed

needs_processes = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="writer processes are Linux-only")


def _writer(kind: str, **kw):
    return BackgroundWriter(max_queue=2, **kw) if kind == "threads" else ProcessWriter(**kw)


KINDS = ["threads", pytest.param("processes", marks=needs_processes)]


@pytest.mark.parametrize("kind", KINDS)
def test_writer_runs_every_job_and_reports_a_failure(kind, tmp_path):
    with _writer(kind) as writer:
        for i in range(20):
            writer.put((tmp_path / f"{i}.txt").write_text, str(i))
    assert sorted(int(p.stem) for p in tmp_path.glob("*.txt")) == list(range(20))
    writer = _writer(kind)
    writer.put((tmp_path / "missing" / "x.txt").write_text, "x")
    with pytest.raises(FileNotFoundError):
        writer.close()


@pytest.mark.parametrize("kind", KINDS)
def test_host_arrays_reach_the_job_intact(kind, tmp_path):
    rng = np.random.default_rng(0)
    expected = []
    with _writer(kind) as writer:
        for i in range(12):
            host = writer.host_array((2, 3, 17, 5))
            host[...] = rng.standard_normal(host.shape)
            expected.append(host.copy())
            writer.put(np.save, tmp_path / f"{i}.npy", host)
    for i, want in enumerate(expected):
        np.testing.assert_array_equal(np.load(tmp_path / f"{i}.npy"), want)


def test_thread_writer_byte_budget_never_deadlocks(tmp_path):
    writer = BackgroundWriter(max_queue=64, max_bytes=100)
    for i in range(6):  # each job alone is above half the budget, two never fit together
        writer.put((tmp_path / f"{i}.txt").write_text, "x", nbytes=80)
        assert writer.pending_bytes <= 100
    writer.close()
    assert len(list(tmp_path.glob("*.txt"))) == 6 and writer.peak_pending_bytes == 80


@needs_processes
def test_process_writer_waits_for_room_in_the_shared_region(tmp_path):
    region = 1 << 20
    with ProcessWriter(max_bytes=region) as writer:
        for i in range(10):  # 600 KiB each: never two at once in a 1 MiB region
            host = writer.host_array((600 << 10,), np.uint8)
            host[...] = i
            writer.put(np.save, tmp_path / f"{i}.npy", host)
            assert writer.pool.region.used_bytes <= region
    assert all((np.load(tmp_path / f"{i}.npy") == i).all() for i in range(10))
    assert writer.peak_pending_bytes == 600 << 10 and writer.jobs == 10


def _write_pid(path: Path) -> None:  # this test module: not importable by a worker
    path.write_text(str(os.getpid()))


@needs_processes
def test_a_job_no_worker_can_import_runs_in_this_process(tmp_path):
    with ProcessWriter() as writer:
        writer.put(lambda p: p.write_text("here"), tmp_path / "a.txt")
        writer.put(_write_pid, tmp_path / "pid.txt")
        writer.put(np.save, tmp_path / "b.npy", np.arange(3))  # numpy's: runs in a worker
    assert (tmp_path / "a.txt").read_text() == "here"
    assert (tmp_path / "pid.txt").read_text() == str(os.getpid())
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), np.arange(3))


@needs_processes
def test_a_dead_worker_is_a_clear_error_and_the_next_writer_works(tmp_path):
    writer = ProcessWriter()
    writer.put(time.sleep, 0.0)
    writer.close()  # the workers are up and have served a job
    writer = ProcessWriter()
    os.kill(writer_process.worker_pids()[0], 9)
    with pytest.raises(WriterFailed, match="exited unexpectedly"):
        for _ in range(200):  # fails at the latest once the reply stream of the dead worker ends
            writer.put(time.sleep, 0.0)
            time.sleep(0.01)
        writer.close()
    writer.close(wait=False)
    with ProcessWriter() as fresh:  # a broken pool is replaced by a new one
        fresh.put((tmp_path / "ok.txt").write_text, "ok")
    assert (tmp_path / "ok.txt").read_text() == "ok"


@needs_processes
def test_thousands_of_jobs_in_one_batch_never_deadlock():
    import threading

    def run() -> None:  # more jobs than a pipe holds, and more replies than the other pipe holds
        with ProcessWriter(max_jobs=10_000) as writer:
            for _ in range(4000):
                writer.put(time.sleep, 0.0)
        done.append(writer.jobs)

    done: list[int] = []
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert done == [4000]


@needs_processes
def test_ctrl_c_is_left_to_the_parent(tmp_path):
    with ProcessWriter() as writer:
        writer.put(time.sleep, 0.0)
    pids = writer_process.worker_pids()
    for pid in pids:
        os.kill(pid, signal.SIGINT)  # as a terminal's Ctrl-C reaches the whole process group
    time.sleep(0.3)
    with ProcessWriter() as writer:
        writer.put((tmp_path / "after.txt").write_text, "still serving")
    assert (tmp_path / "after.txt").read_text() == "still serving"
    assert writer_process.worker_pids() == pids  # the same workers: none died and was replaced


@needs_processes
def test_a_second_concurrent_dissection_falls_back_to_threads():
    with ProcessWriter() as first:
        second = open_writer(16, 1 << 20)
        assert first.kind == "processes" and second.kind == "threads"
        second.close()


def test_writer_processes_never_import_torch():
    code = "; ".join(["import sys, visionbench.dissect.writer_worker, visionbench.dissect.pictures",
                      "print('torch' in sys.modules)"])  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@needs_processes
def test_threads_and_processes_write_the_same_files(tmp_path, monkeypatch):
    import visionbench as vb
    from visionbench.dissect import DissectOptions, dissect_model

    model = vb.create_model("yolo11n", weights="random", input_size=96, device="cpu")
    opts = DissectOptions(summary_plots=False)
    outputs = {}
    for kind in ("threads", "processes"):
        monkeypatch.setenv(writer_process.ENV_SWITCH, kind)
        result = dissect_model(model, None, tmp_path / kind, opts)
        doc = json.loads(Path(result.path).read_text())
        assert doc["writer"] == kind
        outputs[kind] = {p.relative_to(result.folder): p.read_bytes() for p in result.folder.rglob("*.*")
                         if p.suffix in {".png", ".npy"}}  # fmt: skip
    assert outputs["threads"] and outputs["threads"] == outputs["processes"]
