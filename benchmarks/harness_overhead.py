"""Harness overhead: the median visionbench reports vs a bare perf_counter loop around the same forward.

Goal (issue 4): within 2 % for yolo11n and depth-anything-v2-small on CPU. Both measure the same
architecture (same seed, so the same random or cached weights) on the same prepared tensors from
bus.jpg, in this one process, in alternating rounds (bare, visionbench, bare, visionbench, ...) so a
change in machine load hits both sides alike. The ratio of the medians over all rounds is printed.

    .venv/bin/python benchmarks/harness_overhead.py [--rounds 3] [--models yolo11n depth-anything-v2-small]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

import visionbench as vb  # noqa: E402
from visionbench.bench.options import BenchConfig  # noqa: E402
from visionbench.bench.worker import bench_model  # noqa: E402
from visionbench.images import default_image_path, load_image  # noqa: E402
from visionbench.models.base import Batch, VisionModel  # noqa: E402

SAMPLES = {"yolo11n": 40, "depth-anything-v2-small": 10}


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--models", nargs="+", default=list(SAMPLES))
    args = ap.parse_args()
    image = default_image_path()
    print(f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.2f} at start")
    for name in args.models:
        n = SAMPLES.get(name, 10)
        model = vb.create_model(name, device="cpu", seed=0)
        batch = model.preprocess([load_image(image)])
        config = BenchConfig(models=[name], device="cpu", runs=n, budget_s=0.0, e2e=False)
        bare: list[float] = []
        harness: list[float] = []
        for r in range(args.rounds):
            b = bare_loop(model, batch, n)
            result = bench_model(name, config, [image])
            stats = result.primary.model_latency if result.primary else None
            assert stats is not None, result.error
            bare += b
            harness += stats.samples_ms
            bm = statistics.median(b)
            print(f"  {name} round {r + 1}: bare median {bm:.2f} ms, "
                  f"visionbench median {stats.median_ms:.2f} ms, ratio {stats.median_ms / bm:.3f}")  # fmt: skip
        ratio = statistics.median(harness) / statistics.median(bare)
        verdict = "within 2 %" if abs(ratio - 1) <= 0.02 else "OUTSIDE 2 %"
        print(f"{name}: bare {statistics.median(bare):.2f} ms vs visionbench {statistics.median(harness):.2f} ms "
              f"(medians of {len(bare)} / {len(harness)} samples): ratio {ratio:.3f} -> {verdict}")  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.2f} at the end (2 cores; other work on the machine inflates noise)")


if __name__ == "__main__":
    main()
