"""The report's charts: plain figures in, PNG bytes out (matplotlib, Agg), so a chart can be checked against
the numbers it was drawn from."""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator  # noqa: E402

DPI = 110
PALETTE = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C", "#CCB974", "#64B5CD"]


def _log_labels(values: Sequence[float]) -> FuncFormatter:
    """Plain numbers on a log axis: every tick within about a decade, else only 1, 2 and 5 of each decade."""
    pos = [v for v in values if v > 0]
    narrow = not pos or max(pos) / min(pos) < 8
    return FuncFormatter(lambda v, _p: f"{v:g}" if narrow or f"{v:g}".lstrip("0.")[:1] in "125" else "")


_DRAW = [True]


@contextmanager
def drawing(on: bool) -> Iterator[None]:
    """Within `drawing(False)` charts come back as b"" undrawn: the report written after every model of a
    run leaves them to the report at its end, where drawing them (seconds each) is paid once."""
    _DRAW.append(on)
    try:
        yield
    finally:
        _DRAW.pop()


def _png(fig: Figure) -> bytes:
    if not _DRAW[-1]:
        plt.close(fig)
        return b""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()


def _bars(names: Sequence[str], title: str, xlabel: str, width: float = 7.5, extra: float = 0.0) -> plt.Axes:
    """Axes for horizontal bars, one row a model, first model on top; the caller draws and calls `_png`."""
    _, ax = plt.subplots(figsize=(width, max(2.2, 0.45 * len(names) + 1.2) + extra))
    ax.set_yticks(range(len(names)), labels=list(names))
    ax.invert_yaxis()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    return ax


def latency_chart(names: Sequence[str], mean_ms: Sequence[float], std_ms: Sequence[float], unit: str = "ms") -> bytes:
    """Horizontal bars of mean latency with ±1 std error bars, log scale when the spread is wide."""
    ax = _bars(names, "Inference time", f"model latency, mean ± std ({unit}, lower is better)")
    ax.barh(range(len(names)), mean_ms, xerr=std_ms, color=PALETTE[0], capsize=4, error_kw={"elinewidth": 1.2})
    if _wide(mean_ms):
        ax.set_xscale("log")
    for i, (m, s) in enumerate(zip(mean_ms, std_ms, strict=True)):
        ax.annotate(f"{m:,.1f} ± {s:,.1f}", (m + s, i), xytext=(4, 0), textcoords="offset points", va="center",
                    fontsize=8)  # fmt: skip
    ax.margins(x=0.25)
    return _png(ax.figure)


def memory_chart(
    names: Sequence[str], peak_bytes: Sequence[float | None], after_load_bytes: Sequence[float | None]
) -> bytes:
    """Peak memory while running, next to memory held once loaded (MiB)."""
    ax = _bars(names, "Memory", "memory (MiB, lower is better)")
    mib = 1024**2
    y = list(range(len(names)))
    peak = [(b or 0) / mib for b in peak_bytes]
    load = [(b or 0) / mib for b in after_load_bytes]
    h = 0.38
    ax.barh([i - h / 2 for i in y], peak, height=h, color=PALETTE[3], label="peak while running")
    ax.barh([i + h / 2 for i in y], load, height=h, color=PALETTE[7], label="after load")
    if _wide(peak):
        ax.set_xscale("log")
    ax.legend(loc="lower right", fontsize=8)
    return _png(ax.figure)


def params_vs_latency_chart(names: Sequence[str], params: Sequence[float], median_ms: Sequence[float]) -> bytes:
    """Parameters against median latency, both on log scales: who pays more time per parameter."""
    fig, ax = plt.subplots(figsize=(7.0, 4.6))
    for i, (n, p, t) in enumerate(zip(names, params, median_ms, strict=True)):
        ax.scatter([p / 1e6], [t], s=60, color=PALETTE[i % len(PALETTE)], zorder=3)
        ax.annotate(n, (p / 1e6, t), xytext=(5, 4), textcoords="offset points", fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis, values in ((ax.xaxis, [p / 1e6 for p in params]), (ax.yaxis, list(median_ms))):
        axis.set_major_formatter(_log_labels(values))
        axis.set_minor_formatter(_log_labels(values))
    ax.set_xlabel("parameters (millions, log)")
    ax.set_ylabel("median latency (ms, log)")
    ax.grid(True, which="both", alpha=0.3)
    ax.margins(0.2)
    ax.set_title("Parameters vs latency")
    return _png(fig)


def breakdown_chart(names: Sequence[str], shares: Sequence[dict[str, float]], title: str, xlabel: str) -> bytes:
    """Stacked horizontal bars (0-100 %): each model's time or FLOPs split by component."""
    labels: list[str] = []
    for s in shares:
        labels += [k for k in s if k not in labels]
    ax = _bars(names, title, xlabel, width=8.0, extra=0.6)
    left = [0.0] * len(names)
    for j, label in enumerate(labels):
        vals = [100 * s.get(label, 0.0) for s in shares]
        ax.barh(range(len(names)), vals, left=left, color=PALETTE[j % len(PALETTE)], label=label)
        for i, v in enumerate(vals):
            if v >= 7:
                ax.text(left[i] + v / 2, i, f"{v:.0f}%", ha="center", va="center", fontsize=7, color="white")
        left = [a + b for a, b in zip(left, vals, strict=True)]
    ax.set_xlim(0, 100)
    ax.legend(ncol=min(4, len(labels)), fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    return _png(ax.figure)


def activation_chart(
    title: str,
    mins: Sequence[float | None],
    maxs: Sequence[float | None],
    stds: Sequence[float | None],
    components: Sequence[str] | None = None,
) -> bytes:
    """Value range (min..max band) and std of each recorded layer in execution order (symlog scale)."""
    x = list(range(len(mins)))
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8.0, 5.2), sharex=True)
    lo = [_num(v) for v in mins]
    hi = [_num(v) for v in maxs]
    ax1.fill_between(x, lo, hi, color=PALETTE[0], alpha=0.35, step="mid", label="min..max")
    ax1.plot(x, lo, color=PALETTE[0], lw=0.8)
    ax1.plot(x, hi, color=PALETTE[0], lw=0.8)
    lt = _linthresh(lo + hi)
    ax1.set_yscale("symlog", linthresh=lt)
    top = max((abs(v) for v in lo + hi if math.isfinite(v)), default=1.0)
    ax1.yaxis.set_major_locator(FixedLocator(_symlog_ticks(lt, top)))
    ax1.yaxis.set_minor_locator(NullLocator())
    ax1.set_ylabel("value range")
    ax2.plot(x, [_num(v) for v in stds], color=PALETTE[1], lw=1.2, marker="." if len(x) < 80 else None)
    ax2.set_yscale("log")
    ax2.set_ylabel("std")
    ax2.set_xlabel("recorded layer (execution order)")
    if components:
        _shade_components(ax1, components)
        _shade_components(ax2, components, label=False)
    ax1.set_title(title, pad=16 if components else 6)
    return _png(fig)


def _symlog_ticks(linthresh: float, top: float) -> list[float]:
    """0 and at most three decades a side, the first one decade above the linear zone: labels never overlap."""
    first = math.floor(math.log10(linthresh)) + 1
    last = math.floor(math.log10(top)) if top > 0 else first
    if last < first:
        return [0.0]
    step = max(1, math.ceil((last - first + 1) / 3))
    ticks = [10.0**k for k in range(last, first - 1, -step)]
    return sorted([-t for t in ticks] + [0.0] + ticks)


def _linthresh(values: Sequence[float]) -> float:
    """Linear zone of the symlog axis: the 10th percentile of the non-zero magnitudes, so tiny ranges stay visible."""
    mags = sorted(abs(v) for v in values if math.isfinite(v) and v != 0)
    return mags[len(mags) // 10] if mags else 1.0


def _shade_components(ax: plt.Axes, components: Sequence[str], label: bool = True) -> None:
    """Alternate light bands per architecture component, labelled once at the top."""
    start = 0
    spans = []
    for i in range(1, len(components) + 1):
        if i == len(components) or components[i] != components[start]:
            spans.append((start, i - 1, components[start]))
            start = i
    for k, (a, b, name) in enumerate(spans):
        if k % 2:
            ax.axvspan(a - 0.5, b + 0.5, color="#000000", alpha=0.05, lw=0)
        if label:
            ax.text((a + b) / 2, 1.01, name, transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=7)


def _num(v: float | None) -> float:
    return float("nan") if v is None or not math.isfinite(v) else float(v)


def _wide(values: Sequence[float]) -> bool:
    pos = [v for v in values if v and v > 0]
    return len(pos) > 1 and max(pos) / min(pos) > 50
