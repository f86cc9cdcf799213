"""Number formatting for every report section and the terminal: one precision per unit, '-' for a missing
figure. The unit is in the column header (or the sentence), never in the cell."""

from __future__ import annotations

import math

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
