"""One model, measured: load, warmup (+ FLOP count), model latency, end-to-end latency, memory, per batch size.

`bench_model(...)` does it in the calling process (library use); `python -m visionbench.bench.worker
SPEC.json` does it in a fresh process for the suite, so each model's peak memory is its own and a crash
or out-of-memory is that model's failure only. The worker writes `result.json` after every batch size,
so even a process killed by the kernel leaves what it finished.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import logging
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from visionbench.bench.events import EventSink
from visionbench.bench.loops import run_loops
from visionbench.bench.output_pictures import write_output_pictures
from visionbench.bench.plan import LoopPlan, choose_plan
from visionbench.bench.process import benchmark_process
from visionbench.config import BenchConfig
from visionbench.errors import VisionbenchError
from visionbench.files import safe_name
from visionbench.images import load_image
from visionbench.measure.contention import ContentionMeter
from visionbench.measure.memory import MemoryTracker
from visionbench.measure.peak import probe_again, probe_or_none, utilisation
from visionbench.measure.profile import ComponentHooks
from visionbench.measure.timing import RepeatPolicy, synchronize
from visionbench.results import (
    MODEL_FILE,
    BatchResult,
    ModelResult,
    now_iso,
    save_model_result,
)

log = logging.getLogger("visionbench")
# Imported before the memory baseline, so "above baseline" is the model, not library code loaded lazily.
LIBRARY_MODULES = {
    "transformers": ["transformers"],
    "ultralytics": [
        "ultralytics.nn.tasks",
        "ultralytics.utils.ops",
        "ultralytics.utils.nms",
        "ultralytics.data.augment",
    ],
}


def bench_model(
    name: str,
    config: BenchConfig,
    images: list[Path],
    out_dir: Path | None = None,
    events: EventSink | None = None,
) -> ModelResult:
    """Benchmark one model under `config` on the given (already validated) images; never raises for model faults."""
    events = events or EventSink(None)
    start = time.perf_counter()
    result = ModelResult(name=name, status="failed", images=[str(p) for p in images], folder=safe_name(name))
    plan = config.plan_for(name)
    result.plan = plan.model_dump()
    try:
        with benchmark_process(config.threads):  # the caller's threads and float mode come back afterwards
            result.threads = torch.get_num_threads()
            _measure(name, config, images, result, out_dir, events)
    except KeyboardInterrupt:
        result.status, result.error = "interrupted", "interrupted (Ctrl-C)"
    except Exception as exc:  # noqa: BLE001 - any model fault becomes this model's recorded failure
        result.status = "oom" if is_oom(exc) else "failed"
        result.error = one_line(exc)
        if not isinstance(exc, VisionbenchError):
            log.debug("model %s failed:\n%s", name, traceback.format_exc())
            if out_dir is not None:
                (out_dir / "traceback.txt").write_text(traceback.format_exc())
    result.wall_time_s = time.perf_counter() - start
    result.finished_at = now_iso()
    if out_dir is not None:
        save_model_result(result, out_dir / MODEL_FILE)
    events.emit("done", status=result.status)
    return result


def _measure(
    name: str, config: BenchConfig, images: list[Path], result: ModelResult, out_dir: Path | None, events: EventSink
) -> None:
    import visionbench as vb
    from visionbench.models.registry import get_card, resolve_device

    plan = config.plan_for(name)
    device = resolve_device(config.device)
    events.emit("phase", phase="import")
    t0 = time.perf_counter()
    try:
        card = get_card(name)
        importlib.import_module("torch.utils.flop_counter")
        for module in LIBRARY_MODULES.get(card.library, []):
            lib = importlib.import_module(module)
        if card.library == "transformers":
            getattr(lib, card.architecture, None)  # transformers imports the model's module lazily
    except VisionbenchError:
        raise
    except Exception:  # noqa: BLE001 - open doors and odd libraries: import happens in the build instead
        pass
    result.import_time_s = time.perf_counter() - t0
    events.emit("phase", phase="peak")
    result.peak = probe_or_none(device, config.dtype)
    torch.manual_seed(config.seed)
    memory = MemoryTracker(device)

    events.emit("phase", phase="load")
    t0 = time.perf_counter()
    model = vb.create_model(
        name, weights=config.weights, device=device, dtype=config.dtype, input_size=plan.input_size,
        seed=config.seed, trust_remote_code=config.trust_remote_code, fuse=config.fuse,
    )  # fmt: skip
    if config.channels_last:
        model.module = model.module.to(memory_format=torch.channels_last)
    synchronize(device)
    result.load_time_s = time.perf_counter() - t0
    memory.loaded()
    result.card = model.card.model_dump()
    result.weights = model.weights.record()  # source, hub revision and SHA-256 of each file read
    result.device, result.dtype = str(device), str(model.dtype).removeprefix("torch.")
    result.input_size, result.params = model.input_size, model.num_params()
    tensors = (*model.module.parameters(), *model.module.buffers())
    result.weights_bytes = sum(t.numel() * t.element_size() for t in tensors)
    result.compile, result.channels_last = config.compile, config.channels_last
    result.variant = model.variant
    events.emit("loaded", load_time_s=result.load_time_s, import_time_s=result.import_time_s, params=result.params,
                weights=model.weights.mode, source=model.weights.source, device=result.device, dtype=result.dtype,
                input_size=result.input_size)  # fmt: skip

    eager = model.module
    if config.compile:
        model.module = torch.compile(eager)
    policy = RepeatPolicy(min_runs=plan.runs or config.runs, budget_s=plan.budget_s or 0.0, cap_s=config.max_loop_time)
    meter = ContentionMeter()
    taken: _Taken | None = None
    for bs in config.batch_sizes:
        batch_result, extras = _measure_batch(
            model, eager, bs, config, plan.warmup or 1, policy, images, memory, result, events, meter, out_dir
        )
        taken = taken or extras
        result.batches.append(batch_result)
        result.contention = meter.result()
        if batch_result.status == "ok":
            result.max_batch_size = bs
            if bs == min(config.batch_sizes) and batch_result.flops is not None:
                result.flops = batch_result.flops // bs
        elif batch_result.status == "oom":
            result.oom_batch_size = bs
            break
        else:
            raise RuntimeError(batch_result.error or f"batch size {bs} failed")
        if out_dir is not None:
            save_model_result(
                result.model_copy(update={"status": "interrupted", "error": "partial"}), out_dir / MODEL_FILE
            )
    if not any(b.status == "ok" for b in result.batches):
        first = result.batches[0] if result.batches else None
        result.status = "oom" if first is not None and first.status == "oom" else "failed"
        result.error = first.error if first is not None else "no batch size ran"
        return
    result.status, result.error = "ok", None
    model.module = eager
    probe_again(result, device, config.dtype)
    if config.variants or config.preset:  # fastpath: variants and the fast preset, against the figure just taken
        from visionbench.bench.variants import run_variants

        result.variants = run_variants(model, config, images, result, policy, events.emit)
    if config.profile:
        events.emit("phase", phase="profile")
        result.profile = _profile(model, name, images[0], policy, result, taken)
    if config.dissect and out_dir is not None:
        from visionbench.bench.hooks import run_dissection

        events.emit("phase", phase="dissect")
        result.dissection = run_dissection(model, images[0], out_dir.parent, out_dir.name)


@dataclass
class _Taken:
    """What the first batch size's warmup left for the profile: its plan and, where hooked, its hooks."""

    plan: LoopPlan
    batch_size: int
    warm_ms: float
    hooks: ComponentHooks | None
    plain_ms: list[float] = field(default_factory=list)  # the model latency samples taken without hooks


def _profile(
    model: Any, name: str, image: Path, policy: RepeatPolicy, result: ModelResult, taken: _Taken | None
) -> dict[str, Any] | None:
    """The component profile at its cheapest for the plan: no forward for a slow model whose counted warmup
    was hooked, one hooked forward for another slow model, today's few forwards for a fast one; FLOPs
    per component always on a meta copy (a real counting forward of DepthPro costs minutes)."""
    from visionbench.bench.hooks import run_profile
    from visionbench.measure.flops import meta_count

    batch = model.preprocess([load_image(image)])
    flops = meta_count(name, batch, model.input_size)
    if taken is not None and taken.plan.one_loop:
        if taken.plan.count_warmup and taken.hooks is not None and taken.batch_size == 1:
            return run_profile(model, batch, 1, flops=flops, plain_ms=taken.plain_ms,
                               hooked=(taken.warm_ms, taken.hooks))  # fmt: skip
        primary = result.primary
        plain = primary.model_latency.samples_ms if primary and primary.model_latency else None
        return run_profile(model, batch, 1, flops=flops, plain_ms=plain)
    return run_profile(model, batch, runs=min(3, policy.min_runs), flops=flops)


def _measure_batch(
    model: Any,
    eager: torch.nn.Module,
    bs: int,
    config: BenchConfig,
    warmup: int,
    policy: RepeatPolicy,
    images: list[Path],
    memory: MemoryTracker,
    result: ModelResult,
    events: EventSink,
    meter: ContentionMeter,
    out_dir: Path | None = None,
) -> tuple[BatchResult, _Taken | None]:
    """FLOPs (meta), warmup, then the loops the plan gives (bench/plan.py), at one batch size."""
    from visionbench.measure.flops import flop_counter, meta_flops

    paths = [images[i % len(images)] for i in range(bs)]
    device = model.device
    memory.start_run()
    out = BatchResult(batch_size=bs, status="ok")
    taken: _Taken | None = None
    preds: list[Any] = []  # the first end-to-end call's predictions: the output pictures are drawn from them
    # The first warmup forward carries the component hooks where it may become a counted sample (CPU, not
    # compiled): reading a clock a few dozen times costs nothing next to a forward of seconds.
    hook = config.profile and device.type == "cpu" and not config.compile and bs == min(config.batch_sizes)
    try:
        batch = model.preprocess([load_image(p) for p in paths])
        if config.channels_last:
            batch.inputs = {k: _channels_last(v) for k, v in batch.inputs.items()}
        events.emit("phase", phase="warmup", batch_size=bs)
        warm_ms: list[float] = []
        # FLOPs on a meta copy at these exact input shapes: no compute, so every warmup call below is a
        # plain forward (a FLOP-counting call runs a slower path and warms nothing up).
        out.flops = meta_flops(result.name, batch, model.input_size)
        events.emit("flops", batch_size=bs, flops=out.flops)
        hooks = ComponentHooks(model) if hook else None
        meter.start()
        with torch.inference_mode():
            if out.flops is None:  # not buildable on meta (e.g. a pickled checkpoint): one extra untimed call
                with flop_counter() as counter:
                    model.module, current = eager, model.module
                    model.forward(batch)
                model.module = current
                out.flops = int(counter.get_total_flops()) or None
                events.emit("flops", batch_size=bs, flops=out.flops)
            for i in range(max(1, warmup)):
                with hooks if (i == 0 and hooks is not None) else contextlib.nullcontext():
                    t0 = time.perf_counter()
                    outputs = model.forward(batch)
                    synchronize(device)
                    warm_ms.append((time.perf_counter() - t0) * 1e3)
                if i == 0:
                    loop_plan = choose_plan(warm_ms[0] / 1e3, policy, config, device.type)
                    if loop_plan.one_loop and warm_ms[0] / 1e3 < config.count_warmup_s:
                        # under a second, a cold call or a busy moment can pass the threshold: decide on a
                        # warm forward (cheap at that length) rather than misjudge a fast model
                        t0 = time.perf_counter()
                        outputs = model.forward(batch)
                        synchronize(device)
                        warm_ms.append((time.perf_counter() - t0) * 1e3)
                        loop_plan = choose_plan(warm_ms[1] / 1e3, policy, config, device.type)
                    if loop_plan.one_loop:
                        break  # no more warmups: a forward of seconds warmed the code paths
        prior = warm_ms[-1:] if loop_plan.count_warmup else []  # the forward the plan was decided on
        if prior:  # a timeout from here on still has this figure (stopped.fill_from_events)
            events.emit("sample", loop="model", n=1, spent_s=prior[0] / 1e3, ms=prior[0], batch_size=bs,
                        counted_warmup=True)  # fmt: skip
        if bs == min(config.batch_sizes):  # the figures tables use
            result.plan = {**result.plan, "loops": loop_plan.loops, "counted_warmup": len(prior),
                           "plan_reason": loop_plan.reason}  # fmt: skip
        per_call_s = max(warm_ms[-1] / 1e3, 1e-6)
        loops = 1 if loop_plan.one_loop or not config.e2e else 2
        left = max(0, policy.expected_runs(per_call_s) - len(prior))
        events.emit("estimate", remaining_s=loops * left * per_call_s, batch_size=bs)
        preds = run_loops(model, batch, bs, config, policy, images, outputs, prior, warm_ms, loop_plan, out, result,
                          events)  # fmt: skip
        meter.stop()
        out.model_latency.warmup_ms = warm_ms  # type: ignore[union-attr]
        if out.flops:
            out.achieved_flops_per_s = out.flops / (out.model_latency.median_ms / 1e3)  # type: ignore[union-attr]
            if result.peak is not None:
                out.utilisation = utilisation(out.achieved_flops_per_s, result.peak.matmul_flops_per_s)
                out.utilisation_datasheet = utilisation(out.achieved_flops_per_s, result.peak.datasheet_flops_per_s)
        if bs == min(config.batch_sizes):
            plain = out.model_latency.samples_ms[len(prior) :]  # type: ignore[union-attr]
            # the hooked first forward serves the profile only where it is the counted one (not a cold call
            # that was rechecked)
            served = hooks if prior and len(warm_ms) == 1 else None
            taken = _Taken(loop_plan, bs, warm_ms[0], served, plain)
        out.memory = memory.end_run()
    except Exception as exc:  # noqa: BLE001
        meter.stop()
        if not is_oom(exc):
            raise
        out.status, out.error = "oom", f"out of memory at batch size {bs}: {one_line(exc)}"
        out.memory = memory.end_run()
    finally:
        batch = outputs = None  # noqa: F841 - free before the next batch size
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if out.memory is not None:
        memory.after_cleanup(out.memory)
    if preds and out_dir is not None and not result.output_pictures:  # after the memory figures, not in them
        result.output_pictures = write_output_pictures(model, images[0], preds, out_dir)
    return out, taken


def _channels_last(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous(memory_format=torch.channels_last) if t.ndim == 4 else t


def is_oom(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError) or type(exc).__name__ in {"OutOfMemoryError", "OutOfMemoryError_"}:
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def one_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    """Entry point of the worker process: `python -m visionbench.bench.worker SPEC.json`.

    Only here, in a process that exists to run one model, is the allocator tuned (measure/allocator.py):
    a library call of `bench_model` leaves its caller's malloc alone.
    """
    from visionbench.bench.process import die_with_parent
    from visionbench.measure.allocator import tune_malloc

    die_with_parent()
    tune_malloc()
    args = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(args[0]).read_text())
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    out_dir = Path(spec["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    config = BenchConfig.model_validate(spec["config"])
    events = EventSink(out_dir / "events.jsonl")
    result = bench_model(spec["name"], config, [Path(p) for p in spec["images"]], out_dir, events)
    return 0 if result.status == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
