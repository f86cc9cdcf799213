"""The report's sections as blocks, in reading order (`report_blocks`): one set, rendered while a run goes on
and at its end, in Markdown and HTML.

Ranks, ratios, efficiency, cost and suitability verdicts come from `report.analysis` (also behind
summary.csv), so every medium states the same figures.
"""

from __future__ import annotations

import shlex
import statistics

from visionbench.report import analysis as an
from visionbench.report import fmt, plots
from visionbench.report.advice import suitability_blocks
from visionbench.report.arch import architecture_blocks, findings_blocks, transformer_blocks
from visionbench.report.document import Block, Bullets, Figure, Gallery, Heading, Note, Table, Text
from visionbench.report.model_tables import head_to_head_blocks, layers_dissected, memory_blocks, speed_blocks
from visionbench.report.outputs import output_picture_blocks
from visionbench.report.performance import optimisation_blocks, utilisation_blocks
from visionbench.report.runview import ModelView, RunView
from visionbench.results import ModelResult, RunResult


def report_blocks(view: RunView) -> list[Block]:
    """Every section in reading order: the one report, while a run goes on and after it."""
    return [
        *header_blocks(view),
        *summary_blocks(view),
        *failure_blocks(view),
        *chart_blocks(view),
        *architecture_blocks(view),
        *transformer_blocks(view),
        *output_blocks(view),
        *output_picture_blocks(view),
        *memory_blocks(view),
        *speed_blocks(view),
        *head_to_head_blocks(view),
        *baseline_blocks(view),
        *variant_blocks(view),
        *findings_blocks(view),
        *utilisation_blocks(view),
        *optimisation_blocks(view),
        *suitability_blocks(view),
        *reproduce_blocks(view),
        *method_blocks(view),
    ]


def header_blocks(view: RunView) -> list[Block]:
    """Title, then weights mode and device first: they change what every figure means."""
    run, env = view.run, view.run.environment
    blocks: list[Block] = [Heading(1, f"visionbench report {run.run_id}")]
    if random := sorted(m.name for m in view.models if m.random):
        blocks.append(Note("warning", f"RANDOM weights for {', '.join(random)}: timing, memory, FLOPs and "
                                      "structure are valid; outputs and activation statistics are not those of the "
                                      "trained model."))  # fmt: skip
    elif any(m.result.weights for m in view.models):
        blocks.append(Note("info", "Pretrained weights for every model measured."))
    gpu = f", {env.gpus[0].name}" if env.device.startswith("cuda") and env.gpus else ""
    threads = "/".join(map(str, sorted({m.threads for m in run.models if m.threads}) or [env.torch_threads]))
    blocks.append(Text(
        f"Device {env.device}{gpu} ({env.cpu_model}, {env.cpu_cores_logical} logical cores, {threads} torch threads "
        f"per worker), dtype {run.config.dtype}. Run {run.status}: {len(view.ok_models)} of {len(run.config.models)} "
        f"models measured; started {run.started_at}" + (f", finished {run.finished_at}." if run.finished_at else ".")
    ))  # fmt: skip
    measured = any(m.result.contention is not None for m in view.models)
    # the load average at the start is only a hint (it decays over minutes and counts the last run's tail):
    # where each model's own contention was measured, that measurement speaks instead
    loaded = env.load_average and env.cpu_cores_logical and env.load_average[0] > 0.5 * env.cpu_cores_logical
    if loaded and not measured:
        blocks.append(Note("warning", f"The 1-minute load average was {env.load_average[0]:.2f} on "
                                      f"{env.cpu_cores_logical} cores when the run started: other work shared the "
                                      "machine, so latencies are likely inflated."))  # fmt: skip
    if shared := [f"{m.name} ({c.other_cores:.1f} of {c.cores} cores)" for m in view.models
                  if (c := m.result.contention) is not None and c.contended]:  # fmt: skip
        why = f"{', '.join(shared)} busy elsewhere; their latencies are likely inflated"
        blocks.append(Note("warning", f"Other work shared the machine while these models were timed: {why}."))
    if run.config.cuts:
        blocks.append(Note("info", "Shortened run: " + "; ".join(run.config.cuts) + "."))
    blocks += [Note("warning", f"{m.name}: {note}") for m in view.models for note in m.notes]
    return blocks


def status_cell(r: ModelResult) -> str:
    """ok; a failure in capitals; a partial result says what stopped it (its figures stay in the row)."""
    return "ok" if r.status == "ok" else r.status.upper() + (" (partial)" if r.partial else "")


def results_table(run: RunResult) -> Table:
    """Latency and memory of every model, one row each: also the terminal's table (`rich_table`).

    Any figure a model has is shown, also for one that failed or was stopped (a partial result);
    ranks are among the models that finished.
    """
    speed, mem = an.speed_ranks(run), an.memory_ranks(run)
    rows = []
    for r in run.models:
        b = an.measured_batch(r)
        lat, e2e = (b.model_latency, b.e2e_latency) if b else (None, None)
        peak = b.memory.peak_bytes if b and b.memory else None
        rows.append([
            r.name, status_cell(r), str(r.card.get("task") or fmt.MISSING), str(speed.get(r.name) or fmt.MISSING),
            fmt.mean_std(lat.mean_ms, lat.std_ms) if lat else fmt.MISSING, fmt.ms(lat.median_ms if lat else None),
            fmt.ms(lat.p90_ms if lat else None), fmt.num(lat.fps if lat else None),
            fmt.ms(e2e.median_ms if e2e else None), fmt.mib(peak), str(mem.get(r.name) or fmt.MISSING),
            fmt.num(r.load_time_s), r.weights.mode if r.weights else fmt.MISSING,
        ])  # fmt: skip
    headers = ["model", "status", "task", "speed rank", "mean ± std (ms)", "median (ms)", "p90 (ms)", "FPS",
               "end to end median (ms)", "peak memory (MiB)", "memory rank", "load (s)", "weights"]  # fmt: skip
    caption = (
        f"Batch size {min(run.config.batch_sizes)}; model latency = one forward on prepared tensors after warmup; "
        "ranks: 1 = fastest / least memory among the models that finished. Peak memory: "
        + ("CUDA allocator peak." if run.environment.device.startswith("cuda") else "process RSS above its baseline.")
    )
    return Table(headers, rows, caption=caption)


def summary_blocks(view: RunView) -> list[Block]:
    rows = []
    for m in view.models:
        r, b = m.result, an.measured_batch(m.result)
        lat = b.model_latency if b else None
        rows.append([
            r.name, fmt.count(r.params), fmt.gflop(b.flops if b else r.flops),
            fmt.gflop(b.achieved_flops_per_s if b else None), str(lat.count) if lat else fmt.MISSING,
            layers_dissected(m), resolution(m),
        ])  # fmt: skip
    size = Table(["model", "params", "GFLOP", "achieved GFLOP/s", "samples", "layers dissected", "input → output"],
                 rows, caption="FLOPs of one forward (2 per multiply-add) and what they ran at.")  # fmt: skip
    return [Heading(2, "Executive summary"), results_table(view.run), size, Bullets(findings(view))]


def resolution(m: ModelView) -> str:
    """Model input size against the output's resolution (the first image's output)."""
    s = m.summary
    out = f"{s['width']}x{s['height']}" if "width" in s and "height" in s else "image coordinates" if s else fmt.MISSING
    return f"{m.result.input_size} px → {out}" if m.result.input_size else out


def findings(view: RunView) -> list[str]:
    """Headline sentences, each computed from the figures."""
    models = [m.result for m in view.ok_models if an.model_latency(m.result)]
    out: list[str] = []
    if not models:
        out.append("No model was measured successfully; see Failures.")
    else:
        by_speed = sorted(models, key=lambda m: an.model_latency(m).median_ms)
        fast, slow = by_speed[0], by_speed[-1]
        fl, sl = an.model_latency(fast), an.model_latency(slow)
        assert fl and sl
        out.append(f"Fastest: {fast.name}, median {fmt.ms(fl.median_ms)} ms ({fl.fps:.1f} FPS).")
        if slow is not fast:
            out.append(f"Slowest: {slow.name}, median {fmt.ms(sl.median_ms)} ms, "
                       f"{sl.median_ms / fl.median_ms:,.1f}x the fastest.")  # fmt: skip
        mem = sorted((m for m in models if an.peak_bytes(m) is not None), key=lambda m: an.peak_bytes(m) or 0)
        if len(mem) > 1:
            out.append(f"Memory: {mem[-1].name} peaks highest ({fmt.mib(an.peak_bytes(mem[-1]))} MiB), "
                       f"{mem[0].name} lowest ({fmt.mib(an.peak_bytes(mem[0]))} MiB).")  # fmt: skip
        eff = {m.name: v for m in models if (v := an.fps_per_mparam(m)) is not None}
        if eff:
            best = max(eff, key=eff.__getitem__)
            out.append(f"Most FPS per million parameters: {best} ({eff[best]:.3g} FPS/M).")
        for i, req in enumerate(an.REQUIREMENTS):
            passing = [m.name for m in models if an.suitability(m)[i].passed]
            out.append(f"{req.name}: {len(passing)} of {len(models)} models pass on this device"
                       + (f" ({', '.join(passing)})." if passing else "."))  # fmt: skip
    if view.failed_models:
        out.append(f"{len(view.failed_models)} model(s) did not finish and are listed under Failures: "
                   + ", ".join(f"{m.name} ({status_cell(m.result)})" for m in view.failed_models) + ".")  # fmt: skip
    return out


def chart_blocks(view: RunView) -> list[Block]:
    models = [m.result for m in view.ok_models if an.model_latency(m.result)]
    if not models:
        return []
    names = [m.name for m in models]
    lats = {m.name: an.model_latency(m) for m in models}
    png = plots.latency_chart(names, [s.mean_ms for s in lats.values()], [s.std_ms for s in lats.values()])
    blocks = [
        Figure("latency.png", png, "Model latency, mean ± std over the timed samples (batch size of the summary)")
    ]
    peaks = [an.peak_bytes(m) for m in models]
    if any(p is not None for p in peaks):
        after = [(p.memory.after_load_bytes if (p := m.primary) and p.memory else None) for m in models]
        blocks.append(Figure("memory.png", plots.memory_chart(names, peaks, after),
                             "Peak memory while running and memory held after loading"))  # fmt: skip
    if len(sized := [m for m in models if m.params]) > 1:
        png = plots.params_vs_latency_chart([m.name for m in sized], [m.params for m in sized],
                                            [lats[m.name].median_ms for m in sized])  # fmt: skip
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
        if m.random and r.output_summary:
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


def failure_blocks(view: RunView) -> list[Block]:
    bad = view.failed_models
    if not bad:
        return []
    rows = [[m.name, m.result.status, m.result.error or "no reason recorded",
             m.result.partial_reason or "figures measured before it stopped are kept" if m.result.partial else "-"]
            for m in bad]  # fmt: skip
    return [Heading(2, "Failures"), Text("These models did not finish; every other section reports the rest."),
            Table(["model", "status", "reason", "partial result"], rows, align=["left"] * 4)]  # fmt: skip


def method_blocks(view: RunView) -> list[Block]:
    run, e = view.run, view.run.environment
    gpus = ", ".join(f"{g.name} ({fmt.mib(g.total_memory_bytes)} MiB, sm {g.capability})" for g in e.gpus)
    system = [
        ["OS", e.os], ["Python", e.python],
        ["CPU", f"{e.cpu_model} ({e.cpu_cores_physical} physical / {e.cpu_cores_logical} logical cores)"],
        ["Memory (MiB)", fmt.mib(e.memory_total_bytes)],
        ["torch threads", f"{e.torch_threads} (inter-op {e.torch_interop_threads})"], ["Device", e.device],
        ["GPU", gpus or "none"],
        ["GPU driver / CUDA / cuDNN", f"{e.gpu_driver or '-'} / {e.cuda_version or '-'} / {e.cudnn_version or '-'}"],
        ["Versions", ", ".join(f"{k} {v}" for k, v in e.versions.items() if v)],
        ["visionbench revision", e.git_revision or "not a git checkout"], ["Seed", str(e.seed)],
        ["Load average at start", " / ".join(f"{x:.2f}" for x in e.load_average) if e.load_average else "-"],
        ["Worker settings", f"denormals flushed to zero: {'yes' if e.flush_denormal else 'no'}; malloc: {e.malloc}"],
    ]  # fmt: skip
    config = [["models", ", ".join(run.config.models)]]
    config += [[k, str(v)] for k, v in run.config.model_dump(exclude={"models", "plans", "cuts"}).items()]
    policies = [f"{m.name}: {m.plan.get('runs')} runs min, budget {m.plan.get('budget_s')} s, "
                f"warmup {m.plan.get('warmup')}" + (f", input {m.input_size} px" if m.input_size else "")
                + (f"; stopped: {s.stop_reason}" if (s := an.model_latency(m)) else "")
                for m in run.models if m.plan]  # fmt: skip
    memory = next((p.memory.method for m in view.ok_models if (p := m.result.primary) and p.memory), None)
    how = [
        "Model latency: one forward on prepared tensors under torch.inference_mode after warmup, device synchronised "
        "in each timed region; end to end adds image decode, preprocessing and postprocessing. Every sample is in "
        "run.json; docs/methodology.md in the visionbench repository says more.",
        f"Peak memory: {memory}." if memory else "Peak memory: not measured.",
        "FLOPs: torch.utils.flop_counter, 2 FLOPs per multiply-add.",
        "Component times: forward pre/post hooks on each component's root modules with device synchronisation; "
        "the time outside every component is 'other (glue)', so the rows add up to the hooked forward's total.",
        "Ranks, ratios, cost and suitability: visionbench.report.analysis, the functions behind summary.csv.",
    ]
    return [
        Heading(2, "Method and environment"),
        *[Text(t) for t in how],
        Table(["environment", "value"], system, align=["left", "left"]),
        Table(["option", "value"], config, align=["left", "left"]),
        *([Text("Repeat policy per model, and why each timed loop stopped:"), Bullets(policies)] if policies else []),
    ]


def reproduce_blocks(view: RunView) -> list[Block]:
    """The run's own command line, then per model the commands that measure and dissect it alone."""
    run, cfg = view.run, view.run.config
    lines = []
    for r in run.models:
        size = r.input_size or cfg.plan_for(r.name).input_size
        common = [f"--weights {shlex.quote(cfg.weights)}", f"--device {shlex.quote(run.environment.device)}"]
        common += [f"--input-size {size}"] if size else []
        image = [f"--image {shlex.quote(r.images[0])}"] if r.images else []
        lines.append(" ".join(["visionbench bench", shlex.quote(r.name), *common, f"--dtype {cfg.dtype}",
                               f"--batch-sizes {','.join(map(str, cfg.batch_sizes))}"]))  # fmt: skip
        lines.append(" ".join(["visionbench dissect", shlex.quote(r.name), *common, *image]))
    this = f"This run: {run.command}" if run.command else "This run's command line was not recorded."
    blocks: list[Block] = [Heading(2, "Reproduce this run"), Text(this)]
    if lines:
        blocks += [Text("Each model alone (measure, then dissect; the run dissects the first image):"), Bullets(lines)]
    return blocks
