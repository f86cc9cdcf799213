"""The prior utilisations of bench/eta.py: each model's achieved FLOP/s against the matmul probe, on this machine.

    OMP_NUM_THREADS=2 python benchmarks/eta_priors.py [MODEL ...]

Each model is timed (one warmup, then a few forwards) between two probes in the workers' settings
(`benchmark_process`), so a phase of contention shows as a spread between the two probe figures.
Full-size models, random weights; DepthPro is left out by default (one forward takes minutes here).
"""

from __future__ import annotations

import statistics
import sys
import time

import torch

import visionbench as vb
from visionbench.bench.process import benchmark_process
from visionbench.images import load_image, sample_images
from visionbench.measure.flops import meta_flops
from visionbench.measure.peak import measure_peak

MODELS = {"yolo11n": 7, "yolo11n-seg": 5, "mobile-sam": 3, "depth-anything-v2-small": 3, "depth-anything-v2-base": 3}


def main(names: list[str]) -> None:
    image = load_image(sample_images()[0])
    with benchmark_process(None):
        print(f"threads {torch.get_num_threads()}")
        for name in names or list(MODELS):
            before = measure_peak("cpu", "float32").matmul_flops_per_s
            model = vb.create_model(name, weights="random", device="cpu")
            batch = model.preprocess([image])
            flops = meta_flops(name, batch, model.input_size) or 0
            times = []
            with torch.inference_mode():
                model.forward(batch)
                for _ in range(MODELS.get(name, 2)):
                    t0 = time.perf_counter()
                    model.forward(batch)
                    times.append(time.perf_counter() - t0)
            after = measure_peak("cpu", "float32").matmul_flops_per_s
            med = statistics.median(times)
            util = flops / med / ((before + after) / 2)
            probe = f"probe {before / 1e9:.1f} / {after / 1e9:.1f} GFLOP/s"
            rate = f"{flops / med / 1e9:.1f} GFLOP/s"
            print(
                f"{name}: {flops / 1e9:.2f} GFLOP, median {med * 1e3:.1f} ms = {rate}; {probe}; util {util:.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main(sys.argv[1:])
