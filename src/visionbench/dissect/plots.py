"""Summary plots (matplotlib, Agg): value range and std of every recorded layer in execution order, and
per-component totals. Drawn once after the pass, so matplotlib's cost does not grow with the layer count
the way per-layer pictures would (those use numpy + Pillow, see pictures.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from visionbench.dissect.records import LayerRecord


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def summary_plot(records: list[LayerRecord], path: Path, title: str) -> Path | None:
    """Top: min..max band and mean per recorded tensor; bottom: std (log scale); components shaded."""
    rows = [r for r in records if r.kind == "tensor" and r.min is not None]
    if not rows:
        return None
    plt = _plt()
    x = list(range(len(rows)))
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(max(8, min(24, len(rows) / 12)), 6.5), sharex=True)
    ax1.fill_between(x, [r.min for r in rows], [r.max for r in rows], alpha=0.3, label="min..max", step="mid")
    ax1.plot(x, [r.mean for r in rows], lw=0.9, label="mean")
    ax1.set_yscale("symlog", linthresh=1.0)
    ax1.set_ylabel("value (symlog)")
    ax1.legend(loc="upper left", fontsize=8)
    ax2.plot(x, [max(r.std or 0.0, 1e-12) for r in rows], lw=0.9, color="C2")
    ax2.set_yscale("log")
    ax2.set_ylabel("std")
    ax2.set_xlabel("recorded output, in execution order")
    start, band = 0, 0
    for i in range(1, len(rows) + 1):  # shade every other run of one component
        if i == len(rows) or rows[i].component != rows[start].component:
            if band % 2:
                for ax in (ax1, ax2):
                    ax.axvspan(start - 0.5, i - 0.5, alpha=0.07, color="k", lw=0)
            band += 1
            if i - start >= len(rows) / 40:  # label runs wide enough to read
                ax2.text((start + i - 1) / 2, 1.0, rows[start].component, transform=ax2.get_xaxis_transform(),
                         ha="center", va="bottom", fontsize=7)  # fmt: skip
            start = i
    fig.suptitle(f"{title}: activation range and std per layer ({len(rows)} outputs)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def component_plot(components: dict[str, dict[str, Any]], path: Path, title: str) -> Path | None:
    """Bars per component: parameters, recorded output elements, fraction of zeros."""
    if not components:
        return None
    plt = _plt()
    labels = list(components)
    panels = [
        ("parameters", [components[k]["params"] for k in labels]),
        ("recorded output elements", [components[k]["output_elements"] for k in labels]),
        ("fraction of exact zeros", [components[k]["zeros_fraction"] or 0.0 for k in labels]),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, (name, values) in zip(axes, panels, strict=True):
        ax.bar(labels, values, color="C0")
        ax.set_title(name, fontsize=10)
        ax.tick_params(axis="x", rotation=30, labelsize=8)
    fig.suptitle(f"{title}: per-component totals")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def drift_plot(rows: list[dict[str, Any]], path: Path, title: str, first_jump: int | None) -> Path | None:
    """Relative error of each selected layer (log scale) in execution order; overflow marked in red."""
    if not rows:
        return None
    plt = _plt()
    x = list(range(len(rows)))
    err = [max(r["relative_error"] or 0.0, 1e-9) if r["relative_error"] is not None else float("nan") for r in rows]
    fig, ax = plt.subplots(figsize=(max(8, min(24, len(rows) / 12)), 4))
    ax.plot(x, err, lw=0.9, marker=".", ms=3, label="relative error ||low - fp32|| / ||fp32||")
    bad = [i for i, r in enumerate(rows) if r["overflow"] or r["nonfinite"]]
    if bad:
        ax.scatter(
            bad, [err[i] if err[i] == err[i] else 1.0 for i in bad], color="red", zorder=3, label="overflow / NaN / Inf"
        )
    if first_jump is not None:
        ax.axvline(first_jump, color="C3", ls="--", lw=1, label=f"first jump: {rows[first_jump]['name']}")
    ax.set_yscale("log")
    ax.set_xlabel("selected layer output, in execution order")
    ax.set_ylabel("relative error")
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
