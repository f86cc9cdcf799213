"""Number formatting for every report section and the terminal: one precision per unit, '-' for a missing
figure. The unit is in the column header (or the sentence), never in the cell."""

from __future__ import annotations

import math

MISSING = "-"


def missing(value: float | None) -> bool:
    return value is None or not math.isfinite(value)


def num(value: float | None, digits: int = 2) -> str:
    return MISSING if missing(value) else f"{value:,.{digits}f}"


def ms(value: float | None) -> str:
    """Milliseconds: 2 decimals below 100 ms, 1 decimal above (enough for CPU noise, exact for GPUs)."""
    return num(value, 1 if value is not None and abs(value) >= 100 else 2)


def mean_std(mean: float | None, std: float | None) -> str:
    return MISSING if mean is None else f"{ms(mean)} ± {ms(std)}"


def mib(value: float | None) -> str:
    return MISSING if value is None else f"{value / 1024**2:,.1f}"


def count(value: float | None) -> str:
    """Parameters: millions with 2 decimals, e.g. '24.79 M'."""
    return MISSING if value is None else f"{value / 1e6:,.2f} M"


def gflop(value: float | None) -> str:
    """FLOPs as GFLOP (2 per multiply-add)."""
    return MISSING if not value else f"{value / 1e9:,.2f}"


def tflops(value: float | None) -> str:
    """FLOP/s as TFLOP/s: 3 decimals below 10 TFLOP/s, so a CPU's fraction of one still shows."""
    return MISSING if value is None else f"{value / 1e12:,.3f}" if value < 1e13 else f"{value / 1e12:,.1f}"


def pct(value: float | None, digits: int = 1) -> str:
    return MISSING if missing(value) else f"{100 * value:.{digits}f} %"


def change(value: float | None) -> str:
    """A relative change with its sign: +4.2%."""
    return MISSING if missing(value) else f"{value:+.1%}"


def ratio(value: float | None) -> str:
    return MISSING if missing(value) else f"{value:,.2f}x"


def sci(value: float | None) -> str:
    """Activation statistics span many orders of magnitude: 4 significant digits."""
    return MISSING if missing(value) else f"{value:.4g}"
