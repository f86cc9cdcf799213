"""What keeping freed memory in the process (measure/allocator.py) changes for a CPU forward, side by side.

Fresh subprocesses alternate, default malloc and tuned malloc, `--pairs` times per model; each builds the
model (random weights, seed 0), warms up once, then times `--calls` forwards on bus.jpg. Printed per side:
median latency over all its calls, the spread (median of the per-process interquartile ranges), kernel CPU
time and minor page faults per forward, and peak RSS. Alternating processes lets drift hit both sides.

    .venv/bin/python benchmarks/malloc_tuning.py [--models yolo11n depth-anything-v2-small] [--pairs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CALLS = {"yolo11n": 30, "depth-anything-v2-small": 6}


def child(name: str, calls: int) -> None:
    import resource
    import time

    from visionbench.measure.allocator import malloc_setting, tune_malloc

    tune_malloc()
    import torch

    import visionbench as vb
    from visionbench.images import default_image_path, load_image

    torch.set_flush_denormal(True)
    model = vb.create_model(name, weights="random", device="cpu", seed=0)
    batch = model.preprocess([load_image(default_image_path())])
    with torch.inference_mode():
        model.forward(batch)
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            model.forward(batch)
            times.append((time.perf_counter() - t0) * 1e3)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "setting": malloc_setting(), "times": times, "sys_s": r1.ru_stime - r0.ru_stime,
        "user_s": r1.ru_utime - r0.ru_utime, "faults": r1.ru_minflt - r0.ru_minflt, "maxrss_mib": r1.ru_maxrss / 1024,
    }))  # fmt: skip


def run_child(name: str, calls: int, tuned: bool) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VISIONBENCH_MALLOC_TUNING": "1" if tuned else "0"}
    out = subprocess.run([sys.executable, __file__, "--child", name, str(calls)], env=env, capture_output=True,
                         text=True, check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(CALLS))
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return 0
    print(f"CPUs {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} at start")
    for name in args.models:
        calls = CALLS.get(name, 10)
        sides: dict[bool, list[dict]] = {False: [], True: []}
        for i in range(args.pairs):
            for tuned in (False, True) if i % 2 == 0 else (True, False):
                sides[tuned].append(run_child(name, calls, tuned))
        print(f"{name}: {args.pairs} processes a side, {calls} timed forwards each, order alternating")
        print(f"  {'malloc':<58}{'median ms':>10}{'IQR ms':>8}{'sys ms/fwd':>11}{'faults/fwd':>11}{'peak MiB':>9}")
        medians = {}
        for tuned, runs in sides.items():
            times = [t for r in runs for t in r["times"]]
            iqr = statistics.median(q[2] - q[0] for q in (statistics.quantiles(r["times"], n=4) for r in runs))
            n = len(times)
            medians[tuned] = statistics.median(times)
            print(f"  {runs[0]['setting']:<58}{medians[tuned]:>10.1f}{iqr:>8.1f}"
                  f"{sum(r['sys_s'] for r in runs) / n * 1e3:>11.1f}{sum(r['faults'] for r in runs) / n:>11.0f}"
                  f"{max(r['maxrss_mib'] for r in runs):>9.0f}")  # fmt: skip
        print(f"  tuned / default median latency: {medians[True] / medians[False]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
