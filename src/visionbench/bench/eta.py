"""Time estimates for a suite, from this machine: a matmul probe, each model's FLOPs and a prior utilisation.

A forward's time is FLOPs / (probe FLOP/s x utilisation); each finished model's measured utilisation
corrects the priors of the rest and its worker's probe replaces the parent's. The probe runs in a short
subprocess (`probe_peak`) with the workers' settings, so the parent process is never changed.
"""

from __future__ import annotations

import functools
import json
import logging
import statistics
import subprocess
import sys

from visionbench.config import BenchConfig
from visionbench.measure.timing import RepeatPolicy
from visionbench.results import DevicePeak, ModelResult

log = logging.getLogger("visionbench")
# GFLOP of one forward at the native input size, batch 1 (architecture facts, 2 FLOP per multiply-add, on
# the meta device). Depth Anything keeps the photo's aspect ratio: its figures are at the bundled photo
# (bus.jpg, 810x1080 -> 518x686), the suite's default image.
NATIVE_GFLOP = {
    "depthpro": 19247.4,
    "depth-anything-v2-small": 167.5,
    "depth-anything-v2-base": 533.8,
    "depth-anything-v2-large": 1806.1,
    "yolo11n": 6.5,
    "yolo11n-seg": 9.8,
    "yolo11n-pose": 7.6,
    "mobile-sam": 81.2,
}
NATIVE_SIZE = {"depthpro": 1536, "mobile-sam": 1024, "yolo11n": 640, "yolo11n-seg": 640, "yolo11n-pose": 640}
# Achieved FLOP/s of a forward / the matmul probe's FLOP/s, per family, float32 on a CPU. DepthPro: one
# forward of 19.25 TFLOP in 215 s against a 120 GFLOP/s probe on the 2-core AVX2 EPYC with nothing else
# running (0.75: three ViT-L encoders, large matmuls). The others from two sources that agree within
# their noise: `python benchmarks/eta_priors.py` on the same VM while other jobs shared it (probe and model
# timed in turn: DA-small 0.59, DA-base 0.92, yolo11n-seg 0.45, yolo11n 0.23, mobile-sam 0.44), and the
# ratios to DepthPro in docs/benchmarks.md's uncontended AVX-512 run (DA 0.89-1.14x, YOLO 0.45-0.5x,
# MobileSAM 0.41x). Few-channel convolutions (YOLO) and small attention reach less of a big matmul's rate.
PRIOR_UTILISATION = {"depthpro": 0.75, "depth-anything": 0.7, "yolo11": 0.35, "mobile-sam": 0.4}
DEFAULT_UTILISATION = 0.5
PRIOR_RATE = {"cpu": 100e9, "cuda": 20e12, "mps": 2e12}  # FLOP/s when no probe ran (it failed)
FORWARD_FLOOR_S = {"cpu": 0.0, "cuda": 0.003, "mps": 0.005}  # launch-bound small models on accelerators
STARTUP_S = 8.0  # a worker's interpreter start + imports, before anything was measured
PROBE_S = 1.5  # each worker's own matmul + copy probe (measure_peak, 1 s budget, plus its warmup)
LOAD_S_PER_PARAM = 1.5e-8  # build + init: DepthPro's 952 M parameters took 14 s
DISSECT_FORWARDS = 1.25  # a dissection pass: DepthPro's took 1.16-1.24x a forward (docs/benchmarks.md)
UNKNOWN_GFLOP = 100.0


def family(name: str) -> str:
    return next((f for f in PRIOR_UTILISATION if name.startswith(f)), "")


class Eta:
    """Estimated seconds per model; `observe()` each finished model to sharpen the rest."""

    def __init__(self, config: BenchConfig, device_type: str, peak: DevicePeak | None = None) -> None:
        self.config = config
        self.device_type = device_type
        self.peaks: list[float] = [peak.matmul_flops_per_s] if peak is not None else []
        self.worker_peaks: list[float] = []
        self.ratios: dict[str, list[float]] = {}  # family -> measured / prior utilisation
        self.startups: list[float] = []

    @property
    def peak_flops_per_s(self) -> float | None:
        """The workers' own probes once there are any (same process settings as the models), else the parent's."""
        values = self.worker_peaks or self.peaks
        return statistics.median(values) if values else None

    @property
    def startup_s(self) -> float:
        return statistics.median(self.startups) if self.startups else STARTUP_S

    def utilisation(self, name: str) -> float:
        """The prior of the model's family, corrected by what the finished models measured against theirs."""
        fam = family(name)
        prior = PRIOR_UTILISATION.get(fam, DEFAULT_UTILISATION)
        own = self.ratios.get(fam)
        every = [r for rs in self.ratios.values() for r in rs]
        ratio = statistics.median(own) if own else (statistics.median(every) if every else 1.0)
        return prior * ratio

    def forward_s(self, name: str, batch_size: int = 1) -> float:
        flops = gflop(name, self.config.plan_for(name).input_size) * 1e9 * batch_size
        peak = self.peak_flops_per_s
        rate = peak * self.utilisation(name) if peak else PRIOR_RATE.get(self.device_type, PRIOR_RATE["cpu"])
        return flops / rate + FORWARD_FLOOR_S.get(self.device_type, 0.0)

    def model_s(self, name: str) -> float:
        """Whole worker: start, probe, load, then the plan's forwards per batch size (+ profile, dissection)."""
        plan = self.config.plan_for(name)
        cfg = self.config
        policy = RepeatPolicy(min_runs=plan.runs or 1, budget_s=plan.budget_s or 0.0, cap_s=cfg.max_loop_time)
        threshold = cfg.slow_forward_s if cfg.slow_forward_s is not None else policy.slow_threshold_s()
        total = self.startup_s + PROBE_S + _load_s(name)
        for i, bs in enumerate(cfg.batch_sizes):
            t = self.forward_s(name, bs)
            if threshold is not None and t > threshold:  # the one-loop plan (bench/plan.py)
                counted = self.device_type == "cpu" and not cfg.compile and t >= cfg.count_warmup_s
                warm = 1 if t >= cfg.count_warmup_s else 2  # a short first forward is checked by a warm one
                forwards = warm + max(0, policy.expected_runs(t) - int(counted))
                if cfg.profile and i == 0 and not (counted and bs == 1):
                    forwards += 1  # one hooked forward
            else:
                loops = 2 if cfg.e2e else 1
                forwards = (plan.warmup or 1) + loops * policy.expected_runs(t)
                if cfg.profile and i == 0:
                    forwards += 2 * min(3, plan.runs or 1)
            total += forwards * t
        if cfg.dissect:
            total += DISSECT_FORWARDS * self.forward_s(name)
        return total

    def observe(self, result: ModelResult) -> None:
        if result.peak is not None:
            self.worker_peaks.append(result.peak.matmul_flops_per_s)
        b = result.primary
        if b is not None and b.utilisation and result.status == "ok":
            fam = family(result.name)
            self.ratios.setdefault(fam, []).append(b.utilisation / PRIOR_UTILISATION.get(fam, DEFAULT_UTILISATION))
        if result.wall_time_s is not None and result.load_time_s is not None and result.import_time_s is not None:
            self.startups.append(result.import_time_s + 4.0)


def gflop(name: str, input_size: int | None = None) -> float:
    """GFLOP of one forward at batch 1: the table (scaled by the input's area) or, for other names (tiny test
    models, open doors), counted once on the meta device at the card's size (no weights, no compute)."""
    if name in NATIVE_GFLOP:
        native = NATIVE_SIZE.get(name, 518)
        return NATIVE_GFLOP[name] * ((input_size or native) / native) ** 2
    return _meta_gflop(name, input_size)


@functools.lru_cache(maxsize=64)
def _meta_gflop(name: str, input_size: int | None) -> float:
    import torch

    from visionbench.measure.flops import counting_on_meta
    from visionbench.models.registry import create_model

    try:
        model = create_model(name, device="meta", weights="random", input_size=input_size)
        batch = model.example_batch(1)
        batch.inputs = {k: torch.empty(v.shape, dtype=v.dtype, device="meta") for k, v in batch.inputs.items()}
        with counting_on_meta() as counter:
            model.forward(batch)
        return counter.get_total_flops() / 1e9 or UNKNOWN_GFLOP
    except Exception:  # noqa: BLE001 - not buildable here (a checkpoint, remote code): a round guess
        return UNKNOWN_GFLOP


def _load_s(name: str) -> float:
    from visionbench.models.registry import get_card

    try:
        params = get_card(name).params or 0
    except Exception:  # noqa: BLE001 - an unknown name fails in its worker; its estimate is only the start-up
        params = 0
    return 0.5 + params * LOAD_S_PER_PARAM


def predicted_forward_s(name: str, peak: DevicePeak | None, device_type: str, input_size: int | None = None) -> float:
    """One forward of `name` at batch 1 on a machine whose probe measured `peak` (the prior utilisation)."""
    config = BenchConfig(models=[name], input_size=input_size)
    return Eta(config, device_type, peak).forward_s(name)


@functools.lru_cache(maxsize=8)
def probe_peak(device: str, dtype: str, threads: int | None, timeout_s: float = 120.0) -> DevicePeak | None:
    """The matmul probe in a short subprocess with the workers' settings, so this process stays as it was.

    Cached per process: `run --quick` decides its plan from it, and the suite's estimate reuses it.
    """
    cmd = [sys.executable, "-m", "visionbench.bench.eta", device, dtype, str(threads or 0)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=True)
        return DevicePeak.model_validate(json.loads(done.stdout.strip().splitlines()[-1]))
    except (subprocess.SubprocessError, OSError, ValueError, IndexError) as exc:
        log.warning("the estimate's matmul probe failed (%s); estimating from a fixed rate", exc)
        return None


def _probe_main(argv: list[str]) -> int:
    from visionbench.bench.process import benchmark_process
    from visionbench.measure.peak import measure_peak

    device, dtype, threads = argv[0], argv[1], int(argv[2]) or None
    with benchmark_process(threads):
        peak = measure_peak(device, dtype, budget_s=0.5)
    print(peak.model_dump_json())
    return 0


if __name__ == "__main__":
    sys.exit(_probe_main(sys.argv[1:]))


__all__ = ["Eta", "family", "gflop", "predicted_forward_s", "probe_peak"]
