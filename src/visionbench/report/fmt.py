"""Number formatting shared by every report section: one precision per unit, '-' for a missing figure.
Also the system table, which both renderers (in-progress markdown, final report) show the same way."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from visionbench.results import Environment

MISSING = "-"


def ms(value: float | None) -> str:
    """Milliseconds: 2 decimals below 100 ms, 1 decimal above (enough for CPU noise, exact for GPUs)."""
    if value is None or not math.isfinite(value):
        return MISSING
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.1f}"


def mean_std(mean: float | None, std: float | None) -> str:
    return MISSING if mean is None else f"{ms(mean)} ± {ms(std)}"


def num(value: float | None, digits: int = 2) -> str:
    if value is None or not math.isfinite(value):
        return MISSING
    return f"{value:,.{digits}f}"


def mib(value: float | None) -> str:
    """Bytes as MiB with one decimal (the unit is in the column header)."""
    return MISSING if value is None else f"{value / 1024**2:,.1f}"


def count(value: float | None) -> str:
    """Parameters: millions with 2 decimals, e.g. '24.79 M'."""
    return MISSING if value is None else f"{value / 1e6:,.2f} M"


def gflop(value: float | None) -> str:
    """FLOPs as GFLOP (2 per multiply-add), 2 decimals."""
    return MISSING if not value else f"{value / 1e9:,.2f}"


def pct(value: float | None, digits: int = 1) -> str:
    return MISSING if value is None or not math.isfinite(value) else f"{100 * value:.{digits}f} %"


def ratio(value: float | None) -> str:
    """A ratio as 'x' with 2 significant decimals: 3.25x."""
    return MISSING if value is None or not math.isfinite(value) else f"{value:,.2f}x"


def sci(value: float | None) -> str:
    """Activation statistics span many orders of magnitude: 4 significant digits."""
    if value is None or not math.isfinite(value):
        return MISSING
    return f"{value:.4g}"


def system_rows(e: Environment) -> list[list[str]]:
    """[label, value] rows describing where a run happened, for the reports' System table."""
    gpus = ", ".join(f"{g.name} ({mib(g.total_memory_bytes)} MiB, sm {g.capability})" for g in e.gpus)
    return [
        ["OS", e.os], ["Python", e.python],
        ["CPU", f"{e.cpu_model} ({e.cpu_cores_physical} physical / {e.cpu_cores_logical} logical cores)"],
        ["Memory (MiB)", mib(e.memory_total_bytes)],
        ["torch threads", f"{e.torch_threads} (inter-op {e.torch_interop_threads})"], ["Device", e.device],
        ["GPU", gpus or "none"],
        ["GPU driver / CUDA / cuDNN", f"{e.gpu_driver or '-'} / {e.cuda_version or '-'} / {e.cudnn_version or '-'}"],
        ["Versions", ", ".join(f"{k} {v}" for k, v in e.versions.items() if v)],
        ["visionbench revision", e.git_revision or "not a git checkout"], ["Seed", str(e.seed)],
        ["Load average at start", " / ".join(f"{x:.2f}" for x in e.load_average) if e.load_average else "-"],
        ["Worker settings", f"denormals flushed to zero: {'yes' if e.flush_denormal else 'no'}; malloc: {e.malloc}"],
    ]  # fmt: skip
