"""What does `visionbench video` cost beyond the model, and does its memory stay flat in the number of frames?

    .venv/bin/python benchmarks/video_throughput.py [--frames 300] [--size 640x480] [--model depth-anything-v2-tiny]
                                                    [--memory-frames 100 1000] [--skip-memory]

Generates an H.264 clip (a pan across the photos that ship with ultralytics), then measures:
  model alone   preprocess + forward + postprocess on frames decoded beforehand (all in memory), batch 1
  video         `run_video` on the clip: decode, model, per-frame npy + sidecar, H.264 depth video, flicker
                flow (the model alone runs before and after, and the video is compared with their mean)
  memory        peak RSS of `run_video` on a 100- and a 1000-frame clip, each in its own subprocess;
                goal: flat within 10 % (frames are streamed, nothing grows with their number but the
                per-frame records, a few hundred bytes each)
Random weights: speed and memory do not depend on their values.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402


def make_clip(path: Path, frames: int, size: tuple[int, int]) -> Path:
    """A 30 fps H.264 clip panning across bus.jpg and zidane.jpg side by side."""
    from PIL import Image

    from visionbench.images import sample_images
    from visionbench.video.encode import VideoWriter

    w, h = size
    strip = [Image.open(p).convert("RGB").resize((2 * w, h)) for p in sample_images()]
    canvas = np.concatenate([np.asarray(s) for s in strip], axis=1)
    span = canvas.shape[1] - w
    writer = VideoWriter(path, w, h, Fraction(1, 30), 30)
    for i in range(frames):
        x = int(span * (0.5 - 0.5 * np.cos(2 * np.pi * i / 300)))  # back and forth every 300 frames
        writer.write(Image.fromarray(np.ascontiguousarray(canvas[:, x : x + w])), i)
    writer.close()
    return path


def build(model_name: str):
    import visionbench as vb

    return vb.create_model(model_name, weights="random", device="cpu")


def model_alone(model, images) -> float:
    from visionbench.depth.predict import forward_depth

    t = time.perf_counter()
    for im in images:
        forward_depth(model, model.preprocess([im]))
    return len(images) / (time.perf_counter() - t)


def video_run(model, clip: Path, out: Path, end_s: float | None = None) -> float:
    from visionbench.video.options import VideoOptions
    from visionbench.video.run_video import run_video

    summary = run_video(clip, VideoOptions(out=out, end_s=end_s), show_progress=False, model=model)
    return summary.frames / summary.seconds


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def child_memory(model_name: str, clip: Path, out: Path) -> None:
    """One measurement in this process: the peak RSS while `run_video` runs (the model already built).

    Building the model and importing torch peak higher than a tiny model's run, so the high-water mark
    is reset after the build (Linux: writing 5 to /proc/self/clear_refs) and read back after the run.
    """
    from visionbench.measure.allocator import tune_malloc

    tune_malloc()  # as the CLI runs
    model = build(model_name)
    video_run(model, clip, out / "warm", end_s=0.5)  # first-call costs (libx264, OpenCV) are not the frames' memory
    before = _status_bytes("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    fps = video_run(model, clip, out / "run")
    print(json.dumps({"before": before, "peak": _status_bytes("VmHWM"), "frames_per_s": fps}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--model", default="depth-anything-v2-tiny")
    ap.add_argument("--memory-frames", type=int, nargs=2, default=[100, 1000])
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--child", nargs=2, metavar=("CLIP", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child_memory(args.model, Path(args.child[0]), Path(args.child[1]))
        return
    import torch

    from visionbench.video.source import FrameSource

    size = tuple(int(x) for x in args.size.lower().split("x"))
    print(f"torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}, model {args.model}, {args.size}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        clip = make_clip(tmp_path / "clip.mp4", args.frames, size)  # type: ignore[arg-type]
        images = [f.image for f in FrameSource(clip).frames()]
        model = build(args.model)
        model_alone(model, images[:5])  # warm-up
        a1 = model_alone(model, images)
        v = video_run(model, clip, tmp_path / "out")
        a2 = model_alone(model, images)
        alone = (a1 + a2) / 2
        print(f"model alone   {a1:.2f} / {a2:.2f} frames/s (before / after)")
        print(f"video         {v:.2f} frames/s  = {v / alone:.2f} x the model alone ({args.frames} frames)")
        del images
        if args.skip_memory:
            return
        peaks = []
        for n in args.memory_frames:
            c = make_clip(tmp_path / f"mem_{n}.mp4", n, size)  # type: ignore[arg-type]
            cmd = [sys.executable, __file__, "--model", args.model, "--child", str(c), str(tmp_path / f"out_{n}")]
            res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            peaks.append(res["peak"])
            print(f"memory        {n:5d} frames: peak RSS during the run {res['peak'] / 2**20:.0f} MiB "
                  f"(before it: {res['before'] / 2**20:.0f} MiB), {res['frames_per_s']:.2f} frames/s")  # fmt: skip
        ratio = peaks[1] / peaks[0]
        verdict = "flat within 10 %" if abs(ratio - 1) <= 0.10 else "NOT flat within 10 %"
        print(f"memory        peak {args.memory_frames[1]} / {args.memory_frames[0]} frames = {ratio:.3f} ({verdict})")


if __name__ == "__main__":
    main()
