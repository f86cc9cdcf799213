"""What a one-pass dissection costs next to one plain forward, measured side by side in one run.

Goals (issue 5), on CPU for yolo11n (640 px) and depth-anything-v2-small (518 px), random weights, bus.jpg:
  * every leaf layer, statistics only          <= 1.3x one plain forward's time
  * default conv selection with PNG + NPY      <= 2.0x
  * peak memory of the dissection              <= 1.3x a plain forward's peak
`floor`: every leaf hooked with only aminmax, sum and dot (sum of squares): the least any statistics built
from torch's CPU kernels can cost (no counts, no bookkeeping); when it alone passes 1.3x, only a fused
hand-written kernel could meet the goal.
Time: median of interleaved repeats after warm-up, all in this process, each timed step right after an
untimed plain forward (so no mode inherits a cold start from the one before: after the matplotlib plots a
plain forward measured 83 ms, after a dissection 65 ms); the dissection's figure is its
`seconds` (the hooked forward plus waiting for the picture writers to finish every file; the summary plots,
fixed-cost matplotlib figures drawn once after the pass, are reported apart as `+plots`). Repeats write
over the same folder, as re-running a dissection does; `new-folder` writes every file anew (creating files
costs more than overwriting them). The pictures are written by background threads (dissect/writer.py).
Memory: peak RSS (ru_maxrss) of separate fresh subprocesses that build the same model and read the same
image, then run either one plain forward or one dissection; baseline = RSS just before that step, so
`peak - baseline` is what the step itself added on top of Python, libraries and weights.

    python benchmarks/dissect_cost.py             # yolo11n + depth-anything-v2-small
    python benchmarks/dissect_cost.py --depthpro  # also full-size DepthPro (random weights): minutes
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from visionbench.measure.allocator import tune_malloc  # noqa: E402

tune_malloc()  # as the `dissect` command runs (cli callback), in this process and in every child

LAST: dict[str, float] = {}  # the last dissection's pass and total seconds
MODES = {
    "plain": None,
    "floor": None,
    "all-stats": {"layers": "all", "pictures": False, "summary_plots": False},
    "conv-png-npy": {"summary_plots": False},
    "new-folder": {"summary_plots": False},
    "conv-png-npy+plots": {},
}
FRESH = iter(range(1 << 30))


def _build(name: str):
    import visionbench as vb
    from visionbench.images import default_image_path, load_image

    model = vb.create_model(name, weights="random", device="cpu")
    return model, load_image(default_image_path())


def _run(model, image, mode: str, out: Path) -> float:
    import torch

    from visionbench.dissect import DissectOptions, dissect_model

    if mode == "floor":
        return _floor(model, image)
    if MODES[mode] is None:
        batch = model.preprocess([image])
        start = time.perf_counter()
        with torch.inference_mode():
            model.forward(batch)
        return time.perf_counter() - start
    if mode == "new-folder":
        out = out / f"new-{next(FRESH)}"
    result = dissect_model(model, image, out, DissectOptions(**MODES[mode]))
    LAST["pass"], LAST["total"] = result.seconds, result.total_seconds
    return result.seconds if mode != "conv-png-npy+plots" else result.total_seconds


def _floor(model, image) -> float:
    """A forward whose hooks on every leaf run only aminmax, sum and dot (sum of squares) of each tensor output:
    the fewest single-pass torch kernels that give min, max, mean and std, with no counts and no bookkeeping.
    What no implementation built from torch's CPU kernels can go below."""
    import torch

    from visionbench.dissect.select import select_layers

    def hook(_m, _i, out) -> None:
        if isinstance(out, torch.Tensor) and out.is_floating_point() and out.numel():
            x = out.reshape(-1)
            torch.aminmax(x), x.sum(), torch.dot(x, x)

    handles = [m.register_forward_hook(hook) for _, m in select_layers(model.module, "all", None)]
    batch = model.preprocess([image])
    try:
        start = time.perf_counter()
        with torch.inference_mode():
            model.forward(batch)
        return time.perf_counter() - start
    finally:
        for h in handles:
            h.remove()


def timing(name: str, repeats: int) -> dict[str, float]:
    model, image = _build(name)
    times: dict[str, list[float]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in MODES:  # warm-up: oneDNN primitives, writer thread, fonts, matplotlib import
            _run(model, image, mode, Path(tmp))
        for _ in range(repeats):
            for mode in MODES:
                _run(model, image, "plain", Path(tmp))  # untimed: every mode starts from the same state
                times[mode].append(_run(model, image, mode, Path(tmp)))
    return {m: statistics.median(v) for m, v in times.items()}


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak() -> bool:
    """Linux: writing 5 to clear_refs resets this process's peak RSS (VmHWM) to the current RSS."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _hwm() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def memory_child(name: str, mode: str) -> None:
    """Subprocess body: build, then one step; prints JSON with baseline and peak RSS of that step.

    The build (ultralytics runs a forward inside its constructor; imports) has its own peak: it is reset
    after the build where Linux allows, so `peak` is the highest RSS reached during the step itself."""
    import gc

    model, image = _build(name)
    model.preprocess([image])
    gc.collect()
    reset = _reset_peak()
    baseline = _rss()
    with tempfile.TemporaryDirectory() as tmp:
        seconds = _run(model, image, mode, Path(tmp))
    doc = {"baseline": baseline, "peak": _hwm(), "seconds": seconds, "peak_reset": reset, **LAST}
    print(json.dumps(doc))


def memory(name: str, mode: str) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", name, mode]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=7)  # runs of 5 minutes apart differed by up to 0.14x here
    parser.add_argument("--models", default="yolo11n,depth-anything-v2-small", help="Comma list; '' for none.")
    parser.add_argument("--depthpro", action="store_true", help="Also full-size DepthPro (one subprocess per mode).")
    args = parser.parse_args()
    if args.child:
        memory_child(*args.child)
        return
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f}", flush=True)
    names = [n for n in args.models.split(",") if n]
    for name in names:
        t = timing(name, args.repeats)
        plain = t["plain"]
        print(f"\n{name}: time, median of {args.repeats} interleaved repeats")
        print(f"  {'mode':22s} {'seconds':>9s} {'x plain':>8s}  goal")
        for mode, goal in [
            ("plain", ""),
            ("floor", "(min/max/sum/sum of squares only)"),
            ("all-stats", "<= 1.3"),
            ("conv-png-npy", "<= 2.0"),
            ("new-folder", "(conv-png-npy, every file created anew)"),
            ("conv-png-npy+plots", ""),
        ]:
            print(f"  {mode:22s} {t[mode]:9.4f} {t[mode] / plain:8.2f}  {goal}", flush=True)
        mem = {mode: memory(name, mode) for mode in ("plain", "all-stats", "conv-png-npy+plots")}
        base = mem["plain"]
        print(f"{name}: peak RSS, fresh subprocess per mode (baseline = after build, before the step)")
        print(f"  {'mode':22s} {'peak MiB':>9s} {'x plain':>8s} {'added MiB':>10s} {'x plain':>8s}  goal")
        for mode, m in mem.items():
            added, base_added = m["peak"] - m["baseline"], base["peak"] - base["baseline"]
            goal = "<= 1.3 (peak)" if mode != "plain" else ""
            print(f"  {mode:22s} {m['peak'] / 2**20:9.0f} {m['peak'] / base['peak']:8.2f} {added / 2**20:10.0f} "
                  f"{added / max(base_added, 1):8.2f}  {goal}", flush=True)  # fmt: skip
    if args.depthpro:
        print("\ndepthpro (full size, random weights, 1536 px): one fresh subprocess per mode, one pass each")
        print(f"  {'mode':22s} {'seconds':>9s} {'x plain':>8s} {'peak MiB':>9s} {'x plain':>8s} {'added MiB':>10s}")
        rows = {}
        for mode in ("plain", "conv-png-npy+plots"):
            rows[mode] = m = memory("depthpro", mode)
            print(f"  {mode:22s} {m['seconds']:9.1f} {m['seconds'] / rows['plain']['seconds']:8.2f} "
                  f"{m['peak'] / 2**20:9.0f} {m['peak'] / rows['plain']['peak']:8.2f} "
                  f"{(m['peak'] - m['baseline']) / 2**20:10.0f}", flush=True)  # fmt: skip
            if "pass" in m:
                ratio = m["pass"] / rows["plain"]["seconds"]
                print(f"  {'':22s} pass (hooked forward + writer drain) {m['pass']:.1f} s, "
                      f"{ratio:.2f}x plain; total with plots {m['total']:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
