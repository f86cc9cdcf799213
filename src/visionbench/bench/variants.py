"""Variants of one model (bfloat16, float16, channels-last, compile, SDPA, fused, CUDA graphs, the fast preset),
timed in the worker after the main measurement, each with its speed-up and its accuracy cost.

Why here: the same process, weights and input as the main figure, so a speed-up is a ratio of two figures
taken side by side and the accuracy cost compares two outputs of the same image. A variant that cannot
apply (no native bf16 on an AVX2-only CPU, CUDA graphs on a CPU, SDPA where the main run already uses it)
or that the run cannot afford is recorded with its reason, never dropped.

Accuracy cost, against the main (float32 eager) predictions of the first image: `visionbench.measure.accuracy`.
"""

from __future__ import annotations

import copy
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from visionbench.config import BenchConfig
from visionbench.images import load_image
from visionbench.measure.accuracy import accuracy_cost
from visionbench.measure.timing import RepeatPolicy, latency_stats, synchronize, time_calls
from visionbench.results import ModelResult, VariantResult

log = logging.getLogger("visionbench")
# A variant whose predicted cost (its warmup and timed forwards at the main median) would take more than this
# share of the model's --timeout is skipped with the reason: the main figure must never be lost to a variant.
VARIANT_SHARE = 0.25
# Planning figure for the skip rule only (the measured first call is recorded as `compile_s`): what inductor's
# compilation of a vision model's forward takes before its first result, order of magnitude.
COMPILE_GUESS_S = 30.0
# `--variants auto` (and the default `run`): dtypes a CPU lacks stay listed, so the report says why they are
# missing; compile is left to --preset fast (its compilation costs minutes on a CPU).
AUTO = ["bfloat16", "float16", "channels-last", "sdpa"]
PIECES = ["bfloat16", "float16", "sdpa", "channels-last", "fused", "compile", "cuda-graphs"]


@dataclass
class Prepared:
    """A variant ready to run: its module, how inputs change, and what it applied."""

    module: torch.nn.Module
    applied: list[str]
    dtype: torch.dtype | None = None
    channels_last: bool = False
    compiled: bool = False


def native_low_precision(device: torch.device) -> dict[str, str | None]:
    """dtype -> None when the device runs it natively, else why not (the reason a variant is not applicable)."""
    if device.type == "cuda":
        major, _ = torch.cuda.get_device_capability(device)
        bf16 = None if torch.cuda.is_bf16_supported() else "this GPU has no native bfloat16 (before Ampere)"
        return {"bfloat16": bf16, "float16": None if major >= 6 else "this GPU has no fast float16"}
    if device.type == "mps":
        return {"bfloat16": None, "float16": None}
    flags = cpu_flags()
    cap = torch.backends.cpu.get_cpu_capability()
    out: dict[str, str | None] = {"bfloat16": None, "float16": None}
    for dtype, short in (("bfloat16", "bf16"), ("float16", "fp16")):
        native = torch.backends.mkldnn.is_available() and bool({f"avx512_{short}", f"amx_{short}"} & flags)
        if not native:
            out[dtype] = (
                f"no native {dtype} on this CPU ({cap}; no avx512_{short} or amx_{short}): "
                "torch would emulate it, slower than float32"
            )
    return out


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def plan_names(config: BenchConfig) -> list[str]:
    """The variants this run measures, in order: --variants (auto expanded), then the fast preset's."""
    names: list[str] = []
    for n in config.variants:
        for m in AUTO if n == "auto" else [n]:
            if m not in names:
                names.append(m)
    if config.preset == "fast":
        names += [p for p in PIECES if p not in names]
        if "fast" not in names:
            names.append("fast")
    return names


def run_variants(
    model: Any, config: BenchConfig, images: list[Path], result: ModelResult, policy: RepeatPolicy, emit: Callable
) -> list[VariantResult]:
    """Every planned variant of `model` (its eager float32 module in place), one VariantResult each."""
    device = model.device
    names = plan_names(config)
    main = result.primary
    if not names or main is None or main.model_latency is None:
        return []
    base_ms = main.model_latency.median_ms
    bs = main.batch_size
    vpolicy = RepeatPolicy(min_runs=min(policy.min_runs, 3), budget_s=min(policy.budget_s, 3.0), cap_s=policy.cap_s)
    left_s = _time_left(config, result)
    out: list[VariantResult] = []
    reference: list[Any] | None = None
    batch = None
    for name in names:
        vr = VariantResult(name=name, status="ok", batch_size=bs, baseline_ms=base_ms)
        out.append(vr)
        prepared = _prepare(name, model, config) if name != "fast" else _prepare_fast(model, config, out)
        if isinstance(prepared, str):
            vr.status, vr.reason = "not_applicable", prepared
            continue
        vr.applied = prepared.applied
        cost_s = (1 + vpolicy.min_runs + (reference is None)) * base_ms / 1e3 + COMPILE_GUESS_S * prepared.compiled
        if left_s is not None and cost_s > VARIANT_SHARE * left_s:
            vr.status = "skipped"
            vr.reason = (f"predicted {cost_s:,.0f} s ({1 + vpolicy.min_runs} forwards of {base_ms:,.0f} ms"
                         f"{' and the reference forward' if reference is None else ''}"
                         f"{f', about {COMPILE_GUESS_S:.0f} s compiling' if prepared.compiled else ''}) exceeds "
                         f"{VARIANT_SHARE:.0%} of the {left_s:,.0f} s left of this model's --timeout")  # fmt: skip
            prepared = None
            continue
        emit("phase", phase=f"variant {name}", batch_size=bs)
        t0 = time.perf_counter()
        try:
            if reference is None:
                batch = model.preprocess([load_image(images[i % len(images)]) for i in range(bs)])
                with torch.inference_mode():
                    reference = model.postprocess(model.forward(batch), batch)
            _measure(vr, prepared, model, batch, reference, vpolicy)
            if name == "fast":
                _batch_search(vr, prepared, model, images, left_s)
        except Exception as exc:  # noqa: BLE001 - a variant's fault is that variant's record only
            from visionbench.bench.worker import is_oom, one_line

            vr.status, vr.reason = ("oom" if is_oom(exc) else "failed"), one_line(exc)
            log.warning("variant %s of %s failed: %s", name, result.name, vr.reason)
        finally:
            prepared = None
            if device.type == "cuda":
                torch.cuda.empty_cache()
        if left_s is not None:
            left_s -= time.perf_counter() - t0
    return out


def _batch_search(vr: VariantResult, p: Prepared, model: Any, images: list[Path], left_s: float | None) -> None:
    """The fast preset's largest batch: doubling from the timed one until out of memory (CUDA only)."""
    from visionbench.bench.worker import is_oom

    if model.device.type != "cuda":
        vr.applied.append("largest batch not searched: on a CPU a too-large batch pages memory instead of failing")
        return
    bs, limit = (vr.batch_size or 1) * 2, 256
    start = time.perf_counter()
    budget = min(60.0, VARIANT_SHARE * left_s) if left_s is not None else 60.0
    vr.max_batch_size = vr.batch_size
    image = load_image(images[0])
    eager = model.module
    while bs <= limit and time.perf_counter() - start < budget:
        try:
            batch = model.preprocess([image] * bs)
            inputs = {k: _convert(v, p) for k, v in batch.inputs.items()}
            model.module = p.module if not p.compiled else p.module._orig_mod  # type: ignore[union-attr]
            with torch.inference_mode():
                model.forward(type(batch)(inputs=inputs, sizes=batch.sizes, extras=batch.extras))
            synchronize(model.device)
            vr.max_batch_size = bs
        except Exception as exc:  # noqa: BLE001
            if not is_oom(exc):
                raise
            vr.oom_batch_size = bs
            break
        finally:
            model.module = eager
            batch = inputs = None
            torch.cuda.empty_cache()
        bs *= 2
    why = f"out of memory at {vr.oom_batch_size}" if vr.oom_batch_size else f"stopped at {min(bs, limit)} (cap or time)"
    vr.applied.append(f"largest batch that ran: {vr.max_batch_size} ({why})")


def _time_left(config: BenchConfig, result: ModelResult) -> float | None:
    """Seconds of --timeout left after import, load and the main loops (None: no timeout)."""
    if config.timeout is None:
        return None
    spent = (result.import_time_s or 0) + (result.load_time_s or 0)
    for b in result.batches:
        for lat in (b.model_latency, b.e2e_latency):
            if lat is not None:
                spent += lat.total_s + sum(lat.warmup_ms) / 1e3
    return max(0.0, config.timeout - spent)


def _measure(
    vr: VariantResult, p: Prepared, model: Any, batch: Any, reference: list[Any], policy: RepeatPolicy
) -> None:
    device = model.device
    inputs = {k: _convert(v, p) for k, v in batch.inputs.items()}
    vbatch = type(batch)(inputs=inputs, sizes=batch.sizes, extras=batch.extras)
    eager = model.module

    def call() -> Any:
        model.module = p.module
        try:
            return model.forward(vbatch)
        finally:
            model.module = eager

    with torch.inference_mode():
        t0 = time.perf_counter()
        outputs = call()
        synchronize(device)
        vr.compile_s = time.perf_counter() - t0
        if p.compiled or (vr.baseline_ms or 0) < 1000:  # CUDA graphs record on the second call; a fast model's
            outputs = call()  # first layout-changed call also builds its oneDNN primitives
            synchronize(device)
        samples, why = time_calls(call, policy, device)
        preds = model.postprocess(_to_float32(outputs), batch)
    vr.latency = latency_stats(samples, kind="model", batch_size=vr.batch_size or 1, warmup_calls=1, stop_reason=why)
    vr.speedup = (vr.baseline_ms or 0) / vr.latency.median_ms if vr.latency.median_ms > 0 else None
    vr.accuracy = accuracy_cost(reference, preds)


def _convert(t: torch.Tensor, p: Prepared) -> torch.Tensor:
    if p.dtype is not None and t.is_floating_point():
        t = t.to(p.dtype)
    if p.channels_last and t.ndim == 4:
        t = t.contiguous(memory_format=torch.channels_last)
    return t


def _has_conv(module: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.Conv2d) for m in module.modules())


def _prepare(name: str, model: Any, cfg: BenchConfig) -> Prepared | str:
    """The variant's module, or why it does not apply here."""
    device = model.device
    if name in ("bfloat16", "float16"):
        if cfg.dtype == name:
            return f"the main measurement already runs in {name}"
        why = native_low_precision(device)[name]
        if why:
            return why
        dtype = getattr(torch, name)
        return Prepared(copy.deepcopy(model.module).to(dtype), [name], dtype=dtype)
    if name == "channels-last":
        if cfg.channels_last:
            return "the main measurement already runs channels-last"
        if not _has_conv(model.module):
            return "no 2-D convolutions in this model"
        return Prepared(copy.deepcopy(model.module).to(memory_format=torch.channels_last), [name], channels_last=True)
    if name == "sdpa":
        current = getattr(getattr(model.module, "config", None), "_attn_implementation", None)
        if current is None or not hasattr(model.module, "set_attn_implementation"):
            return "not a transformers model with a choice of attention"
        if current == "sdpa":
            return "the main measurement already uses SDPA attention (transformers' default for this architecture)"
        module = copy.deepcopy(model.module)
        try:
            module.set_attn_implementation("sdpa")
        except Exception as exc:  # noqa: BLE001 - the architecture does not support it: say so
            return f"{type(module).__name__} does not support SDPA attention ({str(exc).splitlines()[0][:120]})"
        return Prepared(module, [f"sdpa attention (instead of {current})"])
    if name == "fused":
        if model.variant == "fused":
            return "the main measurement already runs with Conv+BN fused (as ultralytics' predictor runs it)"
        if not hasattr(model.module, "fuse"):
            return "no Conv+BN fusion for this architecture (ultralytics models only)"
        return Prepared(copy.deepcopy(model.module).fuse(verbose=False), ["Conv+BN fused"])
    if name in ("compile", "cuda-graphs"):
        if name == "cuda-graphs" and device.type != "cuda":
            return "CUDA graphs need a CUDA device"
        if cfg.compile:
            return "the main measurement is already compiled"
        if device.type == "cpu" and not (shutil.which("cc") or shutil.which("gcc")):
            return "torch.compile on a CPU needs a C++ compiler (none on PATH)"
        mode = "reduce-overhead" if name == "cuda-graphs" else None
        label = "torch.compile (reduce-overhead: CUDA graphs)" if mode else "torch.compile"
        return Prepared(torch.compile(copy.deepcopy(model.module), mode=mode), [label], compiled=True)
    return f"unknown variant {name!r}"


def _prepare_fast(model: Any, config: BenchConfig, done: list[VariantResult]) -> Prepared | str:
    """Every piece that applies and, where it was timed alone, helped (speed-up > 1): one module."""
    device = model.device
    by_name = {v.name: v for v in done}

    def helps(name: str) -> bool:
        v = by_name.get(name)
        return v is not None and v.status == "ok" and (v.speedup or 0) > 1.0

    module = copy.deepcopy(model.module)
    p = Prepared(module, [])
    native = native_low_precision(device)
    for dt in ("bfloat16", "float16"):
        if native[dt] is None and config.dtype == "float32" and helps(dt):
            p.dtype = getattr(torch, dt)
            p.module = p.module.to(p.dtype)
            p.applied.append(dt)
            break
    else:
        p.applied.append("float32 kept: " + ("; ".join(v for v in native.values() if v) or "no lower dtype was faster"))
    if helps("sdpa"):
        p.module.set_attn_implementation("sdpa")
        p.applied.append("sdpa attention")
    if helps("fused"):
        p.module = p.module.fuse(verbose=False)
        p.applied.append("Conv+BN fused")
    if helps("channels-last"):
        p.module = p.module.to(memory_format=torch.channels_last)
        p.channels_last = True
        p.applied.append("channels-last")
    graphs = "cuda-graphs" if helps("cuda-graphs") else "compile" if helps("compile") else None
    if graphs:
        p.module = torch.compile(p.module, mode="reduce-overhead" if graphs == "cuda-graphs" else None)
        p.compiled = True
        p.applied.append("torch.compile" + (" (reduce-overhead: CUDA graphs)" if graphs == "cuda-graphs" else ""))
    if not any(x for x in p.applied if not x.startswith("float32 kept")):
        return "no piece was faster than the main measurement on this device: " + p.applied[0]
    return p


def _to_float32(obj: Any) -> Any:
    """Outputs with every floating tensor in float32 (and contiguous), so postprocessing is the main run's."""
    if isinstance(obj, torch.Tensor):
        return obj.float().contiguous() if obj.is_floating_point() else obj
    if isinstance(obj, dict):
        converted = {k: _to_float32(v) for k, v in obj.items()}
        try:
            return type(obj)(**converted)
        except TypeError:
            return converted
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_float32(v) for v in obj)
    return obj
