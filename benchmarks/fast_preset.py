"""The fast preset on this machine: each variant's speed-up and accuracy cost, side by side in one worker each.

    .venv/bin/python benchmarks/fast_preset.py [--models depth-anything-v2-small,yolo11n] [--threads 2]

For each model: the main float32 eager measurement, then every piece of `--preset fast` alone (bfloat16,
float16, sdpa, channels-last, fused, compile, cuda-graphs) and the combination of the pieces that helped,
each timed in the same process right after the main figure (bench/variants.py), so a ratio compares two
figures taken side by side. Prints one line per variant: status, speed-up, accuracy cost or the reason it
did not apply. Random weights unless the pretrained ones are cached: speed does not depend on their values;
the accuracy cost of a detector with random weights has no boxes to compare.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")

from visionbench.bench.worker import bench_model  # noqa: E402
from visionbench.config import BenchConfig  # noqa: E402
from visionbench.images import sample_images  # noqa: E402
from visionbench.measure.environment import cpu_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="depth-anything-v2-small,yolo11n")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    print(f"machine: {cpu_model()}, {os.cpu_count()} logical cores; device {args.device}")
    for name in args.models.split(","):
        config = BenchConfig(models=[name], device=args.device, threads=args.threads, runs=args.runs, budget=2.0,
                             e2e=False, preset="fast")  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            r = bench_model(name, config, sample_images()[:1], Path(tmp))
        if r.status != "ok" or r.primary is None:
            print(f"{name}: {r.status} {r.error}")
            continue
        p = r.primary
        print(f"{name} ({r.weights.mode if r.weights else '?'} weights, {r.input_size} px): float32 eager "
              f"{p.model_latency.median_ms:.1f} ms over {p.model_latency.count} runs, utilisation "
              f"{p.utilisation:.1%} of the measured {r.peak.matmul_flops_per_s / 1e9:.0f} GFLOP/s matmul "
              "peak")  # fmt: skip
        for v in r.variants:
            if v.status == "ok" and v.latency is not None:
                acc = ", ".join(f"{k} {val:.2e}" if val is not None else f"{k} n/a" for k, val in v.accuracy.items())
                print(f"  {v.name:13} x{v.speedup:.2f} ({v.latency.median_ms:.1f} ms, {v.latency.count} runs; first "
                      f"call {v.compile_s:.1f} s) {acc}; applied: {'; '.join(v.applied)}")  # fmt: skip
            else:
                print(f"  {v.name:13} {v.status}: {v.reason}")


if __name__ == "__main__":
    main()
