"""Random-weight construction of full-size DepthPro: library constructor vs visionbench's meta build.

Goal (issue 3): visionbench builds DepthPro with random weights in at most 0.5x the time of
`DepthProForDepthEstimation(config)`. Each variant runs in its own fresh subprocess (same imports
warmed, same thread count), alternating, and the medians are compared in one run.

    .venv/bin/python benchmarks/random_init.py [--repeats 2] [--model depthpro]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, time, resource
import torch
from transformers import DepthProForDepthEstimation, DepthAnythingForDepthEstimation
from visionbench.models.depth_pro import depth_pro_config
from visionbench.models.depth_anything import depth_anything_config
from visionbench.models.materialize import build_with_random_weights
mode, name = sys.argv[1], sys.argv[2]
if name == "depthpro":
    cls, config = DepthProForDepthEstimation, depth_pro_config()
else:
    cls, config = DepthAnythingForDepthEstimation, depth_anything_config(name)
start = time.perf_counter()
if mode == "library":
    model = cls(config).eval()
else:
    model = build_with_random_weights(lambda: cls(config))
seconds = time.perf_counter() - start
params = sum(p.numel() for p in model.parameters())
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "params": params, "peak_rss_kb": peak_kb}))
"""


def run_child(mode: str, name: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, name], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--model", default="depthpro", choices=["depthpro", "large", "base", "small"])
    args = parser.parse_args()
    results: dict[str, list[dict]] = {"library": [], "visionbench": []}
    for _ in range(args.repeats):
        for mode in results:  # alternate so drift in machine load hits both
            results[mode].append(run_child(mode, args.model))
    lib = statistics.median(r["seconds"] for r in results["library"])
    ours = statistics.median(r["seconds"] for r in results["visionbench"])
    assert results["library"][0]["params"] == results["visionbench"][0]["params"]
    params = results["library"][0]["params"]
    print(f"model: {args.model} ({params:,} parameters), torch threads default, {args.repeats} repeats")
    for mode, rows in results.items():
        secs = ", ".join(f"{r['seconds']:.2f}" for r in rows)
        rss = max(r["peak_rss_kb"] for r in rows) / 2**20
        median = statistics.median(r["seconds"] for r in rows)
        print(f"{mode:12s} median {median:6.2f} s  (runs: {secs})  peak RSS {rss:.2f} GiB")
    ratio = ours / lib
    verdict = "met" if ratio <= 0.5 else "NOT met"
    print(f"ratio visionbench / library constructor: {ratio:.2f}x  (goal <= 0.50x: {verdict})")


if __name__ == "__main__":
    main()
