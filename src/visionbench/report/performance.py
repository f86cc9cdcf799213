"""Utilisation against the device's peaks, and the variants (the fast path) with their accuracy cost.

A model whose FLOPs per weight byte fall below the device's ridge point (measured matmul FLOP/s / copy
bytes/s) is memory-bound: its low utilisation is the memory's limit, not slow arithmetic.
"""

from __future__ import annotations

from visionbench.measure.peak import arithmetic_intensity, memory_bound, ridge_point
from visionbench.report import fmt
from visionbench.report.document import Block, Heading, Note, Table, Text
from visionbench.report.runview import RunView

ACCURACY = {"mean_rel": "mean rel", "max_rel": "max rel", "abs_rel": "AbsRel", "box_match_iou90": "boxes @IoU0.9",
            "mask_iou": "mask IoU"}  # fmt: skip
SHARES = {"box_match_iou90", "mask_iou"}  # shown as percentages; the rest are relative errors


def utilisation_blocks(view: RunView) -> list[Block]:
    """Per model and batch size: achieved TFLOP/s, its share of the measured and datasheet peaks, the roofline flag."""
    rows = []
    for m in (mv.result for mv in view.models):
        peak = m.peak
        for b in m.batches:
            if b.status != "ok" or b.achieved_flops_per_s is None:
                continue
            bound = memory_bound(b.flops, m.weights_bytes, peak)
            rows.append([
                m.name, str(b.batch_size), m.dtype, fmt.tflops(b.achieved_flops_per_s),
                fmt.tflops(peak.best_flops_per_s if peak else None), fmt.pct(b.utilisation),
                fmt.tflops(peak.datasheet_flops_per_s if peak else None), fmt.pct(b.utilisation_datasheet),
                fmt.num(arithmetic_intensity(b.flops, m.weights_bytes), 1), fmt.num(ridge_point(peak), 1),
                "-" if bound is None else "memory-bound" if bound else "compute-bound",
            ])  # fmt: skip
    if not rows:
        return []
    peaks = {f"{p.device} ({p.dtype})": p for p in (mv.result.peak for mv in view.models) if p is not None}
    probe = "; ".join(
        f"{k}: {p.matmul_size}x{p.matmul_size} matmul {fmt.tflops(p.matmul_flops_per_s)} TFLOP/s over "
        f"{p.matmul_samples} runs"
        + (f" ({fmt.tflops(p.matmul_after_flops_per_s)} after)" if p.matmul_after_flops_per_s else "")
        + f", copy {fmt.num((p.copy_bytes_per_s or 0) / 1e9, 1)} GB/s"
        + (f", datasheet {p.datasheet_name} {fmt.tflops(p.datasheet_flops_per_s)} TFLOP/s" if p.datasheet_name else "")
        for k, p in peaks.items()
    )
    headers = ["model", "batch", "dtype", "TFLOP/s", "measured peak", "of measured", "datasheet peak",
               "of datasheet", "FLOP/B", "ridge FLOP/B", "roofline"]  # fmt: skip
    return [
        Heading(2, "Utilisation against the device's peak"),
        Text(
            "Achieved FLOP/s (FLOPs of one forward / median model latency) against the matmul peak each worker "
            "measured before loading its model and again after its loops (the better of the two: a shared machine's "
            "speed drifts), and the vendor's dense datasheet peak where the device is known. "
            "FLOP/B counts the weights as the bytes moved (a lower bound on traffic): below the ridge point "
            "(measured matmul FLOP/s / copy bytes/s) a model is memory-bound, and its low utilisation is the "
            f"memory's limit, not slow arithmetic. Probes: {probe or 'none recorded'}."
        ),
        Table(headers, rows),
    ]


def _accuracy(acc: dict[str, float | None]) -> str:
    parts = [f"{label} " + ("n/a" if (v := acc[key]) is None else fmt.pct(v, 2) if key in SHARES else f"{v:.2e}")
             for key, label in ACCURACY.items() if key in acc]  # fmt: skip
    return ", ".join(parts) or "-"


def optimisation_blocks(view: RunView) -> list[Block]:
    """Each variant's speed-up and accuracy cost against the run's own figure; what did not apply and why."""
    rows, missing = [], []
    for mv in view.models:
        for v in mv.result.variants:
            if v.status == "ok" and v.latency is not None:
                rows.append([mv.name, v.name, ", ".join(v.applied) or "-", fmt.ms(v.baseline_ms),
                             fmt.ms(v.latency.median_ms), fmt.ratio(v.speedup), _accuracy(v.accuracy),
                             str(v.latency.count)])  # fmt: skip
            else:
                missing.append(f"{mv.name} {v.name}: {v.status.replace('_', ' ')}: {v.reason or '-'}")
    if not rows and not missing:
        return []
    blocks: list[Block] = [
        Heading(2, "Optimisations, measured with their accuracy cost"),
        Text(
            "Each variant timed in the model's own worker after its main measurement, on the same input: speed-up "
            "= main median / variant median; accuracy against the main outputs (depth: mean and max difference "
            "relative to the map's scale, AbsRel; detection: share of boxes matched at IoU 0.9, same class; "
            "masks: IoU). With random weights the accuracy cost is that of random outputs."
        ),  # fmt: skip
    ]
    if rows:
        blocks.append(Table(["model", "variant", "applied", "main", "variant", "speed-up", "accuracy cost",
                             "samples"], rows))  # fmt: skip
    if missing:
        blocks.append(Note("info", "Not measured: " + "; ".join(missing) + "."))
    return blocks
