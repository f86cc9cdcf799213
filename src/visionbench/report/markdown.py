"""report.md of a run: system, configuration, results with ranks, ratios, efficiency, cost, suitability.

Every sentence is built from the run's figures (report.analysis); nothing is written in advance.
The first lines state the weights mode and the device, because random weights or a shared CPU
change what the figures mean.
"""

from __future__ import annotations

from visionbench.report import analysis as an
from visionbench.report import fmt
from visionbench.results import ModelResult, RunResult

GIB = 1 << 30
MIB = 1 << 20


def render_report(run: RunResult) -> str:
    """The whole report as GitHub-flavoured Markdown."""
    parts = [
        *_header(run),
        *_findings(run),
        *_results(run),
        *_ratios(run),
        *_efficiency(run),
        *_batches(run),
        *_suitability(run),
        *_phases(run),
        *_outputs(run),
        *_failures(run),
        *_system(run),
        *_configuration(run),
        "## How the figures are measured",
        "See docs/methodology.md in the visionbench repository. Model latency: one forward on prepared tensors "
        "under torch.inference_mode after warmup, with a device sync in each timed region (CUDA events on GPU). "
        "End to end: image decode + preprocessing + forward + postprocessing. Every sample is in run.json.",
    ]
    return "\n\n".join(parts).rstrip() + "\n"


def _header(run: RunResult) -> list[str]:
    env = run.environment
    modes = sorted(set(env.weights_modes.values()))
    if not modes:
        weights = "no model finished yet"
    elif modes == ["pretrained"]:
        weights = "pretrained weights"
    else:
        rnd = sorted(n for n, m in env.weights_modes.items() if m == "random")
        weights = f"RANDOM weights for {', '.join(rnd)} (speed, memory and FLOPs are valid; outputs are not)"
    gpu = f", {env.gpus[0].name}" if env.device.startswith("cuda") and env.gpus else ""
    threads = sorted({m.threads for m in run.models if m.threads}) or [env.torch_threads]
    lines = [
        f"# visionbench report {run.run_id}",
        f"**Weights:** {weights}.  \n**Device:** {env.device}{gpu} ({env.cpu_model}, "
        f"{env.cpu_cores_logical} logical cores, {'/'.join(map(str, threads))} torch threads per worker), "
        f"dtype {run.config.dtype}.  \n"
        f"**Status:** {run.status}; {len(an.ok_models(run))} of {len(run.config.models)} models measured"
        + (
            f"; started {run.started_at}, finished {run.finished_at}"
            if run.finished_at
            else f"; started {run.started_at}"
        )
        + ".",
    ]
    if env.load_average and env.cpu_cores_logical and env.load_average[0] > 0.5 * env.cpu_cores_logical:
        lines.append(
            f"> **Note:** the 1-minute load average was {env.load_average[0]:.2f} on {env.cpu_cores_logical} cores "
            "when the run started: other work shared the machine, so latencies are likely inflated."
        )
    if run.config.cuts:
        lines.append("> **Shortened run:** " + "; ".join(run.config.cuts) + ".")
    return lines


def _findings(run: RunResult) -> list[str]:
    """Sentences computed from the figures."""
    models = [m for m in an.ok_models(run) if an.model_latency(m)]
    if not models:
        return ["## Findings", "No model was measured successfully; see Failures."]
    out = []
    fast = min(models, key=lambda m: an.model_latency(m).median_ms)  # type: ignore[union-attr]
    slow = max(models, key=lambda m: an.model_latency(m).median_ms)  # type: ignore[union-attr]
    fl, sl = an.model_latency(fast), an.model_latency(slow)
    assert fl is not None and sl is not None
    out.append(f"- Fastest: **{fast.name}**, median {_ms(fl.median_ms)} a forward ({fl.fps:.1f} FPS).")
    if slow is not fast:
        out.append(
            f"- Slowest: **{slow.name}**, median {_ms(sl.median_ms)} ({sl.median_ms / fl.median_ms:,.1f}x the fastest)."
        )
    with_mem = [m for m in models if an.peak_bytes(m) is not None]
    if with_mem:
        big = max(with_mem, key=lambda m: an.peak_bytes(m) or 0)
        small = min(with_mem, key=lambda m: an.peak_bytes(m) or 0)
        out.append(
            f"- Memory: **{big.name}** peaks highest at {_bytes(an.peak_bytes(big))}; "
            f"**{small.name}** lowest at {_bytes(an.peak_bytes(small))}."
        )
    eff = {m.name: v for m in models if (v := an.fps_per_mparam(m)) is not None}
    if eff:
        best = max(eff, key=eff.__getitem__)
        out.append(f"- Most FPS per million parameters: **{best}** ({eff[best]:.3g} FPS/M).")
    for req in an.REQUIREMENTS:
        passing = [m.name for m in models if next(v for v in an.suitability(m) if v.requirement is req).passed]
        out.append(
            f"- {req.name}: {len(passing)} of {len(models)} models pass on this device"
            + (f" ({', '.join(passing)})." if passing else ".")
        )
    failed = [m for m in run.models if m.status != "ok"]
    if failed:
        out.append(
            f"- {len(failed)} model(s) did not finish: " + ", ".join(f"{m.name} ({m.status})" for m in failed) + "."
        )
    return ["## Findings", "\n".join(out)]


def _results(run: RunResult) -> list[str]:
    speed, mem = an.speed_ranks(run), an.memory_ranks(run)
    head = ["model", "speed rank", "load", "mean ± std", "median", "p90", "FPS", "end to end (median)",
            "peak memory", "memory rank", "params", "FLOPs", "achieved FLOP/s", "samples"]  # fmt: skip
    rows = []
    for m in run.models:
        ml, el = an.model_latency(m), an.e2e_latency(m)
        b = m.primary
        if m.status != "ok" or ml is None or b is None:
            rows.append([m.name, "-", _s(m.load_time_s), f"{m.status}", *["-"] * 10])
            continue
        rows.append([
            f"**{m.name}**" if speed.get(m.name) == 1 else m.name, str(speed.get(m.name) or "-"), _s(m.load_time_s),
            f"{_ms(ml.mean_ms)} ± {_ms(ml.std_ms)}", _ms(ml.median_ms), _ms(ml.p90_ms), f"{ml.fps:.2f}",
            _ms(el.median_ms) if el else "-", _bytes(an.peak_bytes(m)), str(mem.get(m.name) or "-"),
            _count(m.params), _flop(b.flops), _flops_rate(b.achieved_flops_per_s), str(ml.count),
        ])  # fmt: skip
    bs = min(run.config.batch_sizes)
    return [
        "## Results",
        f"Batch size {bs}. Model latency = forward only; ranks: 1 = fastest / least memory. "
        "Peak memory: "
        + ("CUDA allocator peak." if run.environment.device.startswith("cuda") else "process RSS above its baseline."),
        _table(head, rows),
    ]


def _ratios(run: RunResult) -> list[str]:
    base, how = an.pick_baseline(run)
    if base is None:
        return []
    rows = []
    for name, r in an.ratios(run, base).items():
        speed = (
            "-"
            if r.speedup is None
            else (f"{r.speedup:,.2f}x faster" if r.speedup >= 1 else f"{1 / r.speedup:,.2f}x slower")
        )
        memory = "-" if r.memory_factor is None else (
            f"{r.memory_factor:,.2f}x less" if r.memory_factor >= 1 else f"{1 / r.memory_factor:,.2f}x more"
        )  # fmt: skip
        rows.append([name, speed, memory])
    return [
        f"## Against {base.name}",
        how.capitalize() + " (`--baseline`).",
        _table(["model", "speed", "memory"], rows),
    ]


def _efficiency(run: RunResult) -> list[str]:
    rows = []
    for m in an.ok_models(run):
        best = an.best_throughput(m)
        e2e_cost = an.cost_per_1000_s(m, "end_to_end")
        rows.append([
            m.name, _num(an.fps_per_mparam(m)), f"{best[0]:.2f} (batch {best[1]})" if best else "-",
            _dur(an.cost_per_1000_s(m)), _dur(e2e_cost),
        ])  # fmt: skip
    if not rows:
        return []
    return [
        "## Efficiency and cost",
        "FPS per million parameters (batch 1); best images/s over the batch sizes measured; device-seconds for "
        "1000 images at that throughput (model only, and end to end).",
        _table(["model", "FPS per M params", "best images/s", "1000 images (model)", "1000 images (end to end)"], rows),
    ]


def _batches(run: RunResult) -> list[str]:
    if len(run.config.batch_sizes) < 2:
        return []
    rows = []
    for m in run.models:
        for b in m.batches:
            ml = b.model_latency
            mem = b.memory.peak_bytes if b.memory else None
            rows.append([m.name, str(b.batch_size), b.status, _ms(ml.median_ms) if ml else "-",
                         f"{ml.throughput_images_per_s:.2f}" if ml else "-", _bytes(mem)])  # fmt: skip
    limits = [f"{m.name} ran out of memory at batch {m.oom_batch_size}" for m in run.models if m.oom_batch_size]
    text = ("Limits: " + "; ".join(limits) + ".") if limits else "No batch size ran out of memory."
    return ["## Batch sizes", text, _table(["model", "batch", "status", "median", "images/s", "peak memory"], rows)]


def _suitability(run: RunResult) -> list[str]:
    models = an.ok_models(run)
    if not models:
        return []
    head = ["model"] + [r.name for r in an.REQUIREMENTS]
    rows = []
    for m in models:
        cells = [m.name]
        for v in an.suitability(m):
            mark = "n/a" if v.passed is None else ("yes" if v.passed else "no")
            cells.append(f"{mark}: {v.note}")
        rows.append(cells)
    criteria = "; ".join(f"{r.name}: {r.figure} < {an._fmt(r.limit, r.unit)} ({r.why})" for r in an.REQUIREMENTS)
    return [
        "## Suitability on this device",
        f"Measured on {run.environment.device} ({run.config.dtype}); a different device changes every verdict. "
        f"Criteria: {criteria}.",
        _table(head, rows),
    ]


def _phases(run: RunResult) -> list[str]:
    rows = []
    for m in an.ok_models(run):
        e = an.e2e_latency(m)
        if e is None or not e.phases_ms:
            continue
        med = {k: sorted(v)[len(v) // 2] for k, v in e.phases_ms.items() if v}
        total = sum(med.values()) or 1.0
        rows.append(
            [m.name]
            + [
                f"{_ms(med.get(k))} ({med.get(k, 0) / total:.0%})"
                for k in ("decode", "preprocess", "forward", "postprocess")
            ]
        )
    if not rows:
        return []
    return ["## Where end-to-end time goes", "Median of each phase (share of their sum).",
            _table(["model", "decode", "preprocess", "forward", "postprocess"], rows)]  # fmt: skip


def _outputs(run: RunResult) -> list[str]:
    lines = []
    for m in an.ok_models(run):
        for s in m.output_summary[:1]:
            if "depth_min" in s and s.get("depth_min") is not None:
                fov = f", FOV {s['fov_deg']:.1f} deg" if s.get("fov_deg") is not None else ""
                lines.append(f"- {m.name}: {s.get('depth_kind')} depth {s['depth_min']:.3g} to {s['depth_max']:.3g} "
                             f"(median {s['depth_median']:.3g}) at {s['width']}x{s['height']}{fov}")  # fmt: skip
            elif "detections" in s:
                extra = "".join(
                    f", {s[k]} {k.replace('_', ' ')}" for k in ("masks", "instances_with_keypoints") if k in s
                )
                lines.append(f"- {m.name}: {s['detections']} detections{extra}")
        if m.weights and m.weights.mode == "random" and m.output_summary:
            lines[-1] += " (random weights: not meaningful)"
    return ["## Outputs on the first image", "\n".join(lines)] if lines else []


def _failures(run: RunResult) -> list[str]:
    bad = [m for m in run.models if m.status != "ok"]
    if not bad:
        return []
    return ["## Failures", _table(["model", "status", "reason"], [[m.name, m.status, m.error or "-"] for m in bad])]


def _system(run: RunResult) -> list[str]:
    rows = fmt.system_rows(run.environment)
    return ["## System", _table(["", ""], rows)]


def _configuration(run: RunResult) -> list[str]:
    c = run.config
    rows = [[k, str(v)] for k, v in c.model_dump(exclude={"models", "plans", "cuts"}).items()]
    rows.insert(0, ["models", ", ".join(c.models)])
    out = ["## Configuration", _table(["option", "value"], rows)]
    policies = [f"- {m.name}: {m.plan.get('runs')} runs min, budget {m.plan.get('budget_s')} s, "
                f"warmup {m.plan.get('warmup')}"
                + (f", input {m.input_size} px" if m.input_size else "")
                + (f"; stopped: {s.stop_reason}" if (s := an.model_latency(m)) else "")
                for m in run.models if m.plan]  # fmt: skip
    if policies:
        out += ["Repeat policy per model, and why each timed loop stopped:", "\n".join(policies)]
    if run.command:
        out.append(f"Command: `{run.command}`")
    return out


def _table(head: list[str], rows: list[list[str]]) -> str:
    def esc(x: str) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(esc(h) for h in head) + " |",
        "| " + " | ".join([":---"] + ["---:"] * (len(head) - 1)) + " |",
    ]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v / 1000:,.2f} s" if v >= 1000 else f"{v:.3g} ms" if v < 10 else f"{v:,.1f} ms"


def _s(v: float | None) -> str:
    return "-" if v is None else f"{v:,.2f} s"


def _dur(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v / 3600:.2f} h" if v >= 7200 else f"{v / 60:.1f} min" if v >= 120 else f"{v:.1f} s"


def _bytes(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v / GIB:.2f} GiB" if v >= GIB else f"{v / MIB:.1f} MiB"


def _count(v: float | None) -> str:
    return "-" if v is None else f"{v / 1e6:,.2f} M"


def _flop(v: float | None) -> str:
    return "-" if not v else f"{v / 1e12:,.2f} TFLOP" if v >= 1e12 else f"{v / 1e9:,.2f} GFLOP"


def _flops_rate(v: float | None) -> str:
    return "-" if not v else f"{v / 1e12:,.2f} TFLOP/s" if v >= 1e12 else f"{v / 1e9:,.1f} GFLOP/s"


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}"


def model_line(m: ModelResult) -> str:
    """One line for logs: name, status, median."""
    s = an.model_latency(m)
    return f"{m.name}: {m.status}" + (f", median {_ms(s.median_ms)}" if s else f" ({m.error})")
