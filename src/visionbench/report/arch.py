"""Architecture analysis: the measured component breakdown and the dissection's statistics per stage.

Every sentence here is computed from the profile and layers.json figures of the run folder.
"""

from __future__ import annotations

import math
from typing import Any

from visionbench.errors import BadInputError
from visionbench.files import inside
from visionbench.layers_json import LAYERS_FILE, LayerRecord
from visionbench.report import fmt, plots
from visionbench.report.document import Block, Bullets, Figure, Gallery, Heading, Note, Table, Text
from visionbench.report.runview import Dissection, ModelView, RunView
from visionbench.results import OTHER, ProfileResult

MAX_GRIDS = 3  # feature-map grids shown per model
RANDOM_NOTE = (
    "Random weights: component times, FLOPs and parameters are valid; activation statistics and feature maps "
    "below are those of random weights, not the trained model."
)


def architecture_blocks(view: RunView) -> list[Block]:
    models = view.ok_models
    blocks: list[Block] = [Heading(2, "Architecture analysis")]
    profiled = [m for m in models if m.profile is not None]
    if any(m.result.weights and m.result.weights.mode == "random" for m in models):
        blocks.append(Note("info", RANDOM_NOTE))
    if profiled:
        names = [m.name for m in profiled]
        time_png = plots.breakdown_chart(
            names,
            [m.profile.shares() for m in profiled],  # type: ignore[union-attr]
            "Where the forward's time goes (measured)",
            "share of one forward's time (%)",
        )
        flop_shares = [{c.label: c.flop_share for c in m.profile.components if c.flops} for m in profiled]  # type: ignore[union-attr]
        flop_png = plots.breakdown_chart(names, flop_shares, "Where the FLOPs go", "share of one forward's FLOPs (%)")
        blocks.append(Figure("breakdown-time.png", time_png, "Measured time share per component (sync hooks)"))
        blocks.append(Figure("breakdown-flops.png", flop_png, "FLOP share per component (flop_counter)"))
    for m in models:
        blocks.append(Heading(3, m.name))
        blocks += profile_blocks(m) + dissection_blocks(m)
    return blocks


def profile_blocks(m: ModelView) -> list[Block]:
    p = m.profile
    if p is None:
        return [Note("info", f"No component profile in this run; `visionbench profile {m.name}` measures one.")]
    return [profile_table(p), Text(profile_sentence(p))]


def profile_table(p: ProfileResult) -> Table:
    """Time, FLOPs and parameters per component, then the total: the report's and `visionbench profile`'s."""
    rows = [
        [c.label, str(c.calls) if c.calls else fmt.MISSING, fmt.ms(c.time_ms), fmt.pct(c.time_share),
         fmt.gflop(c.flops), fmt.pct(c.flop_share) if p.flops else fmt.MISSING, f"{c.params:,}", fmt.pct(c.param_share)]
        for c in p.components
    ]  # fmt: skip
    rows.append(["total", "", fmt.ms(p.hooked_ms), fmt.pct(sum(c.time_share for c in p.components)),
                 fmt.gflop(p.flops), "", f"{p.params:,}", ""])  # fmt: skip
    caption = (
        f"Measured on {p.device} ({p.dtype}), input {_shape(p.input_shapes)}, {p.runs} runs after {p.warmup} warmup; "
        f"plain forward median {fmt.ms(p.forward_ms)} ms, synchronising hooks cost {p.hook_overhead:+.1%}, "
        f"run-to-run noise (IQR/median) {p.noise:.1%}. Method: {p.method}."
    )
    return Table(["component", "calls", "time (ms)", "time share", "GFLOP", "FLOP share", "parameters", "param share"],
                 rows, caption=caption)  # fmt: skip


def profile_sentence(p: ProfileResult) -> str:
    """The headline of a breakdown: the costliest part, its FLOP share, and whether time follows FLOPs."""
    parts = [c for c in p.components if c.label != OTHER]
    if not parts:
        return "No components."
    top = max(parts, key=lambda c: c.time_ms)
    glue = next((c for c in p.components if c.label == OTHER), None)
    text = f"The {top.label} takes {fmt.pct(top.time_share)} of the time"
    if p.flops:
        text += f" for {fmt.pct(top.flop_share)} of the FLOPs"
        lagging = [c for c in parts if c.flop_share > 0.02 and c.time_share > 2 * c.flop_share]
        if lagging:
            worst = max(lagging, key=lambda c: c.time_share / c.flop_share)
            text += (f"; the {worst.label} spends {worst.time_share / worst.flop_share:.1f}x more time than its FLOP "
                     "share suggests (memory-bound or poorly parallel work)")  # fmt: skip
    text += "."
    if glue is not None:
        text += f" Work outside the components (glue) is {fmt.pct(glue.time_share)}."
    if p.noise > 0.10:
        text += (f" Timing noise was high (IQR {fmt.pct(p.noise, 0)} of the median, a busy machine): treat the "
                 "time shares as rough; FLOP and parameter shares are exact.")  # fmt: skip
    return text


def dissection_blocks(m: ModelView) -> list[Block]:
    d = m.dissection
    if d is None:
        return [Note("info", "Not dissected in this run (`visionbench dissect` or `visionbench run` dissects).")]
    if d.error:
        return [Note("error", f"Dissection failed: {d.error}")]
    records = d.tensors
    if not records:
        return [Note("info", "The dissection recorded no tensor outputs.")]
    blocks: list[Block] = [Table(
        ["stage", "layers", "min", "max", "std first → last", "mean sparsity", "mean near-zero", "NaN", "Inf"],
        stage_rows(records),
        caption=f"{len(records)} recorded outputs from {d.folder.name}/{LAYERS_FILE}, grouped by component "
                "(stage) in execution order.")]  # fmt: skip
    blocks.append(Bullets(dissection_findings(records)))
    blocks.append(Figure(f"activations-{_file(m.name)}.png", plots.activation_chart(
        f"{m.name}: activation range and std by layer", [r.min for r in records], [r.max for r in records],
        [r.std for r in records], [r.component for r in records]),
        f"{m.name}: value range and std of each recorded layer output, execution order"))  # fmt: skip
    grids = feature_grids(d, records, m.name)
    if grids:
        blocks.append(Gallery(grids))
    return blocks


def stage_rows(records: list[LayerRecord]) -> list[list[str]]:
    rows = []
    for stage, recs in _by_stage(records).items():
        stds = [r.std for r in recs if r.std is not None]
        rows.append([
            stage, str(len(recs)), fmt.sci(_min(r.min for r in recs)), fmt.sci(_max(r.max for r in recs)),
            f"{fmt.sci(stds[0])} → {fmt.sci(stds[-1])}" if stds else fmt.MISSING,
            fmt.pct(_mean(r.sparsity for r in recs)), fmt.pct(_mean(r.near_zero for r in recs)),
            str(sum(r.nan_count or 0 for r in recs)), str(sum(r.inf_count or 0 for r in recs)),
        ])  # fmt: skip
    return rows


def dissection_findings(records: list[LayerRecord]) -> list[str]:
    """Facts worth reading: the extreme layer, sparsity, NaN/Inf, and how std evolves through the last stage."""
    out = []
    big = max(records, key=lambda r: max(abs(r.min or 0), abs(r.max or 0)))
    out.append(f"Largest magnitude: {big.name} (range {fmt.sci(big.min)} to {fmt.sci(big.max)}).")
    sparse = max(records, key=lambda r: r.sparsity or 0)
    if (sparse.sparsity or 0) >= 0.001:
        out.append(f"Sparsest output: {sparse.name} ({fmt.pct(sparse.sparsity)} exact zeros).")
    bad = [r for r in records if (r.nan_count or 0) or (r.inf_count or 0)]
    out.append(f"NaN/Inf in {len(bad)} outputs, first at {bad[0].name}." if bad else "No NaN or Inf in any output.")
    last_stage, recs = list(_by_stage(records).items())[-1]
    stds = [r.std for r in recs if r.std]
    if len(stds) >= 2 and stds[0] > 0:
        change = stds[-1] / stds[0]
        out.append(f"Through the {last_stage} the std goes from {fmt.sci(stds[0])} to {fmt.sci(stds[-1])} "
                   f"({change:.3g}x over {len(stds)} layers).")  # fmt: skip
    return out


def feature_grids(d: Dissection, records: list[LayerRecord], model: str) -> list[Figure]:
    """A few channel grids spread over the network: first, middle and last pictured layer, with their captions."""
    pictured = [r for r in records if r.picture]
    if not pictured:
        return []
    out = []
    for i in sorted({0, len(pictured) // 2, len(pictured) - 1})[:MAX_GRIDS]:
        r = pictured[i]
        try:
            png = inside(d.folder, r.picture or "").read_bytes()  # a path outside the run folder is never read
        except (BadInputError, OSError):
            continue
        caption = r.caption or f"{r.name} [{'x'.join(str(s) for s in r.shape or [])}]"
        out.append(Figure(f"grid-{_file(model)}-{r.index}.png", png, caption))
    return out


def _by_stage(records: list[LayerRecord]) -> dict[str, list[LayerRecord]]:
    stages: dict[str, list[LayerRecord]] = {}
    for r in records:
        stages.setdefault(r.component or "other", []).append(r)
    return stages


def _finite(values: Any) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def _min(values: Any) -> float | None:
    v = _finite(values)
    return min(v) if v else None


def _max(values: Any) -> float | None:
    v = _finite(values)
    return max(v) if v else None


def _mean(values: Any) -> float | None:
    v = _finite(values)
    return sum(v) / len(v) if v else None


def _shape(shapes: dict[str, list[int]]) -> str:
    return ", ".join("x".join(str(s) for s in shape) for shape in shapes.values())


def _file(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name)
