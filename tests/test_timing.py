"""Timing: statistics against numpy on known samples, the repeat policy's stopping rules, device sync."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from visionbench.measure.contention import ContentionMeter
from visionbench.measure.timing import PhaseClock, RepeatPolicy, latency_stats, time_calls


def test_stats_match_numpy_on_known_samples() -> None:
    samples = [12.0, 10.0, 11.0, 50.0, 10.5, 9.5, 10.2, 10.8, 11.1, 9.9]
    s = latency_stats(samples, kind="model", batch_size=4)
    a = np.array(samples)
    assert s.samples_ms == samples  # every sample kept, in order
    assert s.count == 10
    assert s.mean_ms == pytest.approx(a.mean())
    assert s.std_ms == pytest.approx(a.std(ddof=1))
    assert s.median_ms == pytest.approx(np.median(a)) == pytest.approx(10.65)
    assert s.p90_ms == pytest.approx(np.percentile(a, 90))
    assert s.p99_ms == pytest.approx(np.percentile(a, 99))
    assert (s.min_ms, s.max_ms) == (9.5, 50.0)
    assert s.fps == pytest.approx(1000 / 10.65)
    assert s.throughput_images_per_s == pytest.approx(4 * 10 / (a.sum() / 1000))
    assert s.total_s == pytest.approx(a.sum() / 1000)


def test_percentiles_on_one_to_hundred() -> None:
    s = latency_stats([float(x) for x in range(1, 101)], kind="model")
    assert s.median_ms == pytest.approx(50.5)
    assert s.p90_ms == pytest.approx(90.1)
    assert s.p99_ms == pytest.approx(99.01)


def test_single_sample_has_zero_std_and_no_infinities() -> None:
    s = latency_stats([5.0], kind="end_to_end")
    assert s.std_ms == 0.0 and s.median_ms == s.p99_ms == 5.0
    z = latency_stats([0.0], kind="model")
    assert np.isfinite(z.fps) and np.isfinite(z.throughput_images_per_s)
    with pytest.raises(ValueError):
        latency_stats([], kind="model")


def test_policy_takes_min_runs_then_fills_the_budget() -> None:
    calls = []
    samples, why = time_calls(lambda: (calls.append(1), time.sleep(0.002)), RepeatPolicy(min_runs=3, budget_s=0.05))
    assert len(samples) == len(calls) >= 3
    assert sum(samples) / 1e3 >= 0.04  # kept going until about the budget was used
    assert all(s >= 1.5 for s in samples)  # each sample covers the 2 ms sleep
    assert "budget" in why


def test_slow_calls_stop_at_min_runs() -> None:
    samples, why = time_calls(lambda: time.sleep(0.02), RepeatPolicy(min_runs=2, budget_s=0.0))
    assert len(samples) == 2 and "min 2" in why


def test_cap_stops_slow_loops_after_floor_runs() -> None:
    p = RepeatPolicy(min_runs=5, budget_s=10, cap_s=240)
    assert p.stop([117_000.0], 117.0) is None  # below the floor of 2
    why = p.stop([117_000.0, 117_000.0], 234.0)
    assert why is not None and "cap" in why  # a third 117 s call would end past 240 s
    assert p.stop([10.0, 10.0], 0.02) is None  # fast calls: the cap never binds before min runs
    assert p.expected_runs(117.0) == 2
    assert p.expected_runs(0.002) == 5000  # budget 10 s of 2 ms calls
    assert RepeatPolicy(min_runs=5, budget_s=10).expected_runs(117.0) == 5
    assert RepeatPolicy(min_runs=1, budget_s=0, max_runs=3).stop([1.0, 1.0, 1.0], 0.0) is not None


def test_prior_samples_count_toward_the_policy() -> None:
    calls: list[int] = []
    p = RepeatPolicy(min_runs=2, budget_s=0.0)
    samples, why = time_calls(lambda: calls.append(1), p, prior_ms=[500.0])  # a counted warmup: one more call
    assert len(samples) == len(calls) == 1 and "2 runs" in why
    samples, why = time_calls(lambda: calls.append(1), RepeatPolicy(min_runs=1, budget_s=0.0), prior_ms=[500.0])
    assert samples == [] and len(calls) == 1  # already satisfied: no call at all
    capped = RepeatPolicy(min_runs=5, budget_s=10, cap_s=240)  # DepthPro at 215 s a forward: 2 samples in all
    assert capped.stop([215_000.0, 215_000.0], 430.0) is not None and capped.stop([215_000.0], 215.0) is None
    assert capped.slow_threshold_s() == 2.0 and RepeatPolicy(min_runs=5, budget_s=0, cap_s=30).slow_threshold_s() == 15
    assert RepeatPolicy(budget_s=0).slow_threshold_s() is None


SPIN = "import time\nend = time.time() + {s}\nwhile time.time() < end: pass"


def test_contention_sees_another_process_and_not_our_own_children() -> None:
    meter = ContentionMeter()
    # started through a shell that exits at once: the spinner is no child of ours, as another job would be
    launch = f"{shlex.quote(sys.executable)} -c {shlex.quote(SPIN.format(s=4))} >/dev/null 2>&1 & echo $!"
    pid = int(subprocess.run(["sh", "-c", launch], capture_output=True, text=True, check=True).stdout)
    try:
        time.sleep(0.5)  # the spinner is running
        meter.start()
        time.sleep(1.5)  # this process idles: the spinner's core is other work
        meter.stop()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    c = meter.result()
    assert c is not None and c.other_cores > 0.5 and c.own_cores < 0.3 and c.cores >= 1
    own = ContentionMeter()
    own.start()  # our own child spinning is this worker's work, not contention
    subprocess.run([sys.executable, "-c", SPIN.format(s=1.5)], check=True)
    own.stop()
    mine = own.result()
    assert mine is not None and mine.own_cores > 0.5


def test_phase_clock_splits_a_call() -> None:
    clock = PhaseClock("cpu")
    time.sleep(0.01)
    clock.lap("a")
    clock.lap("b")
    assert clock.phases["a"] >= 9.0 and clock.phases["b"] < clock.phases["a"]


def test_events_on_cuda_when_available(device: str) -> None:
    import torch

    if not device.startswith("cuda"):
        pytest.skip("CUDA events need a CUDA device")
    x = torch.randn(1024, 1024, device=device)
    samples, _ = time_calls(lambda: x @ x, RepeatPolicy(min_runs=3, budget_s=0), device)
    assert len(samples) == 3 and all(s > 0 for s in samples)
