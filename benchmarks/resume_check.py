"""What `depth --resume` pays to trust only whole outputs: per image, the wholeness check (npy length from
its header, PNG chunks and CRCs to IEND, sidecar parses) vs the bare existence test it replaced.

Outputs of N metric images (640x480: colour picture, .npy, 16-bit mm PNG, sidecar) are written once to a
temporary folder; both checks then run over them in interleaved rounds (files in the page cache).

    .venv/bin/python benchmarks/resume_check.py [--images 100] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from visionbench.depth import io
from visionbench.depth.outputs import OutputPlan

KW = dict(kind="metric", side_by_side=False, ply=False)


def write_outputs(folder: Path, n: int) -> list[OutputPlan]:
    rng = np.random.default_rng(0)
    base = np.linspace(1, 8, 640 * 480, dtype=np.float32).reshape(480, 640)
    plans = []
    for i in range(n):
        depth = base + rng.normal(0, 0.01, base.shape).astype(np.float32)
        plan = OutputPlan(folder / f"x{i}.jpg", folder / f"x{i}")
        files = plan.files(**KW)
        io.save_image(files["picture"], io.colourise(depth, "metric"))
        io.save_npy(files["npy"], depth)
        io.save_png16_mm(files["png16_mm"], depth)
        io.write_json(files["sidecar"], {"source": str(plan.source)})
        plans.append(plan)
    return plans


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plans = write_outputs(Path(tmp), args.images)
        exists, whole = [], []
        for _ in range(args.rounds):
            t = time.perf_counter()
            assert all(all(p.exists() for p in plan.files(**KW).values()) for plan in plans)
            exists.append((time.perf_counter() - t) * 1e3 / len(plans))
            t = time.perf_counter()
            assert all(plan.complete(**KW) for plan in plans)
            whole.append((time.perf_counter() - t) * 1e3 / len(plans))
    e, w = statistics.median(exists), statistics.median(whole)
    print(f"{args.images} images x {args.rounds} rounds, medians per image:")
    print(f"  exists only   {e:.3f} ms")
    print(f"  whole check   {w:.3f} ms   ({w / e:.1f}x; {(w - e) * 10:.0f} s more per 10,000 images resumed)")


if __name__ == "__main__":
    main()
