"""Repeatability: two back-to-back `visionbench bench` runs of the same model; medians within 5 %.

Each run is the real command (its own worker process, warmup, adaptive repeats); the two medians and
their ratio are printed per model.

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["yolo11n", "depth-anything-v2-small"])
    ap.add_argument("--budget", type=float, default=5.0)
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} at start (2 cores shared with other work: figures are provisional)")
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            (a, na), (b, nb) = (bench_median(model, args.budget, Path(tmp)) for _ in range(2))
            diff = abs(a - b) / min(a, b)
            verdict = "within 5 %" if diff <= 0.05 else "OUTSIDE 5 %"
            print(f"{model}: run 1 median {a:.2f} ms ({na} samples), run 2 median {b:.2f} ms ({nb} samples): "
                  f"difference {diff:.1%} -> {verdict}")  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
