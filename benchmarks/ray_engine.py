"""What does Ray Data cost? `depth --engine ray` against the local engine on the same folder, in one run.

    .venv/bin/python benchmarks/ray_engine.py [--images 200] [--model depthpro-tiny] [--size 320x240] [--rounds 2]

Makes a folder of N JPEGs (crops of the two photos that ship with ultralytics), starts a local Ray (timed:
Ray's start-up), then alternates the two engines `--rounds` times over the whole folder, every file written:
  local   run_depth: the model built beforehand, images/s = images / run time
  ray     run_depth_ray on the Ray started above: decode tasks -> model actor pool -> write tasks; its
          images/s once started counts from the first image finished (actor start and model load before it
          are reported apart, as is Ray's start-up), so both figures are the engines' steady rates
  cpu cost the CPU work each image needs outside the model, at --cost-size (decode one JPEG; colour PNG, npy,
          16-bit PNG and sidecar written by the local engine's writers), median of a few, one thread: the
          figure docs/scale.md uses to size the CPUs a GPU needs
Goal: ray images/s once started >= 0.7 x local (both share the same cores; the difference is the engine).
Random weights: speed does not depend on their values.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from PIL import Image  # noqa: E402

import visionbench as vb  # noqa: E402
from visionbench.depth.options import DepthOptions  # noqa: E402
from visionbench.depth.ray_engine import run_depth_ray, start_ray  # noqa: E402
from visionbench.depth.run_depth import run_depth  # noqa: E402
from visionbench.images import sample_images  # noqa: E402


def make_folder(folder: Path, n: int, size: tuple[int, int], seed: int = 0) -> None:
    rng = random.Random(seed)
    photos = [Image.open(p).convert("RGB") for p in sample_images()]
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        im = photos[i % len(photos)]
        w, h = im.size
        cw, ch = int(w * rng.uniform(0.6, 1.0)), int(h * rng.uniform(0.6, 1.0))
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        im.crop((x, y, x + cw, y + ch)).resize(size).save(folder / f"img_{i:04d}.jpg", quality=90)


def cpu_cost(tmp: Path, size: tuple[int, int], repeats: int = 5) -> None:
    import numpy as np

    from visionbench.depth.outputs import OutputPlan, write_image_outputs
    from visionbench.images import load_image

    make_folder(tmp / "cost", 1, size)
    path = tmp / "cost" / "img_0000.jpg"
    w, h = size
    depth = np.fromfunction(lambda y, x: 1.0 + 9.0 * y / h + x / w, (h, w), dtype=np.float32)
    dec, wri = [], []
    for i in range(repeats):
        t = time.perf_counter()
        photo = load_image(path)
        dec.append(time.perf_counter() - t)
        t = time.perf_counter()
        write_image_outputs(OutputPlan(path, tmp / "cost" / f"out_{i}"), photo, depth, kind="metric", focal_px=float(w),
                            cmap="inferno", side_by_side=False, ply=False, ply_stride=1, sidecar={})  # fmt: skip
        wri.append(time.perf_counter() - t)
    d, x = statistics.median(dec) * 1e3, statistics.median(wri) * 1e3
    print(f"cpu cost per {w}x{h} photo (one thread): decode {d:.0f} ms + write {x:.0f} ms = {d + x:.0f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--model", default="depthpro-tiny")
    ap.add_argument("--size", default="320x240", help="WxH of the photos")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--cost-size", default="1920x1080", help="WxH of the photo for the CPU cost per image")
    args = ap.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    import torch

    print(f"machine: {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; {args.images} photos {args.size}, {args.model}, "
          f"batch {args.batch_size}")  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="vb-raybench-"))
    try:
        make_folder(tmp / "photos", args.images, size)  # type: ignore[arg-type]
        started, startup_s = start_ray(None)
        print(f"Ray start-up (local, {os.cpu_count()} CPUs): {startup_s:.2f} s")
        model = vb.create_model(args.model, weights="random", device="cpu")
        local_rates, ray_rates, first_s = [], [], []
        for r in range(args.rounds):
            opts = dict(model=args.model, weights="random", device="cpu", batch_size=args.batch_size)
            out = tmp / f"local_{r}"
            s = run_depth([tmp / "photos"], DepthOptions(out=out, **opts), show_progress=False, model=model)
            assert s.done == args.images, s.failures[:3]
            local_rates.append(s.images_per_s)
            out = tmp / f"ray_{r}"
            t = run_depth_ray([str(tmp / "photos")], DepthOptions(out=out, **opts), show_progress=False)
            assert t.done == args.images, t.failures[:3]
            ray_rates.append(t.steady_images_per_s)
            first_s.append(t.first_image_seconds)
            print(f"round {r + 1}: local {s.images_per_s:.2f} img/s | ray {t.steady_images_per_s:.2f} img/s once "
                  f"started ({t.images_per_s:.2f} counting {t.first_image_seconds:.1f} s to the first image: actor "
                  f"start + model load), {t.actors} actor(s) {t.actor_resources}")  # fmt: skip
            shutil.rmtree(tmp / f"local_{r}")
            shutil.rmtree(tmp / f"ray_{r}")
        lo, ra = statistics.median(local_rates), statistics.median(ray_rates)
        print(
            f"median: local {lo:.2f} img/s, ray {ra:.2f} img/s once started -> ray/local {ra / lo:.2f}x "
            f"(goal >= 0.7x); Ray start-up {startup_s:.1f} s, first image after {statistics.median(first_s):.1f} s"
        )
        cpu_cost(tmp, tuple(int(v) for v in args.cost_size.split("x")))  # type: ignore[arg-type]
        if started:
            import ray

            ray.shutdown()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
