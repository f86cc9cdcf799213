"""A slow model's plan (bench/plan.py), the estimate from the machine's probe and --quick's rule.

Full-size DepthPro takes minutes a forward here, so the slow plan is forced on depthpro-tiny with the
config's thresholds; the forwards it takes are counted with torch's global forward hook on the real module.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from visionbench.bench.eta import Eta, gflop, predicted_forward_s, probe_peak
from visionbench.bench.events import EventSink
from visionbench.bench.stopped import fill_from_events
from visionbench.bench.worker import bench_model
from visionbench.cli.bench_cmd import QUICK_MAX_FORWARD_S, quick_plan
from visionbench.config import BenchConfig
from visionbench.results import OTHER, DevicePeak, ModelResult, ProfileResult

TOP = "DepthProForDepthEstimation"


@contextmanager
def counting_forwards() -> Iterator[list[int]]:
    """Forwards of the real (not meta) top-level DepthPro module while the block runs."""
    count = [0]

    def hook(module: torch.nn.Module, _args: object, _out: object) -> None:
        if type(module).__name__ == TOP and next(module.parameters()).device.type != "meta":
            count[0] += 1

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        yield count
    finally:
        handle.remove()


def _slow_config(device: str, **kw: object) -> BenchConfig:
    # slow_forward_s=0: every forward "dwarfs" the loops; --warmup 3 shows that no second warmup is taken
    base = dict(models=["depthpro-tiny"], device=device, runs=2, budget=0.0, warmup=3, slow_forward_s=0.0,
                count_warmup_s=0.0, profile=True, threads=1)  # fmt: skip
    return BenchConfig(**{**base, **kw})  # type: ignore[arg-type]


def test_slow_model_takes_one_loop_counts_its_warmup_and_profiles_on_it(
    photo_paths: list[Path], device: str, tmp_path: Path
) -> None:
    if device != "cpu":
        pytest.skip("the warmup counts only on a CPU")
    with counting_forwards() as forwards:
        r = bench_model("depthpro-tiny", _slow_config(device), photo_paths, tmp_path, EventSink(tmp_path / "ev.jsonl"))
    assert r.status == "ok", r.error
    b = r.primary
    assert b is not None and b.model_latency is not None and b.e2e_latency is not None
    m, e = b.model_latency, b.e2e_latency
    assert r.plan["loops"] == 1 and r.plan["counted_warmup"] == 1 and "one-loop plan" in r.plan["plan_reason"]
    # the model latency: the counted warmup, then the end-to-end loop's forward phase; nothing timed twice
    assert m.source == "counted warmup + end-to-end loop forward phase" and m.counted_warmup == 1
    assert len(m.warmup_ms) == 1 and m.samples_ms[0] == m.warmup_ms[0]
    assert m.samples_ms[1:] == e.phases_ms["forward"]  # type: ignore[index]
    assert m.count == 2 and e.count == 1 and "2 sample(s): 1 counted warmup + 1" in m.stop_reason
    # one warmup + one end-to-end call, and the profile took no forward of its own
    assert forwards[0] == 2
    p = r.profile
    assert isinstance(p, ProfileResult) and p.runs == 1 and "counted warmup" in p.method
    assert p.hooked_ms == pytest.approx(m.warmup_ms[0])
    assert sum(c.time_ms for c in p.components) == pytest.approx(p.hooked_ms, rel=1e-9)
    assert [c.label for c in p.components][-1] == OTHER and p.components[-1].time_ms >= 0
    assert p.flops == b.flops and sum(c.flops for c in p.components) == p.flops  # FLOPs on a meta copy
    # a timeout after the warmup still has its figure: events carry the counted warmup and the forward phase
    events = [json.loads(line) for line in (tmp_path / "ev.jsonl").read_text().splitlines()]
    stopped = ModelResult(name="depthpro-tiny", status="timeout", error="timeout")
    assert fill_from_events(stopped, events)
    kept = stopped.batches[0].model_latency
    assert kept is not None and kept.samples_ms == pytest.approx(m.samples_ms)


def test_slow_model_without_a_counted_warmup_profiles_with_one_extra_forward(
    photo_paths: list[Path], device: str
) -> None:
    config = _slow_config(device, count_warmup_s=1e6)  # no warmup is long enough to count
    with counting_forwards() as forwards:
        r = bench_model("depthpro-tiny", config, photo_paths)
    assert r.status == "ok", r.error
    m = r.primary.model_latency  # type: ignore[union-attr]
    assert m is not None and m.counted_warmup == 0 and m.source == "end-to-end loop forward phase"
    assert r.plan["counted_warmup"] == 0 and "warmup not counted" in r.plan["plan_reason"]
    assert m.count == 2 and m.samples_ms == r.primary.e2e_latency.phases_ms["forward"]  # type: ignore[union-attr]
    # a first forward under count_warmup_s is checked by a warm one; then two end-to-end calls and one
    # hooked forward for the profile
    assert forwards[0] == 2 + 2 + 1 and m.warmup_calls == 2
    p = r.profile
    assert isinstance(p, ProfileResult) and p.runs == 1 and p.forward_ms_samples == m.samples_ms


def test_a_fast_model_keeps_two_loops(photo_paths: list[Path], device: str) -> None:
    config = BenchConfig(models=["depthpro-tiny"], device=device, runs=2, budget=0.0, threads=1)
    r = bench_model("depthpro-tiny", config, photo_paths[:1])
    assert r.status == "ok", r.error
    m = r.primary.model_latency  # type: ignore[union-attr]
    assert r.plan["loops"] == 2 and m is not None and m.source == "model loop" and m.counted_warmup == 0


def _peak(flops_per_s: float) -> DevicePeak:
    return DevicePeak(device="test", dtype="float32", matmul_flops_per_s=flops_per_s, matmul_size=2048,
                      matmul_samples=3)  # fmt: skip


def test_estimate_from_the_probe_scales_with_flops_and_the_probe() -> None:
    config = BenchConfig(models=["depthpro", "depth-anything-v2-small"])
    slow, fast = Eta(config, "cpu", _peak(100e9)), Eta(config, "cpu", _peak(200e9))
    ratio_flops = gflop("depthpro") / gflop("depth-anything-v2-small")
    own = slow.forward_s("depthpro") / slow.forward_s("depth-anything-v2-small")
    assert own == pytest.approx(
        ratio_flops * slow.utilisation("depth-anything-v2-small") / slow.utilisation("depthpro")
    )
    assert slow.forward_s("depthpro") == pytest.approx(2 * fast.forward_s("depthpro"))
    assert 0 < fast.model_s("depth-anything-v2-small") < fast.model_s("depthpro")
    # a finished model that reached twice its family's prior halves the estimate of its family's next one
    before = slow.forward_s("depth-anything-v2-base")
    twice = 2 * slow.utilisation("depth-anything")
    done = ModelResult(name="depth-anything-v2-small", status="ok", peak=_peak(100e9),
                       batches=[{"batch_size": 1, "status": "ok", "utilisation": twice}])  # fmt: skip
    slow.observe(done)
    assert slow.forward_s("depth-anything-v2-base") == pytest.approx(before / 2)


def test_the_probe_runs_apart_and_leaves_this_process_alone() -> None:
    threads = torch.get_num_threads()
    peak = probe_peak("cpu", "float32", 1)
    assert peak is not None and peak.matmul_flops_per_s > 1e8 and peak.threads == 1
    assert torch.get_num_threads() == threads
    assert predicted_forward_s("depthpro", peak, "cpu") > predicted_forward_s("yolo11n", peak, "cpu") > 0


def test_quick_keeps_depthpro_where_one_forward_is_affordable() -> None:
    # the probe figure that puts DepthPro's predicted forward at a given number of seconds
    def peak_for(seconds: float) -> DevicePeak:
        return _peak(predicted_forward_s("depthpro", _peak(1e12), "cpu") * 1e12 / seconds)

    keep, plans, cuts = quick_plan(["depthpro", "yolo11n"], "cpu", peak=peak_for(QUICK_MAX_FORWARD_S / 2))
    assert keep == ["depthpro", "yolo11n"] and plans["depthpro"].runs == 1 and plans["depthpro"].budget_s == 0
    assert any(c.startswith("depthpro: one forward") for c in cuts)
    keep, plans, cuts = quick_plan(["depthpro", "yolo11n"], "cpu", peak=peak_for(QUICK_MAX_FORWARD_S * 2))
    assert keep == ["yolo11n"] and any("depthpro skipped" in c for c in cuts)
    keep, plans, _ = quick_plan(["depthpro"], "cpu", peak=peak_for(1.0))  # a fast machine: the usual quick plan
    assert keep == ["depthpro"] and "depthpro" not in plans
