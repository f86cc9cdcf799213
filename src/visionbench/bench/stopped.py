"""What a stopped worker leaves: its result.json, patched with what the parent knows (a timeout, a crash, a
kill), and every figure it reported in events.jsonl before it stopped (the result is then marked partial).
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
from pathlib import Path
from typing import Any

from visionbench.bench.events import EventReader
from visionbench.measure.timing import latency_stats
from visionbench.results import MODEL_FILE, BatchResult, ModelResult, WeightsRecord, load_model_result, now_iso

log = logging.getLogger("visionbench")


def collect_result(
    name: str, model_dir: Path, folder: str, code: int | None, status: str | None, reason: str | None
) -> ModelResult:
    """The worker's result.json, patched with what the parent knows (timeout, crash, kill).

    A worker stopped before it finished keeps every figure it reported before it stopped: those in its
    last result.json, and the rest (load time, parameters, FLOPs, timed samples) from events.jsonl.
    """
    path = model_dir / MODEL_FILE
    try:
        result = load_model_result(path) if path.exists() else None
    except ValueError:
        result = None
    if result is None:
        result = ModelResult(name=name, status="failed", folder=folder)
    died = result.status == "interrupted" and result.error == "partial"  # worker stopped between batch sizes
    if status is not None:
        result.status, result.error = status, reason  # type: ignore[assignment]
        _mark_partial(result, model_dir, reason or status)
    elif died or not path.exists():
        crash = _crash_reason(code, model_dir)
        if result.primary is not None:  # batch sizes that finished stay; the next one is the limit
            result.status, result.error = "ok", None
            done = max(b.batch_size for b in result.batches)
            result.oom_batch_size = next((b for b in _batch_sizes(model_dir) if b > done), None)
            log.warning("%s: worker died after batch size %d (%s); recorded as its limit", name, done, crash)
        else:
            result.status, result.error = ("oom" if code == -signal.SIGKILL else "failed"), crash
            _mark_partial(result, model_dir, crash)
    result.finished_at = result.finished_at or now_iso()
    return result


def _mark_partial(result: ModelResult, model_dir: Path, reason: str) -> None:
    """Fill what the worker reported before it stopped; mark the result partial when anything was measured."""
    events = EventReader(model_dir / "events.jsonl").read()
    kept = fill_from_events(result, events)
    if kept:
        result.partial, result.partial_reason = True, reason


def fill_from_events(result: ModelResult, events: list[dict[str, Any]]) -> bool:
    """Copy into `result` what a worker's events report and the result lacks; True if any figure was kept.

    Timed samples of a batch size that did not finish become a BatchResult with the model's status, so
    tables and ranks (which use `ok` batch sizes) never mistake them for a complete measurement.
    """
    kept = False
    samples: dict[tuple[int, str], list[float]] = {}
    flops: dict[int, int] = {}
    for ev in events:
        kind = ev.get("event")
        if kind == "loaded":
            for key in ("load_time_s", "import_time_s", "params", "input_size"):
                if getattr(result, key) is None and ev.get(key) is not None:
                    setattr(result, key, ev[key])
            result.device, result.dtype = result.device or ev.get("device", ""), result.dtype or ev.get("dtype", "")
            if result.weights is None and ev.get("weights") in {"pretrained", "random"}:
                result.weights = WeightsRecord(mode=ev["weights"], source=str(ev.get("source", "")))
            kept = True
        elif kind == "flops" and ev.get("flops"):
            flops[int(ev.get("batch_size", 1))] = int(ev["flops"])
        elif kind == "sample" and isinstance(ev.get("ms"), (int, float)):
            key = (int(ev.get("batch_size", 1)), str(ev.get("loop")))
            samples.setdefault(key, []).append(float(ev["ms"]))
    done = {b.batch_size for b in result.batches}
    for bs in sorted(set(flops) | {k[0] for k in samples}):
        if bs in done:
            continue
        batch = BatchResult(batch_size=bs, status=result.status, error=result.error, flops=flops.get(bs))
        why = f"stopped: {result.error or result.status}"
        for loop, attr, kind in (("model", "model_latency", "model"), ("end-to-end", "e2e_latency", "end_to_end")):
            if samples.get((bs, loop)):
                setattr(batch, attr, latency_stats(samples[(bs, loop)], kind=kind, batch_size=bs, stop_reason=why))
        result.batches.append(batch)
        kept = True
    if result.flops is None and flops:
        bs = min(flops)
        result.flops = flops[bs] // bs
    return kept or bool(result.batches)


def _batch_sizes(model_dir: Path) -> list[int]:
    try:
        return list(json.loads((model_dir / "worker_spec.json").read_text())["config"]["batch_sizes"])
    except (OSError, KeyError, ValueError):
        return []


def _crash_reason(code: int | None, model_dir: Path) -> str:
    tail = ""
    with contextlib.suppress(OSError):
        lines = [ln for ln in (model_dir / "worker.log").read_text(errors="replace").splitlines() if ln.strip()]
        tail = f"; last log line: {lines[-1][:200]}" if lines else ""
    if code is not None and code < 0:
        sig = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        hint = " (killed by the system: most likely out of memory)" if code == -signal.SIGKILL else ""
        return f"worker killed by {sig}{hint}{tail}"
    return f"worker exited with code {code} without a result{tail}"
