"""One model, measured: load, warmup (+ FLOP count), model latency, end-to-end latency, memory, per batch size.

`bench_model(...)` does it in the calling process (library use); `python -m visionbench.bench.worker
SPEC.json` does it in a fresh process for the suite, so each model's peak memory is its own and a crash
or out-of-memory is that model's failure only. The worker writes `result.json` after every batch size,
so even a process killed by the kernel leaves what it finished.
"""

from __future__ import annotations

import gc
import importlib
import json
import logging
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from visionbench.bench.events import EventSink
from visionbench.bench.process import benchmark_process
from visionbench.config import BenchConfig
from visionbench.errors import VisionbenchError
from visionbench.files import safe_name
from visionbench.images import load_image
from visionbench.measure.memory import MemoryTracker
from visionbench.measure.peak import measure_peak, utilisation
from visionbench.measure.timing import PhaseClock, RepeatPolicy, latency_stats, synchronize, time_calls
from visionbench.results import MODEL_FILE, BatchResult, DevicePeak, ModelResult, now_iso, save_model_result

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
    result = ModelResult(name=name, status="failed", images=[str(p) for p in images], folder=name_to_folder(name))
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
    result.peak = _device_peak(device, config.dtype)
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
    for bs in config.batch_sizes:
        batch_result = _measure_batch(
            model, eager, bs, config, plan.warmup or 1, policy, images, memory, result, events
        )
        result.batches.append(batch_result)
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
    if config.variants or config.preset:  # fastpath: variants and the fast preset, against the figure just taken
        from visionbench.bench.variants import run_variants

        result.variants = run_variants(model, config, images, result, policy, events.emit)
    if config.profile:
        from visionbench.bench.hooks import run_profile

        events.emit("phase", phase="profile")
        result.profile = run_profile(model, model.preprocess([load_image(images[0])]), runs=min(3, policy.min_runs))
    if config.dissect and out_dir is not None:
        from visionbench.bench.hooks import run_dissection

        events.emit("phase", phase="dissect")
        result.dissection = run_dissection(model, images[0], out_dir.parent, out_dir.name)


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
) -> BatchResult:
    """FLOPs (meta), warmup, then the model loop, then the end-to-end loop, at one batch size."""
    from visionbench.measure.flops import flop_counter, meta_flops

    paths = [images[i % len(images)] for i in range(bs)]
    device = model.device
    memory.start_run()
    out = BatchResult(batch_size=bs, status="ok")
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
        with torch.inference_mode():
            if out.flops is None:  # not buildable on meta (e.g. a pickled checkpoint): one extra untimed call
                with flop_counter() as counter:
                    model.module, current = eager, model.module
                    model.forward(batch)
                model.module = current
                out.flops = int(counter.get_total_flops()) or None
                events.emit("flops", batch_size=bs, flops=out.flops)
            for _ in range(max(1, warmup)):
                t0 = time.perf_counter()
                outputs = model.forward(batch)
                synchronize(device)
                warm_ms.append((time.perf_counter() - t0) * 1e3)
        per_call_s = max(warm_ms[-1] / 1e3, 1e-6)
        loops = 2 if config.e2e else 1
        events.emit("estimate", remaining_s=loops * policy.expected_runs(per_call_s) * per_call_s, batch_size=bs)

        events.emit("phase", phase="model", batch_size=bs)
        with torch.inference_mode():
            samples, why = time_calls(
                lambda: model.forward(batch), policy, device,
                on_sample=lambda n, s, ms: events.emit("sample", loop="model", n=n, spent_s=s, ms=ms, batch_size=bs),
            )  # fmt: skip
        out.model_latency = latency_stats(
            samples, kind="model", batch_size=bs, warmup_calls=len(warm_ms), stop_reason=why
        )
        out.model_latency.warmup_ms = warm_ms
        if out.flops:
            out.achieved_flops_per_s = out.flops / (out.model_latency.median_ms / 1e3)
            if result.peak is not None:
                out.utilisation = utilisation(out.achieved_flops_per_s, result.peak.matmul_flops_per_s)
                out.utilisation_datasheet = utilisation(out.achieved_flops_per_s, result.peak.datasheet_flops_per_s)
        if config.e2e:
            events.emit("phase", phase="end-to-end", batch_size=bs)
            out.e2e_latency, preds = _end_to_end(model, images, bs, outputs, policy, events)
            if not result.output_summary:
                result.output_summary = [p.summary() for p in preds]
        out.memory = memory.end_run()
    except Exception as exc:  # noqa: BLE001
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
    return out


def _device_peak(device: torch.device, dtype: str) -> DevicePeak | None:
    """The matmul and copy peak in this worker's settings, before the model exists; a failure only loses it."""
    try:
        return measure_peak(device, dtype)
    except Exception as exc:  # noqa: BLE001 - a reference figure, never a reason to fail the model
        log.warning("peak probe on %s (%s) failed: %s", device, dtype, one_line(exc))
        return None


def _end_to_end(
    model: Any, images: list[Path], bs: int, warm_outputs: Any, policy: RepeatPolicy, events: EventSink
) -> tuple[Any, Any]:
    """Decode + preprocess + forward + postprocess per call, each phase timed; pre/postprocessing warmed first.

    Call i takes images i*bs ... i*bs+bs-1 (cyclically), so several images are all seen; the predictions
    of the first call (the first images) are returned for the output summary.
    """
    device = model.device
    with torch.inference_mode():  # warm the decode/pre/post code paths without paying another forward
        warm_batch = model.preprocess([load_image(images[i % len(images)]) for i in range(bs)])
        model.postprocess(warm_outputs, warm_batch)
    phases: dict[str, list[float]] = {"decode": [], "preprocess": [], "forward": [], "postprocess": []}
    first: list[Any] = []
    calls = [0]

    def call() -> None:
        clock = PhaseClock(device)
        start = calls[0] * bs
        calls[0] += 1
        pils = [load_image(images[(start + j) % len(images)]) for j in range(bs)]
        clock.lap("decode")
        batch = model.preprocess(pils)
        clock.lap("preprocess")
        outputs = model.forward(batch)
        clock.lap("forward")
        preds = model.postprocess(outputs, batch)
        clock.lap("postprocess")
        for k, v in clock.phases.items():
            phases[k].append(v)
        if not first:
            first[:] = preds

    with torch.inference_mode():
        samples, why = time_calls(
            call, policy, device,
            on_sample=lambda n, s, ms: events.emit("sample", loop="end-to-end", n=n, spent_s=s, ms=ms, batch_size=bs),
        )  # fmt: skip
    stats = latency_stats(samples, kind="end_to_end", batch_size=bs, warmup_calls=1, stop_reason=why, phases_ms=phases)
    return stats, first


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


def name_to_folder(name: str) -> str:
    """A model's folder name inside the run folder: open-door names made filesystem-safe."""
    return safe_name(name)


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
