"""The per-component figures the docs quote, each measured side by side in this one run (one torch thread
where a row says so; medians of --repeats interleaved repeats).

  preprocess     DepthPro preprocessing of 4 photos 640x480: visionbench's resize-first path vs the
                 transformers processor it replaces (one torch thread, as the loader's thread runs it)
  png            a smooth 640x480 depth map written as the colour picture and as the 16-bit mm PNG, at
                 zlib level 1 (what `depth` writes) vs Pillow's default level 6; file sizes too
  stats          statistics of every leaf output of yolo11n at 640 px (54 M values, recorded once):
                 the fused C kernel vs the torch CPU path (StatsEngine(fused=False))
  kernel build   compiling the fused kernel into an empty cache folder
  picture parts  a picture writer's work on yolo11n's 88 conv grids, one thread: the grids (numpy), and
                 Pillow's PNG of them as grey images (rows filtered) vs palette images (what ships)
  bookkeeping    the pass of a yolo11n `all`-leaf dissection with the statistics stubbed out vs a plain
                 forward: what torch's hook dispatch and the per-call records cost on their own

    .venv/bin/python benchmarks/component_costs.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from visionbench.measure.allocator import tune_malloc  # noqa: E402

tune_malloc()  # as the CLI runs

import torch  # noqa: E402
from PIL import Image  # noqa: E402

import visionbench as vb  # noqa: E402
from visionbench.images import default_image_path, load_image, sample_images  # noqa: E402


def interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median milliseconds of each function, the functions taking turns so drift hits all alike."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append((time.perf_counter() - t0) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def row(label: str, ms: float, base: float | None = None, extra: str = "") -> None:
    ratio = f"{ms / base:8.2f}x" if base else " " * 9
    print(f"  {label:<52}{ms:10.2f} ms{ratio}  {extra}")


def preprocess(repeats: int) -> None:
    model = vb.create_model("depthpro-tiny", weights="random", device="cpu")
    photos = [load_image(p).resize((640, 480)) for p in sample_images()] * 2
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t = interleaved({
            "ours": lambda: model.preprocess(photos),
            "processor": lambda: model.processor(images=photos, return_tensors="pt"),
        }, repeats)  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    print("preprocess: DepthPro, 4 photos 640x480, one torch thread")
    row("transformers DepthProImageProcessor", t["processor"])
    row("visionbench resize-first (same tensor to 1e-5)", t["ours"], t["processor"])


def png(repeats: int) -> None:
    from visionbench.depth import io as dio

    smooth = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(0)) * 5 + 1
    depth = torch.nn.functional.interpolate(smooth, size=(480, 640), mode="bilinear")[0, 0].numpy()
    picture = dio.colourise(depth, "metric", "inferno")
    mm = Image.fromarray(dio.depth_to_png16(depth))

    def encode(image: Image.Image, level: int) -> int:
        buf = io.BytesIO()
        image.save(buf, format="PNG", compress_level=level)
        return len(buf.getvalue())

    jobs = {f"{name} level {lvl}": (lambda im=im, lvl=lvl: encode(im, lvl))
            for name, im in (("colour", picture), ("16-bit mm", mm)) for lvl in (1, 6)}  # fmt: skip
    t = interleaved(jobs, repeats)  # type: ignore[arg-type]
    print("png: a smooth 640x480 depth map (bilinear from 64x64 noise), one thread")
    for name in ("colour", "16-bit mm"):
        six, one = t[f"{name} level 6"], t[f"{name} level 1"]
        s6, s1 = jobs[f"{name} level 6"](), jobs[f"{name} level 1"]()
        row(f"{name}: Pillow's default level 6", six, extra=f"{s6 / 1024:,.0f} KiB")
        row(f"{name}: level 1 (what `depth` writes)", one, six, extra=f"{s1 / 1024:,.0f} KiB ({s1 / s6 - 1:+.0%})")


def yolo_outputs() -> tuple[vb.VisionModel, list[torch.Tensor]]:
    from visionbench.dissect.select import select_layers

    model = vb.create_model("yolo11n", weights="random", device="cpu")
    batch = model.preprocess([load_image(default_image_path())])
    outs: list[torch.Tensor] = []

    def keep(_m: object, _i: object, out: object) -> None:
        if isinstance(out, torch.Tensor):
            outs.append(out.clone().reshape(-1))

    handles = [m.register_forward_hook(keep) for _, m in select_layers(model.module, "all", None)]
    with torch.inference_mode():
        model.forward(batch)
    for h in handles:
        h.remove()
    return model, outs


def stats(repeats: int, outs: list[torch.Tensor]) -> None:
    from visionbench.dissect.stats import StatsEngine

    def run(fused: bool) -> None:
        engine = StatsEngine(torch.device("cpu"), fused=fused)
        for x in outs:
            engine.add(x)
        engine.fetch()

    fused = StatsEngine(torch.device("cpu")).kernel is not None
    t = interleaved({"torch": lambda: run(False), "fused": lambda: run(True),
                     "sum": lambda: [x.sum() for x in outs]}, repeats)  # fmt: skip
    print(f"stats: every leaf output of yolo11n at 640 px, {len(outs)} tensors, "
          f"{sum(x.numel() for x in outs) / 1e6:.1f} M values")  # fmt: skip
    row("one torch `sum` over each (for scale)", t["sum"])
    row("torch CPU path (aminmax, sum, dot, counts)", t["torch"])
    row("fused C kernel" if fused else "fused C kernel: NOT AVAILABLE (no compiler)", t["fused"], t["torch"])


def kernel_build() -> None:
    import visionbench.dissect.fused_stats as fs

    with tempfile.TemporaryDirectory() as tmp:
        old = os.environ.get("XDG_CACHE_HOME")
        os.environ["XDG_CACHE_HOME"] = tmp
        fs.load_kernel.cache_clear()
        try:
            t0 = time.perf_counter()
            ok = fs.load_kernel() is not None
            ms = (time.perf_counter() - t0) * 1e3
        finally:
            if old is None:
                os.environ.pop("XDG_CACHE_HOME")
            else:
                os.environ["XDG_CACHE_HOME"] = old
            fs.load_kernel.cache_clear()
    print("kernel build: fused statistics kernel into an empty cache folder")
    row("compile and load" if ok else "compile and load: FAILED (torch path used)", ms)


def bookkeeping(repeats: int, model: vb.VisionModel) -> None:
    from visionbench.dissect import DissectOptions, dissect_model
    from visionbench.dissect.stats import StatsEngine

    image = load_image(default_image_path())
    batch = model.preprocess([image])
    opts = DissectOptions(layers="all", pictures=False, summary_plots=False)
    real = StatsEngine.add

    def stub(self: StatsEngine, _t: torch.Tensor) -> int:
        self._values.append([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])  # noqa: SLF001
        return len(self._values) - 1  # noqa: SLF001

    def plain() -> float:
        t0 = time.perf_counter()
        with torch.inference_mode():
            model.forward(batch)
        return time.perf_counter() - t0

    def stubbed(out: Path) -> float:
        StatsEngine.add = stub  # type: ignore[method-assign]
        try:  # the pass alone, as dissect_cost.py reports it: not the setup and layers.json around it
            return dissect_model(model, image, out, opts).seconds
        finally:
            StatsEngine.add = real  # type: ignore[method-assign]

    with tempfile.TemporaryDirectory() as tmp:
        plain(), stubbed(Path(tmp))
        runs = [(plain(), stubbed(Path(tmp))) for _ in range(repeats)]
    t = {k: statistics.median(r[i] for r in runs) * 1e3 for i, k in enumerate(("plain", "stubbed"))}
    print("bookkeeping: yolo11n `all`-leaf dissection pass, statistics stubbed out")
    row("plain forward", t["plain"])
    row("hooks + records, no statistics", t["stubbed"], t["plain"])


def picture_parts(repeats: int, model: vb.VisionModel) -> None:
    import io

    import numpy as np

    from visionbench.dissect import pictures
    from visionbench.dissect.select import select_layers

    batch = model.preprocess([load_image(default_image_path())])
    maps: list[np.ndarray] = []  # the first 16 channels of every conv output, as the writer gets them

    handles = [m.register_forward_hook(lambda _m, _i, o: maps.append(o[0, :16].float().numpy().copy()))
               for _, m in select_layers(model.module, "conv", None)]  # fmt: skip
    with torch.inference_mode():
        model.forward(batch)
    for h in handles:
        h.remove()
    grids = [pictures.channel_grid(m) for m in maps]

    def encode(as_palette: bool) -> None:
        for g in grids:
            image = Image.fromarray(g)
            if as_palette:
                image = Image.frombuffer("P", g.shape[::-1], g, "raw", "P", 0, 1)
                image.putpalette(pictures.GREY_RAMP)
            image.save(io.BytesIO(), format="PNG", compress_level=0)

    t = interleaved({
        "grids": lambda: [pictures.channel_grid(m) for m in maps],
        "grey": lambda: encode(False),
        "palette": lambda: encode(True),
    }, repeats)  # fmt: skip
    megabytes = sum(g.nbytes for g in grids) / 1e6
    print(f"picture parts: yolo11n's {len(grids)} conv grids ({megabytes:.1f} MB of pixels), one thread")
    row("grids (numpy: normalise, tiles)", t["grids"])
    row("PNG (Pillow, stored): grey image, rows filtered", t["grey"])
    row("PNG (Pillow, stored): palette image, as shipped", t["palette"], t["grey"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    print(f"torch threads {torch.get_num_threads()}, CPUs {os.cpu_count()}, load {os.getloadavg()[0]:.2f}")
    preprocess(args.repeats)
    png(args.repeats)
    model, outs = yolo_outputs()
    stats(args.repeats, outs)
    del outs
    kernel_build()
    picture_parts(args.repeats, model)
    bookkeeping(args.repeats, model)


if __name__ == "__main__":
    main()
