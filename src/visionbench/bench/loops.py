"""The timed loops of one batch size: the model loop and the end-to-end loop, or a slow model's single loop.

`bench/plan.py` decides which from the first warmup forward; `run_loops` returns the first end-to-end call's
predictions (the output summary and pictures come from them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from visionbench.bench.events import EventSink
from visionbench.bench.plan import LoopPlan
from visionbench.config import BenchConfig
from visionbench.images import load_image
from visionbench.measure.timing import PhaseClock, RepeatPolicy, latency_stats, time_calls
from visionbench.results import BatchResult, LatencyStats, ModelResult


def run_loops(model: Any, batch: Any, bs: int, config: BenchConfig, policy: RepeatPolicy, images: list[Path],
              outputs: Any, prior: list[float], warm_ms: list[float], plan: LoopPlan, out: BatchResult,
              result: ModelResult, events: EventSink) -> list[Any]:  # fmt: skip
    """The plan's loops; the first end-to-end call's predictions ([] without --e2e).

    Two loops: the model loop on prepared tensors, then the end-to-end loop. A slow model's one loop: the
    end-to-end loop (without --e2e the model loop), whose forwards after the counted warmup `prior` are the
    model latency.
    """
    slow = plan.one_loop
    preds: list[Any] = []
    forwards: list[float] = []
    why, source = "", "model loop"
    if not (slow and config.e2e):
        events.emit("phase", phase="model", batch_size=bs)
        with torch.inference_mode():
            forwards, why = time_calls(
                lambda: model.forward(batch), policy, model.device, prior_ms=prior,
                on_sample=lambda n, s, ms: events.emit("sample", loop="model", n=n + len(prior), spent_s=s, ms=ms,
                                                       batch_size=bs),
            )  # fmt: skip
    if config.e2e:
        events.emit("phase", phase="end-to-end", batch_size=bs)
        out.e2e_latency, preds, e2e_forwards = end_to_end(
            model, images, bs, outputs, policy, events, prior_ms=prior if slow else None
        )
        if not result.output_summary:
            result.output_summary = [p.summary() for p in preds]
        if slow:
            forwards = e2e_forwards
            why = out.e2e_latency.stop_reason if out.e2e_latency else policy.stop(prior, sum(prior) / 1e3) or ""
            source = "end-to-end loop forward phase"
    if not slow:
        out.model_latency = latency_stats(
            forwards, kind="model", batch_size=bs, warmup_calls=len(warm_ms), stop_reason=why
        )
        return preds
    if prior:
        source = "counted warmup + " + source if forwards else "counted warmup"
    samples = prior + forwards
    rest = f"{len(forwards)} {'end-to-end forward phase(s)' if config.e2e else 'model loop sample(s)'}"
    n = f"{len(samples)} sample(s): " + (f"{len(prior)} counted warmup + " if prior else "") + rest
    out.model_latency = latency_stats(samples, kind="model", batch_size=bs, warmup_calls=len(warm_ms) - len(prior),
                                      stop_reason=f"{plan.reason}; {n}; {why}", source=source,
                                      counted_warmup=len(prior))  # fmt: skip
    return preds


def end_to_end(
    model: Any,
    images: list[Path],
    bs: int,
    warm_outputs: Any,
    policy: RepeatPolicy,
    events: EventSink,
    prior_ms: list[float] | None = None,
) -> tuple[LatencyStats | None, Any, list[float]]:
    """Decode + preprocess + forward + postprocess per call, each phase timed; pre/postprocessing warmed first.

    Call i takes images i*bs ... i*bs+bs-1 (cyclically), so several images are all seen; the predictions
    of the first call (the first images) are returned for the output summary, with each call's forward
    phase in ms. `prior_ms` (a slow model's counted warmup) counts toward the policy: each forward phase
    is then also reported as a model sample, and when the warmup alone satisfies the policy no call is
    made (stats None; the predictions come from the warmup's outputs).
    """
    device = model.device
    with torch.inference_mode():  # warm the decode/pre/post code paths without paying another forward
        warm_batch = model.preprocess([load_image(images[i % len(images)]) for i in range(bs)])
        warm_preds = model.postprocess(warm_outputs, warm_batch)
    phases: dict[str, list[float]] = {"decode": [], "preprocess": [], "forward": [], "postprocess": []}
    first: list[Any] = []
    calls = [0]
    slow = prior_ms is not None

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
        if slow:  # a timeout during postprocessing still has this forward (stopped.fill_from_events)
            events.emit("sample", loop="model", n=len(prior_ms or []) + calls[0], ms=clock.phases["forward"],
                        batch_size=bs, source="end-to-end forward phase")  # fmt: skip
        preds = model.postprocess(outputs, batch)
        clock.lap("postprocess")
        for k, v in clock.phases.items():
            phases[k].append(v)
        if not first:
            first[:] = preds

    with torch.inference_mode():
        samples, why = time_calls(
            call, policy, device, prior_ms=prior_ms,
            on_sample=lambda n, s, ms: events.emit("sample", loop="end-to-end", n=n, spent_s=s, ms=ms, batch_size=bs),
        )  # fmt: skip
    if not samples:
        return None, warm_preds, []
    stats = latency_stats(samples, kind="end_to_end", batch_size=bs, warmup_calls=1, stop_reason=why, phases_ms=phases)
    return stats, first, phases["forward"]
