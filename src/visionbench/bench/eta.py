"""Time estimates for a suite: a prior per model before it runs, corrected by what was measured so far.

The prior is FLOPs / rate: FLOPs of one forward at the native size are properties of the
architectures (from `visionbench trace` / `count_flops`), the rate starts from a conservative guess
per device type and is replaced by the achieved FLOP/s of the models that already finished.
"""

from __future__ import annotations

import statistics

from visionbench.config import BenchConfig
from visionbench.measure.timing import RepeatPolicy
from visionbench.results import ModelResult

# GFLOP of one forward at the native input size, batch 1 (architecture facts, 2 FLOP per multiply-add).
NATIVE_GFLOP = {
    "depthpro": 19247.4,
    "depth-anything-v2-small": 115.3,
    "depth-anything-v2-base": 380.7,
    "depth-anything-v2-large": 1304.2,
    "yolo11n": 6.5,
    "yolo11n-seg": 9.8,
    "yolo11n-pose": 7.6,
    "mobile-sam": 81.2,
}
NATIVE_SIZE = {"depthpro": 1536, "mobile-sam": 1024, "yolo11n": 640, "yolo11n-seg": 640, "yolo11n-pose": 640}
PRIOR_RATE = {"cpu": 150e9, "cuda": 20e12, "mps": 2e12}  # FLOP/s before anything was measured
STARTUP_S = 8.0  # a worker's interpreter start + imports, before anything was measured
UNKNOWN_GFLOP = 100.0


class Eta:
    """Estimated seconds per model; `observe()` each finished model to sharpen the rest."""

    def __init__(self, config: BenchConfig, device_type: str) -> None:
        self.config = config
        self.rates: list[float] = []
        self.startups: list[float] = []
        self.prior_rate = PRIOR_RATE.get(device_type, PRIOR_RATE["cpu"])

    @property
    def rate(self) -> float:
        return statistics.median(self.rates) if self.rates else self.prior_rate

    @property
    def startup_s(self) -> float:
        return statistics.median(self.startups) if self.startups else STARTUP_S

    def forward_s(self, name: str, batch_size: int = 1) -> float:
        plan = self.config.plan_for(name)
        native = NATIVE_SIZE.get(name, 518)
        size = plan.input_size or native
        gflop = NATIVE_GFLOP.get(name, UNKNOWN_GFLOP) * (size / native) ** 2
        return gflop * 1e9 * batch_size / self.rate

    def model_s(self, name: str) -> float:
        """Whole worker: start, load, then warmup + timed loops per batch size (+ a dissection pass)."""
        plan = self.config.plan_for(name)
        policy = RepeatPolicy(min_runs=plan.runs or 1, budget_s=plan.budget_s or 0.0, cap_s=self.config.max_loop_time)
        loops = 2 if self.config.e2e else 1
        total = self.startup_s + 2.0
        for bs in self.config.batch_sizes:
            t = self.forward_s(name, bs)
            total += (plan.warmup or 1) * t + loops * policy.expected_runs(t) * t
        if self.config.dissect:
            total += 2 * self.forward_s(name)
        if self.config.profile:
            total += (2 * min(3, plan.runs or 1) + 1) * self.forward_s(name)
        return total

    def observe(self, result: ModelResult) -> None:
        b = result.primary
        if b is not None and b.achieved_flops_per_s:
            self.rates.append(b.achieved_flops_per_s)
        if result.wall_time_s is not None and result.load_time_s is not None and result.import_time_s is not None:
            self.startups.append(result.import_time_s + 4.0)
