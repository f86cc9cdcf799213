"""Harness overhead: the median visionbench reports vs a bare perf_counter loop around the same forward.

Goal (issue 4): within 2 % for yolo11n and depth-anything-v2-small on CPU. Both measure the same
architecture (same seed, so the same random or cached weights) on the same prepared tensors from
bus.jpg, in this one process, in alternating rounds whose order flips each round (bare then visionbench,
visionbench then bare, ...), so drift in the machine's speed hits both sides alike. Both run with
denormals flushed to zero, as the harness sets it (otherwise the first bare round alone runs without).
The verdict uses the median of the per-round ratios; the ratio of the pooled medians is printed too.

A second, paired measurement isolates the timing loop itself from the machine's drift: on one model
instance, adjacent pairs of calls, one bare and one through `measure.timing.time_calls` (the loop `bench`
uses, one sample per call, order flipping each pair); the median of the per-pair ratios is printed. On a
noisy machine the round-based ratio wanders by several percent either way while the paired one does not,
which tells the harness's cost from the machine's.

    .venv/bin/python benchmarks/harness_overhead.py [--rounds 6] [--models yolo11n depth-anything-v2-small]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

import visionbench as vb  # noqa: E402
from visionbench.bench.worker import bench_model  # noqa: E402
from visionbench.config import BenchConfig  # noqa: E402
from visionbench.images import default_image_path, load_image  # noqa: E402
from visionbench.measure.allocator import tune_malloc  # noqa: E402
from visionbench.measure.timing import RepeatPolicy, time_calls  # noqa: E402
from visionbench.models.base import Batch, VisionModel  # noqa: E402

SAMPLES = {"yolo11n": 40, "depth-anything-v2-small": 10}
PAIRS = {"yolo11n": 100, "depth-anything-v2-small": 20}


def bare_loop(model: VisionModel, batch: Batch, n: int) -> list[float]:
    """What a careful script does: warm up once, then perf_counter around each forward (CPU: no sync needed)."""
    out = []
    with torch.inference_mode():
        model.forward(batch)
        for _ in range(n):
            t0 = time.perf_counter()
            model.forward(batch)
            out.append((time.perf_counter() - t0) * 1e3)
    return out


def paired_ratios(model: VisionModel, batch: Batch, pairs: int) -> list[float]:
    """Per adjacent pair: (call timed by visionbench's loop) / (bare call), order flipping each pair."""
    once = RepeatPolicy(min_runs=1, budget_s=0.0)
    ratios = []
    with torch.inference_mode():
        model.forward(batch)
        for i in range(pairs):
            timed = bare = 0.0
            for side in ("harness", "bare") if i % 2 else ("bare", "harness"):
                if side == "bare":
                    t0 = time.perf_counter()
                    model.forward(batch)
                    bare = (time.perf_counter() - t0) * 1e3
                else:
                    (timed,), _ = time_calls(lambda: model.forward(batch), once, "cpu")
            ratios.append(timed / bare)
    return ratios


def _harness(name: str, config: BenchConfig, image: object) -> list[float]:
    """The samples `visionbench bench` reports: the worker's own function, model built afresh as it does."""
    result = bench_model(name, config, [image])  # type: ignore[list-item]
    stats = result.primary.model_latency if result.primary else None
    assert stats is not None, result.error
    return stats.samples_ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--models", nargs="+", default=list(SAMPLES))
    args = ap.parse_args()
    image = default_image_path()
    torch.set_flush_denormal(True)  # what bench_model sets for its own loop: both sides in the same float mode
    tune_malloc()  # likewise its allocator setting (measure/allocator.py), before any bare call
    print(f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.2f} at start")
    for name in args.models:
        n = SAMPLES.get(name, 10)
        model = vb.create_model(name, device="cpu", seed=0)
        batch = model.preprocess([load_image(image)])
        config = BenchConfig(models=[name], device="cpu", runs=n, budget=0.0, e2e=False)
        bare: list[float] = []
        harness: list[float] = []
        ratios: list[float] = []
        for r in range(args.rounds):
            if r % 2:
                hs = _harness(name, config, image)
                b = bare_loop(model, batch, n)
            else:
                b = bare_loop(model, batch, n)
                hs = _harness(name, config, image)
            bare += b
            harness += hs
            ratios.append(statistics.median(hs) / statistics.median(b))
            first = "visionbench first" if r % 2 else "bare first"
            print(f"  {name} round {r + 1} ({first}): bare median {statistics.median(b):.2f} ms, "
                  f"visionbench median {statistics.median(hs):.2f} ms, ratio {ratios[-1]:.3f}")  # fmt: skip
        ratio = statistics.median(ratios)
        pooled = statistics.median(harness) / statistics.median(bare)
        verdict = "within 2 %" if abs(ratio - 1) <= 0.02 else "OUTSIDE 2 %"
        print(f"{name}: median of per-round ratios {ratio:.3f} -> {verdict}; pooled medians bare "
              f"{statistics.median(bare):.2f} ms vs visionbench {statistics.median(harness):.2f} ms "
              f"({len(bare)} / {len(harness)} samples): ratio {pooled:.3f}")  # fmt: skip
        pairs = paired_ratios(model, batch, PAIRS.get(name, 20))
        q = statistics.quantiles(pairs, n=4)
        print(f"{name}: paired, {len(pairs)} adjacent pairs (timing loop vs bare call): median ratio "
              f"{statistics.median(pairs):.4f}, quartiles {q[0]:.3f} .. {q[2]:.3f}")  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.2f} at the end (2 cores; other work on the machine inflates noise)")


if __name__ == "__main__":
    main()
