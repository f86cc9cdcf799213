"""What the device can do: a matmul and a copy timed like the models, and the vendor's datasheet figure.

A model's utilisation (its FLOPs of one forward / its median time, against these peaks) tells a reader
how far a figure is from the machine's limit. The measured peak is the reference that holds on any
device, in the run's dtype and thread count, busy or not; the datasheet peak (dense, no sparsity,
tensor cores with fp32 accumulation where the dtype uses them) says what the hardware is sold at.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable
from typing import Any

import torch

from visionbench.measure.timing import RepeatPolicy, synchronize, time_calls
from visionbench.results import DevicePeak, ModelResult

log = logging.getLogger("visionbench")

TFLOP = 1e12
# Dense peaks from the vendors' datasheets and architecture whitepapers, in TFLOP/s per dtype. float32 is
# the plain (non-TF32) rate: torch's default matmul on these GPUs. Matched by substring of the device
# name, most specific first.
DATASHEET: list[tuple[str, str, dict[str, float]]] = [
    ("H200", "H200 SXM", {"float32": 67.0, "bfloat16": 989.4, "float16": 989.4}),
    ("H100 PCIe", "H100 PCIe", {"float32": 51.2, "bfloat16": 756.0, "float16": 756.0}),
    ("H100 NVL", "H100 NVL", {"float32": 60.0, "bfloat16": 835.0, "float16": 835.0}),
    ("H100", "H100 SXM", {"float32": 67.0, "bfloat16": 989.4, "float16": 989.4}),
    ("A100", "A100", {"float32": 19.5, "bfloat16": 312.0, "float16": 312.0}),
    ("L40S", "L40S", {"float32": 91.6, "bfloat16": 362.1, "float16": 362.1}),
    ("L4", "L4", {"float32": 30.3, "bfloat16": 121.0, "float16": 121.0}),
    ("T4", "T4", {"float32": 8.1, "float16": 65.0}),
    ("RTX 4090", "GeForce RTX 4090", {"float32": 82.6, "bfloat16": 165.2, "float16": 165.2}),
    ("RTX 3090", "GeForce RTX 3090", {"float32": 35.6, "bfloat16": 71.0, "float16": 71.0}),
    ("RTX 3060", "GeForce RTX 3060", {"float32": 12.7, "bfloat16": 25.6, "float16": 25.6}),
]
PROBE_SIZE = {"cpu": 2048, "cuda": 8192, "mps": 4096}


def datasheet_peak(device_name: str, dtype: str) -> tuple[str, float] | None:
    """(entry, FLOP/s) of the first table entry whose key is in `device_name`, for `dtype`; None if unknown."""
    for key, entry, peaks in DATASHEET:
        if key.lower() in device_name.lower():
            return (entry, peaks[dtype] * TFLOP) if dtype in peaks else None
    return None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    from visionbench.measure.environment import cpu_model

    return cpu_model() if device.type == "cpu" else device.type


def _median_seconds(
    fn: Callable[[], Any], device: torch.device, budget_s: float, min_runs: int = 3
) -> tuple[float, int]:
    """Median seconds of fn() after one warmup call, timed like the models (measure/timing.py)."""
    fn()
    synchronize(device)
    samples, _ = time_calls(fn, RepeatPolicy(min_runs=min_runs, budget_s=budget_s, max_runs=200), device)
    return statistics.median(samples) / 1e3, len(samples)


def measure_peak(device: torch.device | str, dtype: torch.dtype | str, budget_s: float = 1.0) -> DevicePeak:
    """The matmul FLOP/s and copy bytes/s of `device` in `dtype`, in this process's thread settings."""
    device = torch.device(device)
    dt = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    name = str(dt).removeprefix("torch.")
    n = PROBE_SIZE.get(device.type, 1024)
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device=device, dtype=dt)
    b = torch.randn(n, n, generator=gen).to(device=device, dtype=dt)
    with torch.inference_mode():
        mm_s, mm_runs = _median_seconds(lambda: torch.mm(a, b), device, 0.8 * budget_s, min_runs=5)
        src = torch.empty(64 * 2**20 // a.element_size(), dtype=dt, device=device)
        dst = torch.empty_like(src)
        copy_s, _ = _median_seconds(lambda: dst.copy_(src), device, 0.2 * budget_s)
    sheet = datasheet_peak(device_name(device), name) if device.type == "cuda" else None
    return DevicePeak(
        device=device_name(device), dtype=name, threads=torch.get_num_threads() if device.type == "cpu" else None,
        matmul_flops_per_s=2 * n**3 / mm_s, matmul_size=n, matmul_samples=mm_runs,
        copy_bytes_per_s=2 * src.numel() * src.element_size() / copy_s,
        datasheet_flops_per_s=sheet[1] if sheet else None, datasheet_name=sheet[0] if sheet else None,
    )  # fmt: skip


def utilisation(achieved_flops_per_s: float | None, peak_flops_per_s: float | None) -> float | None:
    """Achieved / peak, or None when either is unknown."""
    if not achieved_flops_per_s or not peak_flops_per_s:
        return None
    return achieved_flops_per_s / peak_flops_per_s


def ridge_point(peak: DevicePeak | None) -> float | None:
    """FLOPs per byte at which the measured matmul rate and copy bandwidth meet (the roofline's ridge)."""
    if peak is None or not peak.copy_bytes_per_s or not peak.matmul_flops_per_s:
        return None
    return peak.matmul_flops_per_s / peak.copy_bytes_per_s


def arithmetic_intensity(flops: int | None, bytes_moved: int | None) -> float | None:
    """FLOPs per byte moved; bytes moved is at least the weights read once per forward (a lower bound on traffic,
    so this is an upper bound on intensity: a model below the ridge even so is certainly memory-bound)."""
    if not flops or not bytes_moved:
        return None
    return flops / bytes_moved


def memory_bound(flops: int | None, bytes_moved: int | None, peak: DevicePeak | None) -> bool | None:
    """True when the forward's FLOPs per byte fall below the device's ridge point; None when unknown."""
    intensity, ridge = arithmetic_intensity(flops, bytes_moved), ridge_point(peak)
    if intensity is None or ridge is None:
        return None
    return intensity < ridge


REPROBE_AFTER_S = 30.0  # loops shorter than this ran close enough to the first probe to share it


def probe_or_none(device: torch.device, dtype: str) -> DevicePeak | None:
    """`measure_peak` for a worker: a failure only loses the reference figure, never the model's."""
    try:
        return measure_peak(device, dtype)
    except Exception as exc:  # noqa: BLE001 - a reference figure, never a reason to fail the model
        log.warning("peak probe on %s (%s) failed: %s: %s", device, dtype, type(exc).__name__, exc)
        return None


def probe_again(result: ModelResult, device: torch.device, dtype: str) -> None:
    """The probe once more after loops of minutes: a shared VM's speed drifts over minutes, so the peak is the
    better of the two, and every batch size's utilisation is taken against it."""
    looped = sum(lat.total_s for b in result.batches for lat in (b.model_latency, b.e2e_latency) if lat is not None)
    if result.peak is None or looped < REPROBE_AFTER_S or (after := probe_or_none(device, dtype)) is None:
        return
    result.peak.matmul_after_flops_per_s = after.matmul_flops_per_s
    for b in result.batches:
        b.utilisation = utilisation(b.achieved_flops_per_s, result.peak.best_flops_per_s)
