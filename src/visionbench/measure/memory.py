"""Peak memory of one worker process: CUDA allocator counters on GPU, resident memory (RSS) on CPU.

CPU peaks come from the kernel, not from polling: Linux keeps the process's high-water mark
(`VmHWM` in /proc/self/status) and resets it to the current RSS when "5" is written to
/proc/self/clear_refs. So the baseline, the load peak and the run peak are exact and cost nothing
while timing. Where that is not available (macOS, old kernels) a psutil sampler thread polls RSS
every few milliseconds instead, and the record says so in `method`.
"""

from __future__ import annotations

import threading
from pathlib import Path

import psutil
import torch

from visionbench.results import MemoryStats

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def current_rss_bytes() -> int:
    return int(psutil.Process().memory_info().rss)


def _read_hwm_bytes() -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    hwm = _read_hwm_bytes()
    return hwm is not None and hwm <= current_rss_bytes() * 1.05 + (1 << 20)


class _Sampler:
    """Fallback peak finder: a daemon thread polling RSS."""

    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s = interval_s
        self.peak = current_rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        proc = psutil.Process()
        while not self._stop.wait(self.interval_s):
            self.peak = max(self.peak, int(proc.memory_info().rss))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=1)
        return max(self.peak, current_rss_bytes())


class PeakRSS:
    """A resettable process peak: `reset()` then later `peak()`; uses VmHWM where it can."""

    def __init__(self) -> None:
        self.exact = _reset_hwm()
        self._sampler: _Sampler | None = None
        self.reset()

    @property
    def method(self) -> str:
        return "VmHWM after clear_refs (kernel high-water mark)" if self.exact else "psutil RSS sampled every 5 ms"

    def reset(self) -> None:
        if self.exact:
            _reset_hwm()
        else:
            if self._sampler is not None:
                self._sampler.stop()
            self._sampler = _Sampler()

    def peak(self) -> int:
        if self.exact:
            return _read_hwm_bytes() or current_rss_bytes()
        assert self._sampler is not None
        value = self._sampler.stop()
        self._sampler = _Sampler()
        self._sampler.peak = value
        return value


class MemoryTracker:
    """The memory record of one model: baseline, after load, load peak, run peak (CPU and CUDA)."""

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.rss = PeakRSS()
        self.baseline_rss = current_rss_bytes()
        self.after_load_rss: int | None = None
        self.load_peak_rss: int | None = None
        self.cuda_after_load: int | None = None

    def loaded(self) -> None:
        """Call once the model is built and on its device."""
        self.load_peak_rss = self.rss.peak()
        self.after_load_rss = current_rss_bytes()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.cuda_after_load = int(torch.cuda.memory_allocated(self.device))

    def start_run(self) -> None:
        """Reset every peak counter: what follows (warmup + timing at one batch size) is measured alone."""
        self.rss.reset()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)

    def end_run(self) -> MemoryStats:
        run_peak = self.rss.peak()
        stats = MemoryStats(
            device_type=self.device.type,
            method=self.rss.method,
            baseline_rss_bytes=self.baseline_rss,
            after_load_rss_bytes=self.after_load_rss,
            load_peak_rss_bytes=self.load_peak_rss,
            run_peak_rss_bytes=run_peak,
        )
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            stats.method = "torch.cuda.max_memory_allocated / max_memory_reserved after reset_peak_memory_stats"
            stats.cuda_after_load_allocated_bytes = self.cuda_after_load
            stats.cuda_peak_allocated_bytes = int(torch.cuda.max_memory_allocated(self.device))
            stats.cuda_peak_reserved_bytes = int(torch.cuda.max_memory_reserved(self.device))
            stats.after_load_bytes = self.cuda_after_load
            stats.peak_bytes = stats.cuda_peak_allocated_bytes
        else:
            if self.after_load_rss is not None:
                stats.after_load_bytes = max(0, self.after_load_rss - self.baseline_rss)
            stats.peak_bytes = max(0, run_peak - self.baseline_rss)
        return stats

    def after_cleanup(self, stats: MemoryStats) -> None:
        """Fill what is still held once a batch size's tensors are freed (call after gc and empty_cache)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            stats.after_cleanup_bytes = int(torch.cuda.memory_allocated(self.device))
        else:
            stats.after_cleanup_bytes = max(0, current_rss_bytes() - self.baseline_rss)
