"""Measured compute breakdown: time, FLOPs and parameters per component of one forward pass.

Each component (`VisionModel.components()`: label -> module-path prefixes) gets pre/post forward hooks
on its root modules that synchronise the device and give the time since the previous hook to the
component on top of a stack: calls accumulate, time is exclusive, and the rest of the forward is
"other (glue)", so the rows add up to the hooked total. The breakdown is averaged over the middle half
of the runs ranked by total: per-component medians would not add up to the median total on a busy
machine, where contention hits one component in one run and another in the next.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from visionbench.measure.flops import component_flops, component_params, count_flops
from visionbench.measure.timing import synchronize
from visionbench.models.base import Batch, VisionModel
from visionbench.results import OTHER, ComponentProfile, ProfileResult

__all__ = ["OTHER", "ComponentHooks", "ComponentProfile", "ProfileResult", "build_profile", "profile", "profile_model"]

METHOD = (
    "forward pre/post hooks on each component's root modules; the device is synchronised at every hook "
    "(torch.cuda.synchronize on CUDA) and time between hooks goes to the innermost running component "
    "(exclusive, calls accumulate); time outside all components is 'other (glue)'; breakdown averaged over "
    "the middle half of the runs ranked by total, so rows add up to the total; "
    "FLOPs from torch.utils.flop_counter (2 per multiply-add)"
)

# A slow model's profile: the benchmark's own counted warmup forward, with the hooks on.
METHOD_TAKEN = (
    "one forward the benchmark took anyway (the counted warmup of the one-loop plan) with forward pre/post hooks "
    "on each component's root modules; time between hooks goes to the innermost running component (exclusive), "
    "time outside all components is 'other (glue)', so rows add up to that forward's total; forward_ms is the "
    "median of the benchmark's samples without hooks; FLOPs on a meta copy (no compute) from "
    "torch.utils.flop_counter (2 per multiply-add)"
)


def component_roots(module: torch.nn.Module, components: dict[str, list[str]]) -> dict[str, list[torch.nn.Module]]:
    """The root modules of each component; prefixes that name no module are skipped, nested ones refused."""
    paths = [(label, p) for label, prefixes in components.items() for p in prefixes]
    for label, p in paths:
        for other_label, q in paths:
            if p != q and (q.startswith(p + ".") or p == ""):
                raise ValueError(f"components overlap: {label!r} ({p}) contains {other_label!r} ({q})")
    roots: dict[str, list[torch.nn.Module]] = {}
    for label, prefixes in components.items():
        found = []
        for p in prefixes:
            try:
                found.append(module.get_submodule(p))
            except AttributeError:
                continue
        roots[label] = found
    return roots


class _StackTimer:
    """Exclusive time per label: the clock's increments go to the label on top of the stack."""

    def __init__(self, sync: Callable[[], None]) -> None:
        self.sync = sync
        self.stack: list[str] = []
        self.ns: dict[str, int] = {}
        self.calls: dict[str, int] = {}
        self.mark = 0

    def reset(self) -> None:
        self.stack.clear()
        self.ns = {}
        self.calls = {}

    def _tick(self) -> int:
        self.sync()
        now = time.perf_counter_ns()
        if self.stack:
            top = self.stack[-1]
            self.ns[top] = self.ns.get(top, 0) + now - self.mark
        return now

    def enter(self, label: str) -> None:
        now = self._tick()
        self.stack.append(label)
        self.calls[label] = self.calls.get(label, 0) + 1
        self.mark = now

    def leave(self, label: str) -> None:
        now = self._tick()
        if self.stack and self.stack[-1] == label:
            self.stack.pop()
        self.mark = now


def _timed(fn: Callable[[], Any], sync: Callable[[], None]) -> float:
    sync()
    start = time.perf_counter_ns()
    fn()
    sync()
    return (time.perf_counter_ns() - start) / 1e6


def profile_model(
    model: VisionModel,
    batch: Batch,
    runs: int = 5,
    warmup: int = 1,
    flops: bool | tuple[int, dict[str, int]] = True,
    progress: Callable[[int, int], None] | None = None,
    plain_ms: list[float] | None = None,
) -> ProfileResult:
    """Time, FLOPs and parameters per component of `model.forward(batch)`; see the module docstring.

    `progress(done, total)` is called after each warmup and timed run (for a progress bar). `flops` may be
    counts already taken ((total, per module path), e.g. on a meta copy): then no counting forward runs.
    `plain_ms` (plain forwards already timed, e.g. a benchmark's samples) replaces the plain forward of each
    run, so a run costs one hooked forward only.
    """
    if runs < 1:
        raise ValueError("runs must be at least 1")
    hooks = ComponentHooks(model)
    sync = hooks.timer.sync
    plain, hooked = [], []
    per_run: list[dict[str, int]] = []
    calls: dict[str, int] = {}
    total = warmup + runs
    with torch.inference_mode():
        for i in range(total):
            one_plain = _timed(lambda: model.forward(batch), sync) if plain_ms is None else 0.0
            with hooks:
                hooked_ms = _timed(lambda: model.forward(batch), sync)
            if i >= warmup:
                plain.append(one_plain)
                hooked.append(hooked_ms)
                per_run.append(hooks.ns)
                calls = hooks.calls
            if progress is not None:
                progress(i + 1, total)

    method = METHOD
    if isinstance(flops, tuple):
        counted: tuple[int, dict[str, int]] | None = flops
        method = METHOD.replace("FLOPs from", "FLOPs on a meta copy (no compute) from")
    else:
        counted = count_flops(model, batch) if flops else None
    if plain_ms is not None:
        plain = list(plain_ms)
        method += "; plain forward time: the benchmark's own samples (no plain forward of its own)"
    return build_profile(model, batch, plain=plain, hooked=hooked, per_run=per_run, calls=calls, flops=counted,
                         runs=runs, warmup=warmup, method=method)  # fmt: skip


class ComponentHooks:
    """The component-root hooks on `model`, for one forward the caller takes anyway (e.g. a counted warmup).

        with ComponentHooks(model) as hooks:
            model.forward(batch)
        hooks.ns, hooks.calls  # exclusive ns per component, root calls per component

    On a CPU the hooks only read a clock (no device to synchronise), so a forward of seconds is not slowed
    measurably: a slow model's profile costs no forward of its own.
    """

    def __init__(self, model: VisionModel) -> None:
        self.components = model.components()
        self.roots = component_roots(model.module, self.components)
        self.timer = _StackTimer(functools.partial(synchronize, model.device))
        self.ns: dict[str, int] = {}
        self.calls: dict[str, int] = {}
        self._handles: list[Any] = []

    def __enter__(self) -> ComponentHooks:
        timer = self.timer
        timer.reset()
        for label, modules in self.roots.items():
            for mod in modules:
                self._handles.append(mod.register_forward_pre_hook(lambda *_a, _l=label: timer.enter(_l)))
                self._handles.append(mod.register_forward_hook(lambda *_a, _l=label: timer.leave(_l)))
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        self.ns, self.calls = dict(self.timer.ns), dict(self.timer.calls)


def build_profile(
    model: VisionModel,
    batch: Batch,
    *,
    plain: list[float],
    hooked: list[float],
    per_run: list[dict[str, int]],
    calls: dict[str, int],
    flops: tuple[int, dict[str, int]] | None,
    runs: int,
    warmup: int,
    method: str,
) -> ProfileResult:
    """The ProfileResult of hooked forwards already taken: rows add up to each hooked total (glue is the rest).

    `plain` are forwards without hooks (the benchmark's own samples may serve); `flops` is (total, per
    module path) from a counting forward or a meta copy (`visionbench.measure.flops.meta_count`).
    """
    components = model.components()
    total_flops, per_module = flops if flops else (0, {})
    comp_flops = component_flops(per_module, components)
    comp_params = component_params(model.module, components)
    n_params = model.num_params()
    used = middle_half(hooked)
    hooked_mean = statistics.fmean(hooked[k] for k in used)

    rows: list[ComponentProfile] = []
    for label, prefixes in components.items():
        samples = [run.get(label, 0) / 1e6 for run in per_run]
        rows.append(_row(label, prefixes, calls.get(label, 0), samples, used, hooked_mean, comp_flops[label],
                         total_flops, comp_params[label], n_params))  # fmt: skip
    glue = [h - sum(run.values()) / 1e6 for h, run in zip(hooked, per_run, strict=True)]
    rows.append(_row(OTHER, [], 0, glue, used, hooked_mean, total_flops - sum(comp_flops.values()), total_flops,
                     n_params - sum(comp_params.values()), n_params))  # fmt: skip
    plain_med = statistics.median(plain) if plain else statistics.median(hooked)
    first = next(iter(batch.inputs.values()))
    return ProfileResult(
        model=model.name,
        task=model.card.task,
        device=str(model.device),
        dtype=str(model.dtype).removeprefix("torch."),
        input_size=model.input_size,
        batch_size=int(first.shape[0]) if first.dim() else batch.batch_size,
        input_shapes={k: list(v.shape) for k, v in batch.inputs.items()},
        weights_mode=model.weights.mode,
        runs=runs,
        warmup=warmup,
        method=method,
        forward_ms=plain_med,
        forward_ms_samples=plain,
        hooked_ms=hooked_mean,
        hooked_ms_samples=hooked,
        hook_overhead=statistics.median(hooked) / plain_med - 1 if plain_med > 0 else 0.0,
        noise=_relative_iqr(hooked),
        used_runs=used,
        params=n_params,
        flops=total_flops,
        components=rows,
    )


def middle_half(totals: list[float]) -> list[int]:
    """Indices of the runs whose totals rank in the middle half (a quarter trimmed at each end; at least one)."""
    order = sorted(range(len(totals)), key=totals.__getitem__)
    cut = len(order) // 4
    return sorted(order[cut : len(order) - cut])


def _relative_iqr(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    q = statistics.quantiles(values, n=4, method="inclusive")
    med = statistics.median(values)
    return (q[2] - q[0]) / med if med > 0 else 0.0


def _row(label: str, prefixes: list[str], calls: int, samples: list[float], used: list[int], total_ms: float,
         flops: int, total_flops: int, params: int, total_params: int) -> ComponentProfile:  # fmt: skip
    ms = statistics.fmean(samples[k] for k in used)
    return ComponentProfile(
        label=label,
        prefixes=prefixes,
        calls=calls,
        time_ms=ms,
        time_share=ms / total_ms if total_ms > 0 else 0.0,
        time_ms_samples=samples,
        flops=flops,
        flop_share=flops / total_flops if total_flops else 0.0,
        params=params,
        param_share=params / total_params if total_params else 0.0,
    )


def profile(
    name: str,
    *,
    input_size: int | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    weights: str = "auto",
    batch_size: int = 1,
    runs: int = 5,
    warmup: int = 1,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    **overrides: Any,
) -> ProfileResult:
    """Build `name` and profile it on the bundled photo (bus.jpg), repeated to `batch_size` images."""
    from visionbench.images import default_image_path, load_image
    from visionbench.models.registry import create_model

    model = create_model(
        name, weights=weights, device=device, dtype=dtype, input_size=input_size, seed=seed, **overrides
    )
    image = load_image(default_image_path())
    batch = model.preprocess([image] * batch_size)
    return profile_model(model, batch, runs=runs, warmup=warmup, progress=progress)
