"""Per-model tables of the report: the memory profile, speed statistics, and the depth models head to head."""

from __future__ import annotations

from visionbench.report import analysis as an
from visionbench.report import fmt
from visionbench.report.document import Block, Heading, Table
from visionbench.report.runview import ModelView, RunView
from visionbench.results import ModelResult


def layers_dissected(m: ModelView) -> str:
    d = m.dissection
    if d is None:
        return fmt.MISSING
    return "failed" if d.error else str(len(d.tensors))


def memory_blocks(view: RunView) -> list[Block]:
    """Per model: before load, after load, peak while running, after cleanup, beside the weights' own size."""
    rows = []
    for m in view.models:
        r, b = m.result, an.measured_batch(m.result)
        mem = b.memory if b else None
        if mem is None and r.weights_bytes is None:
            continue
        peak = mem.peak_bytes if mem else None
        w = r.weights_bytes
        rows.append([
            r.name, fmt.mib(mem.baseline_rss_bytes if mem else None), fmt.mib(mem.after_load_bytes if mem else None),
            fmt.mib(peak), fmt.mib(mem.after_cleanup_bytes if mem else None), fmt.mib(w),
            fmt.mib(peak - w if peak is not None and w is not None else None),
            fmt.ratio(peak / w if peak is not None and w else None),
        ])  # fmt: skip
    if not rows:
        return []
    base = (
        "CUDA allocator bytes (before load: the worker's RSS)"
        if view.run.environment.device.startswith("cuda")
        else "process RSS above the before-load baseline (before load: the worker's RSS after imports)"
    )
    headers = ["model", "before load (MiB)", "after load (MiB)", "peak while running (MiB)", "after cleanup (MiB)",
               "weights (MiB)", "peak beyond weights (MiB)", "peak / weights"]  # fmt: skip
    caption = (
        f"Batch size {min(view.run.config.batch_sizes)}; {base}. Weights: the module's parameters and buffers as run. "
        "Peak beyond weights: activations, workspace and allocator slack. '-': not measured (a run of an older schema)."
    )
    return [Heading(2, "Memory profile"), Table(headers, rows, caption=caption)]


def speed_blocks(view: RunView) -> list[Block]:
    """Every timed loop's statistics, its number of samples and why it stopped."""
    rows = []
    for m in view.models:
        b = an.measured_batch(m.result)
        for s in (b.model_latency, b.e2e_latency) if b else ():
            if s is None:
                continue
            cv = s.std_ms / s.mean_ms if s.mean_ms > 0 else None
            rows.append([m.name, "model" if s.kind == "model" else "end to end", str(s.count), fmt.ms(s.mean_ms),
                         fmt.ms(s.std_ms), fmt.pct(cv), fmt.ms(s.min_ms), fmt.ms(s.median_ms), fmt.ms(s.p90_ms),
                         fmt.ms(s.p99_ms), fmt.ms(s.max_ms), fmt.num(s.fps), s.stop_reason or fmt.MISSING])  # fmt: skip
    if not rows:
        return []
    return [Heading(2, "Speed statistics"), Table(
        ["model", "loop", "samples", "mean (ms)", "std (ms)", "CV", "min (ms)", "median (ms)", "p90 (ms)", "p99 (ms)",
         "max (ms)", "FPS", "stop reason"], rows,
        caption="CV: coefficient of variation (std / mean). Percentiles of few samples are close to the maximum; "
                "the samples column says how many each figure rests on.")]  # fmt: skip


def is_depth(m: ModelView) -> bool:
    return m.summary.get("depth_min") is not None or "depth" in str(m.result.card.get("task", ""))


def _is_depthpro(r: ModelResult) -> bool:
    return "depthpro" in f"{r.name} {r.card.get('architecture', '')}".lower().replace("_", "")


def head_to_head_blocks(view: RunView) -> list[Block]:
    """DepthPro (else the first depth model) against every other depth model of the run."""
    depth = [m for m in view.ok_models if is_depth(m)]
    ref = next((m for m in depth if _is_depthpro(m.result)), depth[0] if depth else None)
    if ref is None or len(depth) < 2:
        return []
    rl, rp = an.model_latency(ref.result), an.peak_bytes(ref.result)
    rows = []
    for m in [ref] + [m for m in depth if m is not ref]:
        r, s, lat, peak = m.result, m.summary, an.model_latency(m.result), an.peak_bytes(m.result)
        cost = an.cost_per_1000_s(r)
        fits = (f"{r.max_batch_size} (OOM at {r.oom_batch_size})" if r.oom_batch_size
                else f"{r.max_batch_size} (largest tried)" if r.max_batch_size else fmt.MISSING)  # fmt: skip
        rows.append([
            r.name, fmt.count(r.params), fmt.ms(lat.median_ms if lat else None), fmt.num(lat.fps if lat else None),
            fmt.ratio(rl.median_ms / lat.median_ms if rl and lat and lat.median_ms > 0 else None), fmt.mib(peak),
            fmt.ratio(peak / rp if peak and rp else None), fmt.num(r.load_time_s),
            f"{s['width']}x{s['height']}" if "width" in s and "height" in s else fmt.MISSING,
            str(s.get("depth_kind") or fmt.MISSING), fmt.num(s.get("fov_deg"), 1), layers_dissected(m), fits,
            fmt.num(cost / 3600 if cost else None, 4),
        ])  # fmt: skip
    return [Heading(2, f"Head-to-head: {ref.name} against the other depth models"), Table(
        ["model", "params", "median (ms)", "FPS", f"speed vs {ref.name}", "peak memory (MiB)", f"memory vs {ref.name}",
         "load (s)", "output", "depth type", "FOV (deg)", "layers captured", "largest batch that fits",
         "1000 images (device-hours)"], rows,
        caption=f"Speed vs {ref.name}: its median / the model's (above 1x: faster); memory: the model's peak / "
                f"{ref.name}'s. Cost: device-hours for 1000 images at the best measured model throughput; "
                "FOV: estimated field of view of the first image ('-': the model has no FOV head).")]  # fmt: skip
