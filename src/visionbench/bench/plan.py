"""How a model's timed loops are laid out, decided in the worker from its first (warmup) forward.

A YOLO forward of 70 ms and a DepthPro forward of minutes cannot share one plan. Two loops (the model
loop on prepared tensors, then the end-to-end loop) with a warmup before them cost a slow model at
least five forwards; on a 2-core CPU where one DepthPro forward takes 3-4 minutes that is the whole
run's time goal. So when the first forward dwarfs the loops (its minimum samples alone would overrun
the budget, or two would overrun the loop cap), the worker takes one loop only:

- the end-to-end loop, whose forward phase is timed with a device sync on each side just like a model
  loop sample: it is the model latency (recorded as such in `LatencyStats.source`), so no forward is
  spent twice to get the same figure;
- no further warmups: a first forward of seconds warmed the code paths (one under `count_warmup_s`
  gets one more, warm, forward and the plan is decided on that: a cold call or a busy moment must not
  put a fast model on the slow plan), and on a CPU a forward of seconds has a
  first-call overhead (allocator growth, lazy init: tens of milliseconds) that is a negligible share of
  it, so there it counts as the first sample (`LatencyStats.counted_warmup`). Never on CUDA (the first
  call pays kernel selection, cuBLAS handles, autotuning: often more than the forward) nor for fast
  models, where that overhead is a large share;
- the loop's policy counts the counted warmup (time and sample), so the cap stops after two samples in
  all where a third would pass it.
"""

from __future__ import annotations

from dataclasses import dataclass

from visionbench.config import BenchConfig
from visionbench.measure.timing import RepeatPolicy


@dataclass(frozen=True)
class LoopPlan:
    """The loops one batch size gets: one (slow model) or two, and whether the warmup forward is a sample."""

    one_loop: bool
    count_warmup: bool
    reason: str

    @property
    def loops(self) -> int:
        return 1 if self.one_loop else 2


def choose_plan(first_forward_s: float, policy: RepeatPolicy, config: BenchConfig, device_type: str) -> LoopPlan:
    """The plan for a model whose first forward took `first_forward_s` seconds (see the module docstring)."""
    threshold = config.slow_forward_s if config.slow_forward_s is not None else policy.slow_threshold_s()
    if threshold is None or first_forward_s <= threshold:
        return LoopPlan(False, False, "two loops (model, then end to end)" if config.e2e else "one model loop")
    count = device_type == "cpu" and not config.compile and first_forward_s >= config.count_warmup_s
    loop = "the end-to-end loop, its forward phase as the model time" if config.e2e else "the model loop"
    why = (
        f"one-loop plan: the first forward took {first_forward_s:.1f} s > {threshold:.3g} s "
        f"(the loops' budget per minimum run, or half the loop cap), so one loop: {loop}"
    )
    if count:
        why += f"; the warmup forward counted as a sample (CPU, >= {config.count_warmup_s:g} s)"
    elif device_type != "cpu":
        why += f"; warmup not counted ({device_type}: a first call's overhead is no small share)"
    elif config.compile:
        why += "; warmup not counted (it included compilation)"
    else:
        why += f"; warmup not counted (shorter than {config.count_warmup_s:g} s)"
    return LoopPlan(True, count, why)
