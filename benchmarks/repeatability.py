"""Repeatability: two back-to-back `visionbench bench` runs of the same model; medians within 5 %.

Each run is the real command (its own worker process, warmup, adaptive repeats); the two medians and
their ratio are printed per model. Around each run a fixed reference workload (float32 matmuls on all
torch threads, 2 s) times the machine itself, so the drift of the machine's own speed between the two runs
is printed next to the drift of the medians: on a shared VM the first explains the second.

    .venv/bin/python benchmarks/repeatability.py [--models yolo11n depth-anything-v2-small] [--budget 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def bench_median(model: str, budget: float, out: Path) -> tuple[float, int]:
    cmd = [sys.executable, "-m", "visionbench", "bench", model, "--device", "cpu", "--no-e2e", "--runs", "10",
           "--budget", str(budget), "--out", str(out), "--json"]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    stats = json.loads(res.stdout)["models"][0]["batches"][0]["model_latency"]
    return stats["median_ms"], stats["count"]


def machine_probe_ms(seconds: float = 2.0) -> float:
    """Median time of a fixed compute block (50 matmuls of 512x512 float32): the machine's speed right now."""
    import statistics
    import time

    import torch

    x = torch.randn(512, 512)
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        for _ in range(50):
            x @ x
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["yolo11n", "depth-anything-v2-small"])
    ap.add_argument("--budget", type=float, default=5.0)
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} at start (2 cores shared with other work: figures are provisional)")
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            p0 = machine_probe_ms()
            a, na = bench_median(model, args.budget, Path(tmp))
            p1 = machine_probe_ms()
            b, nb = bench_median(model, args.budget, Path(tmp))
            p2 = machine_probe_ms()
            diff = abs(a - b) / min(a, b)
            pa, pb = (p0 + p1) / 2, (p1 + p2) / 2  # the machine's speed around each run
            print(f"{model}: machine reference block {p0:.1f} | {p1:.1f} | {p2:.1f} ms before | between | after "
                  f"the runs: the machine itself changed {abs(pb - pa) / min(pa, pb):.1%} from run to run")  # fmt: skip
            verdict = "within 5 %" if diff <= 0.05 else "OUTSIDE 5 %"
            print(f"{model}: run 1 median {a:.2f} ms ({na} samples), run 2 median {b:.2f} ms ({nb} samples): "
                  f"difference {diff:.1%} -> {verdict}")  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
