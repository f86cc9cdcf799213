"""Timing: device sync, an adaptive repeat policy (minimum runs + time budget) and latency statistics.

Not `torch.utils.benchmark.Timer`: its `blocked_autorange` reports per-block means and stops on a fixed
`min_run_time`; here every call is its own sample ("at least N, more until a budget is spent"), so a
forward of minutes and one of milliseconds share one policy. CUDA calls are timed with CUDA events.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from visionbench.results import LatencyStats

SampleCallback = Callable[[int, float, float], None]  # (samples so far, seconds spent in the loop, this sample's ms)


@dataclass(frozen=True)
class RepeatPolicy:
    """At least `min_runs` samples; then more until `budget_s` seconds are spent or `max_runs` reached.

    `cap_s` (optional) bounds very slow calls: once `floor_runs` samples exist, a sample that would end
    past `cap_s` (predicted from the slowest sample so far) is not started, so a forward of minutes
    gets 2 samples in a suite instead of 5; the stop reason says so.
    """

    min_runs: int = 5
    budget_s: float = 10.0
    max_runs: int = 10_000
    cap_s: float | None = None
    floor_runs: int = 2

    def expected_runs(self, seconds_per_call: float) -> int:
        """How many samples this policy will take for a call of that duration (for ETAs)."""
        t = max(seconds_per_call, 1e-9)
        n = max(self.min_runs, min(self.max_runs, math.ceil(self.budget_s / t)))
        if self.cap_s is not None:
            n = min(n, max(self.floor_runs, math.floor(self.cap_s / t)))
        return n

    def slow_threshold_s(self) -> float | None:
        """A forward longer than this dwarfs the loops: its minimum samples alone overrun the budget, or two
        would overrun the cap. None when nothing bounds the loops (no budget, no cap)."""
        limits = []
        if self.budget_s > 0:
            limits.append(self.budget_s / max(1, self.min_runs))
        if self.cap_s is not None:
            limits.append(self.cap_s / 2)
        return min(limits) if limits else None

    def stop(self, samples_ms: list[float], spent_s: float) -> str | None:
        """Why to stop after these samples, or None to take another."""
        n = len(samples_ms)
        if n >= self.max_runs:
            return f"max runs ({self.max_runs})"
        if n >= self.min_runs and spent_s >= self.budget_s:
            return f"{n} runs >= min {self.min_runs} and {spent_s:.1f} s >= budget {self.budget_s:g} s"
        if self.cap_s is not None and n >= self.floor_runs and spent_s + max(samples_ms) / 1e3 > self.cap_s:
            slowest_s = max(samples_ms) / 1e3
            return f"{n} runs: another would pass the loop cap of {self.cap_s:g} s (one call takes {slowest_s:.1f} s)"
        return None


def synchronize(device: torch.device | str) -> None:
    """Wait for queued device work, so a timer measures the work and not its launch."""
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    elif dev.type == "mps":
        torch.mps.synchronize()


def time_calls(
    fn: Callable[[], Any],
    policy: RepeatPolicy,
    device: torch.device | str = "cpu",
    on_sample: SampleCallback | None = None,
    prior_ms: list[float] | None = None,
) -> tuple[list[float], str]:
    """Time `fn()` repeatedly under `policy`: every sample in milliseconds, and why the loop stopped.

    The caller does warmup and `torch.inference_mode()`; this loop only measures. `prior_ms` are samples
    already taken (a counted warmup) that the policy counts, with their time, before this loop's own:
    when they already satisfy it, `fn` is never called and the samples list is empty.
    """
    dev = torch.device(device)
    use_events = dev.type == "cuda"
    prior = list(prior_ms or [])
    prior_s = sum(prior) / 1e3
    if prior and (why := policy.stop(prior, prior_s)) is not None:
        return [], why
    samples: list[float] = []
    synchronize(dev)
    loop_start = time.perf_counter()
    while True:
        if use_events:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            synchronize(dev)
            samples.append((time.perf_counter() - t0) * 1e3)
        spent = time.perf_counter() - loop_start
        if on_sample is not None:
            on_sample(len(samples), spent, samples[-1])
        why = policy.stop(prior + samples, prior_s + spent)
        if why is not None:
            return samples, why


class PhaseClock:
    """Splits one end-to-end call into named phases with a device sync at each boundary."""

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.phases: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, phase: str) -> None:
        synchronize(self.device)
        now = time.perf_counter()
        self.phases[phase] = (now - self._t) * 1e3
        self._t = now


def latency_stats(
    samples_ms: list[float],
    *,
    kind: str,
    batch_size: int = 1,
    warmup_calls: int = 0,
    stop_reason: str = "",
    phases_ms: dict[str, list[float]] | None = None,
    source: str = "",
    counted_warmup: int = 0,
) -> LatencyStats:
    """Mean, sample std, median, p90, p99, min, max, FPS and throughput of the samples."""
    if not samples_ms:
        raise ValueError("no samples")
    a = np.asarray(samples_ms, dtype=np.float64)
    total_s = float(a.sum()) / 1e3
    median = float(np.median(a))
    return LatencyStats(
        kind=kind,  # type: ignore[arg-type]
        batch_size=batch_size,
        samples_ms=[float(x) for x in a],
        count=int(a.size),
        mean_ms=float(a.mean()),
        std_ms=float(a.std(ddof=1)) if a.size > 1 else 0.0,
        median_ms=median,
        p90_ms=float(np.percentile(a, 90)),
        p99_ms=float(np.percentile(a, 99)),
        min_ms=float(a.min()),
        max_ms=float(a.max()),
        total_s=total_s,
        fps=1e3 / max(median, 1e-9),  # never inf: JSON has no infinity
        throughput_images_per_s=batch_size * a.size / max(total_s, 1e-12),
        warmup_calls=warmup_calls,
        stop_reason=stop_reason,
        phases_ms=phases_ms,
        source=source or ("end-to-end loop" if kind == "end_to_end" else "model loop"),
        counted_warmup=counted_warmup,
    )
