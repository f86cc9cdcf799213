"""The picture writer threads: run every job, report failures, respect the byte budget, drop queued jobs
after an error, and never leave a thread behind."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from visionbench.dissect.writer import BackgroundWriter


def test_writer_runs_every_job_and_reports_a_failure(tmp_path):
    with BackgroundWriter(max_queue=2) as writer:
        for i in range(20):
            writer.put((tmp_path / f"{i}.txt").write_text, str(i))
    assert sorted(int(p.stem) for p in tmp_path.glob("*.txt")) == list(range(20))
    writer = BackgroundWriter(max_queue=2)
    writer.put((tmp_path / "missing" / "x.txt").write_text, "x")
    with pytest.raises(FileNotFoundError):
        writer.close()


def test_a_failure_reaches_the_next_put(tmp_path):
    writer = BackgroundWriter(max_queue=2, max_bytes=100)
    writer.put((tmp_path / "missing" / "x.txt").write_text, "x", nbytes=60)  # over half the budget: writers start
    deadline = time.monotonic() + 30
    with pytest.raises(FileNotFoundError):
        while time.monotonic() < deadline:
            writer.put(time.sleep, 0.001)
    writer.close(wait=False)


def test_arrays_reach_the_job_intact(tmp_path):
    rng = np.random.default_rng(0)
    expected = [rng.standard_normal((2, 3, 17, 5)).astype(np.float32) for _ in range(12)]
    with BackgroundWriter() as writer:
        for i, host in enumerate(expected):
            writer.put(np.save, tmp_path / f"{i}.npy", host, nbytes=host.nbytes)
    for i, want in enumerate(expected):
        np.testing.assert_array_equal(np.load(tmp_path / f"{i}.npy"), want)


def test_byte_budget_never_deadlocks(tmp_path):
    writer = BackgroundWriter(max_queue=64, max_bytes=100)
    for i in range(6):  # each job alone is above half the budget, two never fit together
        writer.put((tmp_path / f"{i}.txt").write_text, "x", nbytes=80)
        assert writer.pending_bytes <= 100
    writer.close()
    assert len(list(tmp_path.glob("*.txt"))) == 6 and writer.peak_pending_bytes == 80


def test_an_error_in_the_pass_drops_queued_jobs_and_stops_every_thread(tmp_path):
    before = threading.active_count()
    with pytest.raises(KeyboardInterrupt), BackgroundWriter(max_queue=64) as writer:
        for i in range(10):  # held: below half the queue and no bytes, the writers have not started
            writer.put((tmp_path / f"{i}.txt").write_text, "x")
        raise KeyboardInterrupt
    assert not list(tmp_path.glob("*.txt")) and writer.pending_bytes == 0
    assert threading.active_count() == before


def test_thousands_of_jobs_never_deadlock():
    done: list[int] = []

    def run() -> None:
        with BackgroundWriter(max_queue=16, max_bytes=1000) as writer:
            for _ in range(4000):
                writer.put(time.sleep, 0.0, nbytes=300)
        done.append(writer.jobs)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert done == [4000]
