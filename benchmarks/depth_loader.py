"""Does the streaming loader keep the model busy? Images/s of the model alone vs fed by the loader, one run.

    .venv/bin/python benchmarks/depth_loader.py [--images 200] [--model depthpro-tiny] [--batch-size 4]

Makes a folder of N JPEGs (crops of the two photos that ship with ultralytics), then measures, in this order:
  model alone   forward passes over batches decoded and preprocessed beforehand (tensors in memory)
  loader        the same forwards fed from disk: decoding threads -> same-shape batches -> preprocessing
                in a background thread (visionbench.depth.loader) -> forward in the main thread
  (the two alternate chunk by chunk (--rounds chunks), so drift in the machine's load hits both alike)
  full `depth`  the whole pipeline with postprocessing and every file written, once (for information)
  loader cost   decode and preprocessing of a sample, one thread, no model running: the CPU time the loader
                must take from the forward per image, and the best ratio any loader could reach when the
                forward keeps every core busy: forward / (forward + loader cost / cores)
Goal: loader images/s >= 0.9 x model alone. Random weights: speed does not depend on their values.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from visionbench.measure.allocator import tune_malloc  # noqa: E402

tune_malloc()  # as the `depth` command runs (cli callback): both paths measured with the same allocator

import torch  # noqa: E402
from PIL import Image  # noqa: E402

import visionbench as vb  # noqa: E402
from visionbench.depth.loader import group_batches, prefetch, stream_images  # noqa: E402
from visionbench.depth.options import DepthOptions  # noqa: E402
from visionbench.depth.predict import batch_key  # noqa: E402
from visionbench.depth.run_depth import run_depth  # noqa: E402
from visionbench.images import load_image, sample_images  # noqa: E402
from visionbench.models.base import Batch, VisionModel  # noqa: E402


def make_folder(folder: Path, n: int, size: tuple[int, int], seed: int = 0) -> list[Path]:
    rng = random.Random(seed)
    photos = [Image.open(p).convert("RGB") for p in sample_images()]
    paths = []
    for i in range(n):
        im = photos[i % len(photos)]
        w, h = im.size
        cw, ch = int(w * rng.uniform(0.6, 1.0)), int(h * rng.uniform(0.6, 1.0))
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        path = folder / f"img_{i:04d}.jpg"
        im.crop((x, y, x + cw, y + ch)).resize(size).save(path, quality=90)
        paths.append(path)
    return paths


def model_alone(model: VisionModel, batches: list[Batch]) -> float:
    n = sum(b.batch_size for b in batches)
    t = time.perf_counter()
    with torch.inference_mode():
        for b in batches:
            model.forward(b)
    return n / (time.perf_counter() - t)


def with_loader(model: VisionModel, paths: list[Path], batch_size: int, workers: int | None) -> float:
    n = 0
    t = time.perf_counter()
    stream = stream_images(paths, workers=workers, read_exif=True)
    batches = group_batches(stream, batch_size, key=batch_key(model))
    with torch.inference_mode():
        prep = lambda items: model.preprocess([it.image for it in items])  # noqa: E731
        for batch in prefetch(batches, prep, depth=2, torch_threads=1 if model.device.type == "cpu" else None):
            model.forward(batch)
            n += batch.batch_size
    return n / (time.perf_counter() - t)


def loader_cost_ms(model: VisionModel, paths: list[Path], batch_size: int) -> tuple[float, float]:
    """(decode, preprocess) milliseconds per image, serial on one torch thread: the loader's own CPU work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t = time.perf_counter()
        images = [load_image(p) for p in paths]
        decode = (time.perf_counter() - t) / len(paths)
        t = time.perf_counter()
        for i in range(0, len(images), batch_size):
            model.preprocess(images[i : i + batch_size])
        return decode * 1e3, (time.perf_counter() - t) / len(paths) * 1e3
    finally:
        torch.set_num_threads(threads)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument(
        "--model", default="depthpro-tiny", help="depthpro-tiny or depth-anything-v2-tiny (any depth model)"
    )
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--device", default="cpu", help="where the model runs (cpu, cuda, ...)")
    ap.add_argument("--size", default="640x480", help="WxH of the generated JPEGs")
    ap.add_argument("--workers", type=int, default=None, help="decoding threads (default: the loader's own)")
    ap.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="chunks the images are split into; model-alone and loader alternate per chunk",
    )
    args = ap.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))

    with tempfile.TemporaryDirectory(prefix="vb-loader-") as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        paths = make_folder(folder, args.images, size)  # type: ignore[arg-type]
        model = vb.create_model(args.model, weights="random", device=args.device)
        images = [load_image(p) for p in paths]
        pre = [model.preprocess(images[i : i + args.batch_size]) for i in range(0, len(images), args.batch_size)]
        del images
        model_alone(model, pre[:2])  # warmup
        # alternate chunk by chunk, so that drift in the machine's load hits both paths alike
        chunk = max(args.batch_size, -(-args.images // args.rounds) // args.batch_size * args.batch_size)
        per_batch = chunk // args.batch_size
        alone, loader = [], []
        for r in range(0, len(paths), chunk):
            alone.append(model_alone(model, pre[r // args.batch_size : r // args.batch_size + per_batch]))
            loader.append(with_loader(model, paths[r : r + chunk], args.batch_size, args.workers))
        decode_ms, prep_ms = loader_cost_ms(model, paths[:40], args.batch_size)
        opts = DepthOptions(out=Path(tmp) / "out", batch_size=args.batch_size, workers=args.workers)
        full = run_depth([folder], opts, show_progress=False, model=model).images_per_s

    med_alone = statistics.median(alone)  # images/s per chunk
    ratio = statistics.median(b / a for a, b in zip(alone, loader, strict=True))  # robust to drift between chunks
    print(
        f"{args.images} JPEGs {size[0]}x{size[1]}, {args.model} (random weights), batch {args.batch_size}, "
        f"torch threads {torch.get_num_threads()}, CPUs {os.cpu_count()}, {len(alone)} alternating chunks of {chunk}"
    )
    print(f"{'path':<50}{'images/s (median)':>18}{'per chunk':>34}{'vs alone':>10}")
    rows = [("model alone, pre-decoded tensors (forward only)", alone),
            ("loader -> model (decode + preprocess + forward)", loader),
            ("full `depth` pipeline (+ postprocess + writes)", [full])]  # fmt: skip
    for name, values in rows:
        med = statistics.median(values)
        spread = " ".join(f"{v:.1f}" for v in values)
        print(f"{name:<50}{med:>18.2f}{spread:>34}{med / med_alone:>9.2f}x")
    forward_ms, cores = 1e3 / med_alone, os.cpu_count() or 1
    best = forward_ms / (forward_ms + (decode_ms + prep_ms) / cores)
    print(
        f"loader cost per image, one thread: decode {decode_ms:.2f} ms + preprocess {prep_ms:.2f} ms; forward "
        f"{forward_ms:.2f} ms per image on {torch.get_num_threads()} threads; best any loader can reach on "
        f"{cores} cores kept busy by the forward: {best:.2f}"
    )
    per_round = " ".join(f"{b / a:.2f}" for a, b in zip(alone, loader, strict=True))
    verdict = "PASS" if ratio >= 0.9 else "FAIL"
    print(f"loader / model alone = {ratio:.2f} (median of per-chunk ratios {per_round}; goal >= 0.90): {verdict}")
    return 0 if ratio >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
