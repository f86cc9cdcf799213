"""Contention while a model is timed: the CPU time every other process used, per wall second.

The load average at the start of a run says nothing about a job that starts halfway through it, and on
a 2-core machine two torch processes slow each other down far more than 2x. So the worker measures,
around its timed loops, the machine's busy CPU time (psutil's system-wide times: user, nice, system,
irq, softirq and a VM's steal) minus its own process tree's (the worker, its threads and children).
What is left is other work, in cores: 1.0 means one core was busy with something else all along.
"""

from __future__ import annotations

import contextlib
import time

import psutil

from visionbench.results import ContentionStats

METHOD = (
    "psutil.cpu_times() busy time (user+nice+system+irq+softirq+steal) minus this worker's process tree "
    "(psutil cpu_times of the process and its children), over the timed loops, per wall second"
)
CONTENDED_SHARE = 0.25  # of the cores: one other busy thread on a 2-core machine halves what the model gets
# guest time is already inside user on Linux, guest_nice inside nice: counted once
BUSY_FIELDS = ("user", "nice", "system", "irq", "softirq", "steal")


def _system_busy_s() -> float:
    t = psutil.cpu_times()
    return sum(getattr(t, f, 0.0) for f in BUSY_FIELDS)


def _tree_s(proc: psutil.Process) -> float:
    """CPU seconds of `proc` (all threads, children it waited for) and its live children."""
    total = 0.0
    with contextlib.suppress(psutil.Error):
        t = proc.cpu_times()
        total += t.user + t.system + t.children_user + t.children_system
        for child in proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                c = child.cpu_times()
                total += c.user + c.system
    return total


class ContentionMeter:
    """Accumulates other processes' CPU use over the spans between `start()` and `stop()`."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.wall_s = self.own_s = self.other_s = 0.0
        self._mark: tuple[float, float, float] | None = None

    def start(self) -> None:
        self._mark = (time.perf_counter(), _system_busy_s(), _tree_s(self.proc))

    def stop(self) -> None:
        if self._mark is None:
            return
        t0, busy0, own0 = self._mark
        wall, busy, own = time.perf_counter() - t0, _system_busy_s() - busy0, _tree_s(self.proc) - own0
        self._mark = None
        self.wall_s += wall
        self.own_s += own
        self.other_s += max(0.0, busy - own)  # the two clocks tick at different moments: never below zero

    def result(self) -> ContentionStats | None:
        """The figures so far; None before any span was measured."""
        if self.wall_s <= 0:
            return None
        cores = psutil.cpu_count(logical=True) or 1
        other = self.other_s / self.wall_s
        return ContentionStats(
            wall_s=self.wall_s, cores=cores, own_cores=self.own_s / self.wall_s, other_cores=other,
            other_share=min(1.0, other / cores), contended=other >= CONTENDED_SHARE * cores, method=METHOD,
        )  # fmt: skip
