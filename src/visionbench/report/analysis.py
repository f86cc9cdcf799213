"""Ranks, ratios, efficiency, cost and suitability as pure functions over a run's records: every medium
(report, summary.csv, terminal) calls these, so the figures agree everywhere."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from visionbench.results import BatchResult, LatencyStats, ModelResult, RunResult

MB = 1_000_000


@dataclass(frozen=True)
class Requirement:
    """A named application requirement, checked against one measured figure."""

    key: str
    name: str
    figure: str  # which figure is checked, in words
    limit: float
    unit: str  # "ms", "MB", "s"
    why: str


REQUIREMENTS = [
    Requirement("video30", "Real-time video (30 FPS)", "p90 end-to-end latency, batch 1", 1000 / 30, "ms",
                "9 of 10 frames must be done within one 33.3 ms frame interval"),
    Requirement("ar60", "AR (60 FPS)", "p90 end-to-end latency, batch 1", 1000 / 60, "ms",
                "9 of 10 frames within one 16.7 ms frame interval"),
    Requirement("driving", "Driving (< 50 ms)", "p99 end-to-end latency, batch 1", 50.0, "ms",
                "a safety loop is judged by its tail, not its median"),
    Requirement("mobile_mem", "Mobile memory (< 500 MB)", "peak memory while running", 500.0, "MB",
                "what a phone app can hold in memory"),
    Requirement("mobile_lat", "Mobile latency (< 100 ms)", "median model latency, batch 1", 100.0, "ms",
                "interactive response; measured on this device, not a phone"),
    Requirement("batch1000", "Batch of 1000 images (< 1 h)", "time for 1000 images at the best throughput", 3600.0, "s",
                "an hourly batch job on this one device"),
]  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    requirement: Requirement
    passed: bool | None  # None: not measured
    value: float | None
    note: str  # e.g. "41.2 ms vs < 33.3 ms (1.24x over)"


def ok_models(run: RunResult) -> list[ModelResult]:
    """Models with at least one batch size measured."""
    return [m for m in run.models if m.status == "ok" and m.primary is not None]


def measured_batch(m: ModelResult) -> BatchResult | None:
    """What a table row shows: the primary batch size, else (a stopped model) the first one with any figure."""
    if m.primary is not None:
        return m.primary
    return next((b for b in sorted(m.batches, key=lambda b: b.batch_size) if b.model_latency or b.memory), None)


def model_latency(m: ModelResult) -> LatencyStats | None:
    return m.primary.model_latency if m.primary else None


def e2e_latency(m: ModelResult) -> LatencyStats | None:
    return m.primary.e2e_latency if m.primary else None


def peak_bytes(m: ModelResult) -> int | None:
    """Peak memory of the primary batch size (the one every table shows)."""
    return m.primary.memory.peak_bytes if m.primary and m.primary.memory else None


def ranks(values: dict[str, float | None], lower_is_better: bool = True) -> dict[str, int | None]:
    """1 = best; ties share a rank; missing values get None."""
    present = sorted((v if lower_is_better else -v, k) for k, v in values.items() if v is not None)
    out: dict[str, int | None] = {k: None for k in values}
    prev, rank = None, 0
    for i, (v, k) in enumerate(present):
        if v != prev:
            rank, prev = i + 1, v
        out[k] = rank
    return out


def speed_ranks(run: RunResult) -> dict[str, int | None]:
    return ranks({m.name: (s.median_ms if (s := model_latency(m)) else None) for m in ok_models(run)})


def memory_ranks(run: RunResult) -> dict[str, int | None]:
    return ranks({m.name: (float(p) if (p := peak_bytes(m)) is not None else None) for m in ok_models(run)})


def pick_baseline(run: RunResult, wanted: str | None = None) -> tuple[ModelResult | None, str]:
    """The baseline model and a sentence on how it was chosen (the asked one, else the slowest measured)."""
    wanted = wanted or run.config.baseline
    models = ok_models(run)
    for m in models:
        if m.name == wanted:
            return m, f"baseline: {wanted} (as asked)"
    timed = [m for m in models if model_latency(m) is not None]
    if not timed:
        return None, f"no baseline: {wanted} was not measured and no other model was"
    slowest = max(timed, key=lambda m: model_latency(m).median_ms)  # type: ignore[union-attr]
    return slowest, f"baseline: {slowest.name} (the slowest measured), because {wanted} was not measured in this run"


@dataclass(frozen=True)
class Ratio:
    speedup: float | None  # baseline median / model median: > 1 is faster than the baseline
    memory_factor: float | None  # baseline peak / model peak: > 1 uses less memory


def ratios(run: RunResult, base: ModelResult | None) -> dict[str, Ratio]:
    if base is None:
        return {}
    bl, bp = model_latency(base), peak_bytes(base)
    out = {}
    for m in ok_models(run):
        ml, mp = model_latency(m), peak_bytes(m)
        out[m.name] = Ratio(bl.median_ms / ml.median_ms if bl and ml and ml.median_ms > 0 else None,
                            bp / mp if bp and mp else None)  # fmt: skip
    return out


def fps_per_mparam(m: ModelResult) -> float | None:
    """Parameter efficiency: model FPS (batch 1) per million parameters."""
    s = model_latency(m)
    return s.fps / (m.params / 1e6) if s and m.params else None


def best_throughput(m: ModelResult, kind: str = "model") -> tuple[float, int] | None:
    """Highest images/s over the batch sizes that ran, and that batch size."""
    best: tuple[float, int] | None = None
    for b in m.batches:
        s = b.model_latency if kind == "model" else b.e2e_latency
        if b.status == "ok" and s is not None and (best is None or s.throughput_images_per_s > best[0]):
            best = (s.throughput_images_per_s, b.batch_size)
    return best


def cost_per_1000_s(m: ModelResult, kind: str = "model") -> float | None:
    """Device-seconds to process 1000 images at the best measured throughput."""
    best = best_throughput(m, kind)
    return 1000.0 / best[0] if best and best[0] > 0 else None


def suitability(m: ModelResult) -> list[Verdict]:
    """Each requirement checked against this model's measured figures (end to end where it applies)."""
    e2e, mod, peak = e2e_latency(m), model_latency(m), peak_bytes(m)
    lat = e2e or mod
    values: dict[str, float | None] = {
        "video30": lat.p90_ms if lat else None, "ar60": lat.p90_ms if lat else None,
        "driving": lat.p99_ms if lat else None, "mobile_mem": peak / MB if peak is not None else None,
        "mobile_lat": mod.median_ms if mod else None,
        "batch1000": cost_per_1000_s(m, "end_to_end") or cost_per_1000_s(m, "model"),
    }  # fmt: skip
    out = []
    for req in REQUIREMENTS:
        v = values[req.key]
        if v is None:
            out.append(Verdict(req, None, None, "not measured"))
            continue
        passed = v < req.limit
        factor = v / req.limit
        how = f"{factor:.2f}x the limit" if not passed else f"{1 / factor:.2f}x headroom" if v > 0 else "no time"
        note = f"{quantity(v, req.unit)} vs < {quantity(req.limit, req.unit)} ({how})"
        if e2e is None and req.key in {"video30", "ar60", "driving"}:
            note += "; model latency only (end to end not measured)"
        out.append(Verdict(req, passed, v, note))
    return out


def quantity(v: float, unit: str) -> str:
    """A requirement's figure with its unit: minutes above 2 min, seconds above 1000 ms."""
    if unit == "s" and v >= 120:
        return f"{v / 60:.1f} min"
    return f"{v:,.1f} {unit}" if v < 1000 or unit != "ms" else f"{v / 1000:,.2f} s"


def summary_rows(run: RunResult) -> list[dict[str, Any]]:
    """One flat row per model (and per batch size beyond the first) for summary.csv."""
    rows = []
    for m in run.models:
        for b in m.batches or [None]:
            ml, el, mem = (b.model_latency, b.e2e_latency, b.memory) if b else (None, None, None)
            rows.append({
                "model": m.name, "status": m.status if b is None or b.status == "ok" else b.status,
                "partial": m.partial, "partial_reason": m.partial_reason or "",
                "error": (b.error if b and b.error else m.error) or "",
                "weights": m.weights.mode if m.weights else "", "device": m.device, "dtype": m.dtype,
                "input_size": m.input_size, "batch_size": b.batch_size if b else "",
                "load_time_s": m.load_time_s, "params": m.params, "flops": b.flops if b else m.flops,
                **_fields(ml, ["mean_ms", "std_ms", "median_ms", "p90_ms", "p99_ms", "min_ms", "max_ms"], "model_"),
                "model_samples": ml.count if ml else None, **_fields(ml, ["fps", "throughput_images_per_s"]),
                **_fields(el, ["mean_ms", "median_ms", "p90_ms", "fps"], "e2e_"),
                **_fields(mem, ["peak_bytes", "after_load_bytes"]),
                **_fields(b, ["achieved_flops_per_s", "utilisation", "utilisation_datasheet"]),
                "max_batch_size": m.max_batch_size, "oom_batch_size": m.oom_batch_size,
            })  # fmt: skip
    return rows


def _fields(record: Any, names: list[str], prefix: str = "") -> dict[str, Any]:
    return {prefix + n: getattr(record, n) if record is not None else None for n in names}
