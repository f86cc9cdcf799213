"""Architecture analysis: the measured component breakdown and the dissection's statistics stage by stage."""

from __future__ import annotations

from visionbench.errors import BadInputError
from visionbench.files import inside
from visionbench.layers_json import LAYERS_FILE, LayerRecord
from visionbench.report import fmt, plots
from visionbench.report.document import Align, Block, Bullets, Figure, Gallery, Heading, Note, Table, Text
from visionbench.report.runview import Dissection, ModelView, RunView
from visionbench.report.stages import by_stage, dims, fusion_records, highest, lowest, mean_of, stage_tables, substages
from visionbench.results import OTHER, ProfileResult

MAX_GRIDS = 3  # feature-map grids shown per model
RANDOM_NOTE = (
    "Random weights: component times, FLOPs and parameters are valid; activation statistics and feature maps "
    "below are those of random weights, not the trained model."
)


def architecture_blocks(view: RunView) -> list[Block]:
    models = view.ok_models
    blocks: list[Block] = [Heading(2, "Architecture analysis")]
    profiles = {m.name: m.profile for m in models if m.profile is not None}
    if any(m.random for m in models):
        blocks.append(Note("info", RANDOM_NOTE))
    if profiles:
        names = list(profiles)
        title = "Where the forward's time goes (measured)"
        time_png = plots.breakdown_chart(
            names, [p.shares() for p in profiles.values()], title, "share of one forward's time (%)"
        )
        # every label in the time chart's order, so a component has the same colour in both charts
        flop_shares = [{c.label: c.flop_share if c.flops else 0.0 for c in p.components} for p in profiles.values()]
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
    shapes = ", ".join("x".join(map(str, s)) for s in p.input_shapes.values())
    caption = (
        f"Measured on {p.device} ({p.dtype}), input {shapes}, {p.runs} runs after {p.warmup} warmup; "
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
    blocks.append(Figure(f"activations-{_file(m.name)}.png", plots.activation_chart(
        f"{m.name}: activation range and std by layer", [r.min for r in records], [r.max for r in records],
        [r.std for r in records], [r.component for r in records]),
        f"{m.name}: value range and std of each recorded layer output, execution order"))  # fmt: skip
    blocks += stage_tables(m.name, records)
    fusion = fusion_records(records)
    if len(fusion) > 1:
        label_of = {
            id(r): label.rsplit(".", 2)[-1] if label[-1:].isalpha() else ".".join(label.split(".")[-2:])
            for label, group in substages(fusion).items()
            for r in group
        }
        labels = [label_of[id(r)] for r in fusion]
        blocks.append(Figure(f"fusion-{_file(m.name)}.png", plots.activation_chart(
            f"{m.name}: fusion stages, value range and std", [r.min for r in fusion], [r.max for r in fusion],
            [r.std for r in fusion], labels),
            f"{m.name}: value range and std through the fusion stages, layer by layer"))  # fmt: skip
    grids = feature_grids(d, records, m.name)
    if grids:
        blocks += [Heading(4, f"{m.name}: feature maps"), Gallery(grids)]
    return blocks


# A component with more leaf rows than this is summarised one row per block of its block stack.


def transformer_blocks(view: RunView) -> list[Block]:
    """Section: the encoders' captured blocks (first, middle, last) with token shapes, statistics, PCA-RGB maps."""
    models = [m for m in view.ok_models if m.dissection and not m.dissection.error]
    rows, figures = [], []
    for m in models:
        d = m.dissection
        assert d is not None
        for b in d.blocks:
            rows.append([m.name, b.encoder, str(b.block), dims(b.shape), fmt.sci(b.min), fmt.sci(b.max),
                         fmt.sci(b.mean), fmt.sci(b.std), b.shown or fmt.MISSING])  # fmt: skip
        for path in dict.fromkeys(b.figure for b in d.blocks if b.figure):
            try:
                png = inside(d.folder, path).read_bytes()
            except (BadInputError, OSError):
                continue
            encoder = next(b.encoder for b in d.blocks if b.figure == path)
            figures.append(Figure(f"blocks-{_file(m.name)}-{_file(encoder)}.png", png,
                                  f"{m.name}, {encoder}: per block, the tokens' first three principal components as "
                                  "RGB, then the first channels"))  # fmt: skip
    blocks: list[Block] = [Heading(2, "Transformer features")]
    if not rows:
        dissected = [m.name for m in models]
        what = "no model with a transformer encoder was dissected" if dissected else "no model was dissected"
        return blocks + [Text(f"Not measured: {what} in this run (the run's dissection captures the first, "
                              "middle and last block of each transformer encoder).")]  # fmt: skip
    blocks.append(Text("Each transformer encoder's first, middle and last block, captured in the run's one "
                       "dissection pass (no extra forward). Token shape is [images or patches, tokens, channels]; "
                       "statistics over every token of every patch."))  # fmt: skip
    headers = ["model", "encoder", "block", "token shape", "min", "max", "mean", "std", "map shows"]
    align: list[Align] = ["left", "left", "right", "left", "right", "right", "right", "right", "left"]
    return [*blocks, Table(headers, rows, align=align), *figures]


def stage_rows(records: list[LayerRecord]) -> list[list[str]]:
    rows = []
    for stage, recs in by_stage(records).items():
        stds = [r.std for r in recs if r.std is not None]
        rows.append([
            stage, str(len(recs)), fmt.sci(lowest(r.min for r in recs)), fmt.sci(highest(r.max for r in recs)),
            f"{fmt.sci(stds[0])} → {fmt.sci(stds[-1])}" if stds else fmt.MISSING,
            fmt.pct(mean_of(r.sparsity for r in recs)), fmt.pct(mean_of(r.near_zero for r in recs)),
            str(sum(r.nan_count or 0 for r in recs)), str(sum(r.inf_count or 0 for r in recs)),
        ])  # fmt: skip
    return rows


def dissection_findings(records: list[LayerRecord]) -> list[str]:
    """Facts worth reading: the extreme layer overall and per stage, sparsity, NaN/Inf, std through the fusion."""
    out = []
    big = _extreme(records)
    out.append(f"Largest magnitude: {big.name} (range {fmt.sci(big.min)} to {fmt.sci(big.max)}).")
    stages = by_stage(records)
    if len(stages) > 1:
        out.append("Most extreme layer per stage: " + "; ".join(
            f"{stage}: {(e := _extreme(recs)).name} ({fmt.sci(e.min)} to {fmt.sci(e.max)})"
            for stage, recs in stages.items()) + ".")  # fmt: skip
    sparse = sorted((r for r in records if (r.sparsity or 0) >= 0.01), key=lambda r: -(r.sparsity or 0))
    if sparse:
        where = sorted({r.component for r in sparse})
        out.append(f"Sparsity (at least 1 % exact zeros) in {len(sparse)} of {len(records)} layers, in "
                   f"{', '.join(where)}; highest: " + ", ".join(f"{r.name} {fmt.pct(r.sparsity)}" for r in sparse[:3])
                   + ".")  # fmt: skip
    else:
        top = max(records, key=lambda r: r.sparsity or 0)
        out.append(f"No layer has 1 % exact zeros or more (highest: {top.name}, {fmt.pct(top.sparsity)}).")
    bad = [r for r in records if (r.nan_count or 0) or (r.inf_count or 0)]
    out.append(f"NaN/Inf in {len(bad)} outputs, first at {bad[0].name}." if bad else "No NaN or Inf in any output.")
    fusion = fusion_records(records)
    if fusion:
        ends = [(label, g[-1].std) for label, g in substages(fusion).items() if g[-1].std is not None]
        if len(ends) > 1 and ends[0][1]:
            out.append("Std of each fusion stage's last output: " + " → ".join(f"{lab} {fmt.sci(v)}" for lab, v in ends)
                       + f" ({ends[-1][1] / ends[0][1]:.3g}x from first to last).")  # fmt: skip
    else:
        last_stage, recs = list(stages.items())[-1]
        stds = [r.std for r in recs if r.std]
        if len(stds) >= 2 and stds[0] > 0:
            out.append(f"Through the {last_stage} the std goes from {fmt.sci(stds[0])} to {fmt.sci(stds[-1])} "
                       f"({stds[-1] / stds[0]:.3g}x over {len(stds)} layers).")  # fmt: skip
    fov = next((recs for stage, recs in stages.items() if stage.lower() in {"fov", "fov network", "fov_model"}), None)
    if fov:
        stds = [r.std for r in fov if r.std is not None]
        out.append(f"FOV network: {len(fov)} layers, values {fmt.sci(lowest(r.min for r in fov))} to "
                   f"{fmt.sci(highest(r.max for r in fov))}, std {fmt.sci(min(stds))} to {fmt.sci(max(stds))}; "
                   f"its last output {fov[-1].name} {dims(fov[-1].shape)} ranges {fmt.sci(fov[-1].min)} to "
                   f"{fmt.sci(fov[-1].max)}.")  # fmt: skip
    return out


def output_finding(m: ModelView) -> str | None:
    """The output's range and resolution against the input's (the first image)."""
    r, s, d = m.result, m.summary, m.dissection
    size = d.input.get("image_size") if d and d.input else None
    photo = f"{size[1]}x{size[0]} photo" if isinstance(size, list) and len(size) == 2 else "photo"
    if s.get("depth_min") is not None and "width" in s:
        return (
            f"Output: {s.get('depth_kind')} depth {fmt.sci(s.get('depth_min'))} to {fmt.sci(s.get('depth_max'))} "
            f"(median {fmt.sci(s.get('depth_median'))}) at {s['width']}x{s['height']}, from a {photo} run at "
            f"{r.input_size} px" + (f"; FOV {fmt.num(s.get('fov_deg'), 1)} deg." if s.get("fov_deg") else ".")
        )
    if "detections" in s:
        return f"Output: {s['detections']} detections in image coordinates of the {photo}, run at {r.input_size} px."
    return None


def findings_blocks(view: RunView) -> list[Block]:
    """Section: findings from the numbers, per model, each with its measured figure."""
    items: list[Block] = []
    for m in view.ok_models:
        d = m.dissection
        facts = dissection_findings(d.tensors) if d and not d.error and d.tensors else []
        if (line := output_finding(m)) is not None:
            facts.append(line)
        if facts:
            items += [Heading(3, f"Findings: {m.name}"), Bullets(facts)]
    if not items:
        return []
    head: list[Block] = [
        Heading(2, "Findings from the numbers"),
        Text("Only what this run measured, each with its figure (dissection of the run's photo)."),
    ]
    if random := [m.name for m in view.ok_models if m.random]:
        head.append(Note("warning", f"Random weights for {', '.join(random)}: the activation and output "
                                    "figures below describe random weights, and mean nothing about the trained "
                                    "model."))  # fmt: skip
    return head + items


def feature_grids(d: Dissection, records: list[LayerRecord], model: str) -> list[Figure]:
    """A few channel grids spread over the network: first, middle and last pictured layer, with their captions."""
    pictured = [r for r in records if r.picture]
    pictured = [r for r in pictured if min((r.shape or [0])[-2:]) >= 4] or pictured  # a 1x1 map shows nothing
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


def _extreme(records: list[LayerRecord]) -> LayerRecord:
    return max(records, key=lambda r: max(abs(r.min or 0), abs(r.max or 0)))


def _file(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name)
