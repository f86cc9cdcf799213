"""Report sections over the run's figures: summary, charts, baseline comparison, variants, outputs, suitability.

Ranks, ratios, efficiency, cost and suitability verdicts come from `report.analysis` (shared with
the benchmark's report.md and the terminal), so every medium states the same figures.
"""

from __future__ import annotations

import statistics

from visionbench.report import analysis as an
from visionbench.report import fmt, plots
from visionbench.report.document import Block, Bullets, Figure, Gallery, Heading, Note, Table, Text
from visionbench.report.runview import ModelView, RunView
from visionbench.results import ModelResult

SUMMARY_HEADERS = [
    "model", "task", "speed rank", "mean ± std (ms)", "median (ms)", "FPS", "peak memory (MiB)", "memory rank",
    "load (s)", "params", "GFLOP", "layers dissected", "input → output", "weights",
]  # fmt: skip


def summary_blocks(view: RunView) -> list[Block]:
    run = view.run
    speed, mem = an.speed_ranks(run), an.memory_ranks(run)
    rows = []
    for m in view.models:
        r = m.result
        if not m.ok:
            task = m.task if m.task != "?" else fmt.MISSING
            rows.append([m.name, task, fmt.MISSING, r.status.upper(), *[fmt.MISSING] * 10])
            continue
        lat = an.model_latency(r)
        assert lat is not None and m.primary is not None
        rows.append([
            m.name, m.task, str(speed.get(m.name) or fmt.MISSING), fmt.mean_std(lat.mean_ms, lat.std_ms),
            fmt.ms(lat.median_ms), fmt.num(lat.fps), fmt.mib(an.peak_bytes(r)), str(mem.get(m.name) or fmt.MISSING),
            fmt.num(r.load_time_s), fmt.count(r.params), fmt.gflop(m.primary.flops), layers_dissected(m),
            resolution(r), r.weights.mode if r.weights else fmt.MISSING,
        ])  # fmt: skip
    bs = min(run.config.batch_sizes)
    caption = (
        f"Batch size {bs}; model latency = one forward on prepared tensors after warmup; ranks: 1 = fastest / least "
        "memory among the models measured. Peak memory: "
        + ("CUDA allocator peak." if run.environment.device.startswith("cuda") else "process RSS above its baseline.")
    )
    blocks: list[Block] = [Heading(2, "Executive summary"), Table(SUMMARY_HEADERS, rows, caption=caption)]
    blocks.append(Bullets(findings(view)))
    return blocks


def layers_dissected(m: ModelView) -> str:
    d = m.dissection
    if d is None:
        return fmt.MISSING
    return "failed" if d.error else str(len(d.tensors))


def resolution(r: ModelResult) -> str:
    """Model input size against the output's resolution (the first image's output)."""
    s = r.output_summary[0] if r.output_summary else {}
    out = f"{s['width']}x{s['height']}" if "width" in s and "height" in s else "image coordinates" if s else fmt.MISSING
    return f"{r.input_size} px → {out}" if r.input_size else out


def findings(view: RunView) -> list[str]:
    """Headline sentences, each computed from the figures."""
    models = [m.result for m in view.ok_models if an.model_latency(m.result)]
    out: list[str] = []
    if not models:
        return ["No model was measured successfully; see Failures."]
    fast = min(models, key=lambda m: an.model_latency(m).median_ms)  # type: ignore[union-attr]
    slow = max(models, key=lambda m: an.model_latency(m).median_ms)  # type: ignore[union-attr]
    fl, sl = an.model_latency(fast), an.model_latency(slow)
    assert fl and sl
    out.append(f"Fastest: {fast.name}, median {fmt.ms(fl.median_ms)} ms ({fl.fps:.1f} FPS).")
    if slow is not fast:
        out.append(
            f"Slowest: {slow.name}, median {fmt.ms(sl.median_ms)} ms, {sl.median_ms / fl.median_ms:,.1f}x the fastest."
        )
    mem = [m for m in models if an.peak_bytes(m) is not None]
    if len(mem) > 1:
        hi = max(mem, key=lambda m: an.peak_bytes(m) or 0)
        lo = min(mem, key=lambda m: an.peak_bytes(m) or 0)
        out.append(f"Memory: {hi.name} peaks highest ({fmt.mib(an.peak_bytes(hi))} MiB), {lo.name} lowest "
                   f"({fmt.mib(an.peak_bytes(lo))} MiB).")  # fmt: skip
    if view.failed_models:
        out.append(f"{len(view.failed_models)} model(s) failed and are listed under Failures: "
                   + ", ".join(f"{m.name} ({m.result.status})" for m in view.failed_models) + ".")  # fmt: skip
    return out


def chart_blocks(view: RunView) -> list[Block]:
    models = [m.result for m in view.ok_models if an.model_latency(m.result)]
    if not models:
        return []
    names = [m.name for m in models]
    lats = [an.model_latency(m) for m in models]
    blocks: list[Figure] = []
    blocks.append(Figure("latency.png", plots.latency_chart(names, [s.mean_ms for s in lats], [s.std_ms for s in lats]),
                         "Model latency, mean ± std over the timed samples (batch size of the summary)"))  # fmt: skip
    peaks = [an.peak_bytes(m) for m in models]
    if any(p is not None for p in peaks):
        after = [(m.primary.memory.after_load_bytes if m.primary and m.primary.memory else None) for m in models]
        blocks.append(Figure("memory.png", plots.memory_chart(names, peaks, after),
                             "Peak memory while running and memory held after loading"))  # fmt: skip
    with_params = [(m, s) for m, s in zip(models, lats, strict=True) if m.params]
    if len(with_params) > 1:
        png = plots.params_vs_latency_chart([m.name for m, _ in with_params], [m.params for m, _ in with_params],
                                            [s.median_ms for _, s in with_params])  # fmt: skip
        blocks.append(Figure("params-latency.png", png, "Parameters against median latency, log-log"))
    return [Heading(2, "Charts"), Gallery(blocks, wide=True)]


def baseline_blocks(view: RunView) -> list[Block]:
    run = view.run
    base, how = an.pick_baseline(run)
    if base is None:
        return []
    rows = []
    for m in view.ok_models:
        r = m.result
        ratio = an.ratios(run, base).get(r.name)
        best = an.best_throughput(r)
        rows.append([
            r.name, fmt.ratio(ratio.speedup if ratio else None), fmt.ratio(ratio.memory_factor if ratio else None),
            fmt.num(an.fps_per_mparam(r), 3), f"{fmt.num(best[0])} (batch {best[1]})" if best else fmt.MISSING,
            fmt.num(an.cost_per_1000_s(r), 1), fmt.num(an.cost_per_1000_s(r, "end_to_end"), 1),
        ])  # fmt: skip
    headers = ["model", "speed vs baseline", "memory vs baseline", "FPS per M params", "best images/s",
               "1000 images, model (s)", "1000 images, end to end (s)"]  # fmt: skip
    return [
        Heading(2, f"Against the baseline ({base.name})"),
        Text(
            how.capitalize() + ". Speed: baseline median / model median (above 1x: faster than the baseline); "
            "memory: baseline peak / model peak (above 1x: less memory). Cost: device-seconds for 1000 images at the "
            "best measured throughput."
        ),  # fmt: skip
        Table(headers, rows),
    ]


def variant_blocks(view: RunView) -> list[Block]:
    """Batch sizes, end-to-end phases and size variants of one architecture, when the run has them."""
    run = view.run
    blocks: list[Block] = []
    if len(run.config.batch_sizes) > 1:
        rows = []
        for m in view.models:
            for b in m.result.batches:
                s = b.model_latency
                rows.append([m.name, str(b.batch_size), b.status, fmt.ms(s.median_ms) if s else fmt.MISSING,
                             fmt.num(s.throughput_images_per_s) if s else fmt.MISSING,
                             fmt.mib(b.memory.peak_bytes if b.memory else None)])  # fmt: skip
        limits = [f"{m.name} ran out of memory at batch {m.result.oom_batch_size}" for m in view.models
                  if m.result.oom_batch_size]  # fmt: skip
        blocks += [Heading(3, "Batch sizes"),
                   Text(("Limits: " + "; ".join(limits) + ".") if limits else "No batch size ran out of memory."),
                   Table(["model", "batch", "status", "median (ms)", "images/s", "peak memory (MiB)"],
                         rows)]  # fmt: skip
    families: dict[str, list[ModelResult]] = {}
    for m in view.ok_models:
        families.setdefault(str(m.result.card.get("architecture", m.name)), []).append(m.result)
    for arch, members in families.items():
        if len(members) < 2:
            continue
        members.sort(key=lambda r: r.params or 0)
        small, small_lat = members[0], an.model_latency(members[0])
        rows = []
        for r in members:
            lat = an.model_latency(r)
            rows.append([r.name, fmt.count(r.params),
                         fmt.ratio((r.params or 0) / small.params if small.params else None),
                         fmt.ms(lat.median_ms if lat else None),
                         fmt.ratio(lat.median_ms / small_lat.median_ms if lat and small_lat else None),
                         fmt.mib(an.peak_bytes(r)), f"{r.input_size} px"])  # fmt: skip
        blocks += [Heading(3, f"Variants of {arch}"),
                   Table(["model", "params", "params vs smallest", "median (ms)", "time vs smallest", "peak (MiB)",
                          "input"], rows)]  # fmt: skip
    rows = []
    for m in view.ok_models:
        e = an.e2e_latency(m.result)
        if e is None or not e.phases_ms:
            continue
        med = {k: statistics.median(v) for k, v in e.phases_ms.items() if v}
        total = sum(med.values()) or 1.0
        rows.append([m.name] + [f"{fmt.ms(med.get(k))} ({fmt.pct(med.get(k, 0) / total, 0)})"
                                for k in ("decode", "preprocess", "forward", "postprocess")])  # fmt: skip
    if rows:
        blocks += [Heading(3, "Where end-to-end time goes"),
                   Table(["model", "decode (ms)", "preprocess (ms)", "forward (ms)", "postprocess (ms)"], rows,
                         caption="Median of each phase over the end-to-end samples (share of their sum).")]  # fmt: skip
    return [Heading(2, "Variants"), *blocks] if blocks else []


def output_blocks(view: RunView) -> list[Block]:
    depth_rows, det_rows = [], []
    random = []
    for m in view.ok_models:
        r = m.result
        if r.weights and r.weights.mode == "random" and r.output_summary:
            random.append(r.name)
        for i, s in enumerate(r.output_summary):
            image = r.images[i].rsplit("/", 1)[-1] if i < len(r.images) else f"image {i + 1}"
            if s.get("depth_min") is not None:
                depth_rows.append([r.name, image, str(s.get("depth_kind")), fmt.sci(s.get("depth_min")),
                                   fmt.sci(s.get("depth_max")), fmt.sci(s.get("depth_mean")),
                                   fmt.sci(s.get("depth_median")), fmt.sci(s.get("depth_std")),
                                   fmt.num(s.get("fov_deg"), 1), fmt.num(s.get("focal_px"), 1),
                                   f"{s['width']}x{s['height']}", f"{r.input_size} px"])  # fmt: skip
            elif "detections" in s:
                keypoints = str(s.get("instances_with_keypoints", fmt.MISSING))
                det_rows.append([r.name, image, str(s["detections"]), str(s.get("masks", fmt.MISSING)), keypoints,
                                 f"{r.input_size} px"])  # fmt: skip
    if not depth_rows and not det_rows:
        return []
    blocks: list[Block] = [Heading(2, "Output analysis")]
    if random:
        blocks.append(Note("warning", f"Random weights for {', '.join(random)}: these outputs show the pipeline "
                                      "works end to end; their values are not the trained model's."))  # fmt: skip
    if depth_rows:
        blocks += [Heading(3, "Depth"), Table(
            ["model", "image", "kind", "min", "max", "mean", "median", "std", "FOV (deg)", "focal (px)",
             "output", "model input"], depth_rows,
            caption="Metric depth in metres; relative-inverse depth has no unit. Outputs are mapped back to each "
                    "image's own resolution.")]  # fmt: skip
    if det_rows:
        blocks += [Heading(3, "Detections"), Table(
            ["model", "image", "detections", "masks", "instances with keypoints", "model input"], det_rows,
            caption="After non-maximum suppression at the library's default thresholds.")]  # fmt: skip
    return blocks


def suitability_blocks(view: RunView) -> list[Block]:
    models = [m.result for m in view.ok_models]
    if not models:
        return []
    verdicts = {m.name: an.suitability(m) for m in models}
    rows = []
    for m in models:
        rows.append([m.name] + [("n/a" if v.passed is None else "yes" if v.passed else "no") + f": {v.note}"
                                for v in verdicts[m.name]])  # fmt: skip
    criteria = [f"{r.name}: {r.figure} < {an._fmt(r.limit, r.unit)} ({r.why})." for r in an.REQUIREMENTS]
    env = view.run.environment
    return [
        Heading(2, "Suitability and recommendations"),
        Text(f"Measured on {env.device} ({view.run.config.dtype}); another device changes every verdict."),
        Table(["model"] + [r.name for r in an.REQUIREMENTS], rows),
        Bullets(criteria),
        Heading(3, "Recommendations"),
        Bullets(recommendations(models, verdicts)),
    ]


def recommendations(models: list[ModelResult], verdicts: dict[str, list[an.Verdict]]) -> list[str]:
    """Per requirement the fastest model that passes (or the closest miss); per task the fastest model."""
    out = []
    for i, req in enumerate(an.REQUIREMENTS):
        scored = [(verdicts[m.name][i], m) for m in models if verdicts[m.name][i].value is not None]
        passing = [(v, m) for v, m in scored if v.passed]
        if passing:
            v, m = min(passing, key=lambda vm: vm[0].value)  # type: ignore[arg-type,return-value]
            out.append(f"{req.name}: {m.name}, {v.note}; {len(passing)} of {len(scored)} models pass.")
        elif scored:
            v, m = min(scored, key=lambda vm: vm[0].value)  # type: ignore[arg-type,return-value]
            out.append(f"{req.name}: no model passes on this device; the closest is {m.name}, {v.note}.")
    tasks: dict[str, list[ModelResult]] = {}
    for m in models:
        tasks.setdefault(str(m.card.get("task", "?")), []).append(m)
    for task, members in tasks.items():
        timed = [m for m in members if an.model_latency(m)]
        if len(timed) > 1:
            best = min(timed, key=lambda m: an.model_latency(m).median_ms)  # type: ignore[union-attr]
            small = min(timed, key=lambda m: an.peak_bytes(m) or float("inf"))
            out.append(f"For {task}: fastest is {best.name} ({fmt.ms(an.model_latency(best).median_ms)} ms), "  # type: ignore[union-attr]
                       f"smallest peak memory is {small.name} ({fmt.mib(an.peak_bytes(small))} MiB).")  # fmt: skip
        elif timed:
            out.append(f"For {task}: {timed[0].name} is the only model measured "
                       f"({fmt.ms(an.model_latency(timed[0]).median_ms)} ms).")  # type: ignore[union-attr]  # fmt: skip
    return out


def failure_blocks(view: RunView) -> list[Block]:
    bad = view.failed_models
    if not bad:
        return []
    rows = [[m.name, m.result.status, m.result.error or "no reason recorded"] for m in bad]
    return [Heading(2, "Failures"), Text("These models did not finish; every other section reports the rest."),
            Table(["model", "status", "reason"], rows, align=["left", "left", "left"])]  # fmt: skip
