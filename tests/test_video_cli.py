"""`visionbench video` end to end on small clips made with PyAV: files, timestamps, rotation, resume, bad input."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from visionbench.cli import app
from visionbench.video.encode import VideoWriter

DA = ["--model", "depth-anything-v2-tiny", "--weights", "random", "--device", "cpu"]
TB = Fraction(1, 1000)


def make_clip(path: Path, pts_ms: list[int], size: tuple[int, int] = (64, 48), rotation: int | None = None) -> Path:
    """An H.264 mp4 whose frames show a bar that moves, at the given timestamps (ms): VFR when uneven."""
    w, h = size
    writer = VideoWriter(path, w, h, TB, 30)
    if rotation is not None:
        writer.stream.set_display_rotation(rotation)
    for i, p in enumerate(pts_ms):
        rgb = np.zeros((h, w, 3), np.uint8)
        rgb[: h // 2] = 255  # top half white: tells where the top went after rotation
        rgb[:, (4 * i) % w : (4 * i) % w + 6, 1] = 200
        writer.write(Image.fromarray(rgb), p)
    writer.close()
    return path


def decoded_times(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        return [round(float(f.time), 4) for f in c.decode(c.streams.video[0])]


def run(args: list[str]):
    res = CliRunner().invoke(app, ["video", *args])
    return res


def test_video_files_timestamps_json_and_resume(tmp_path) -> None:
    pts = [0, 40, 120, 130, 300]  # variable frame rate
    clip, out = make_clip(tmp_path / "vfr.mp4", pts), tmp_path / "out"
    res = run([str(clip), "--out", str(out), "--json", "--side-by-side", *DA])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["complete"] and summary["frames"] == 5 and summary["depth_kind"] == "relative-inverse"
    assert decoded_times(out / "depth.mp4") == [p / 1000 for p in pts]  # same timestamps, not a fixed rate
    assert decoded_times(out / "side_by_side.mp4") == [p / 1000 for p in pts]
    record = json.loads((out / "video.json").read_text())
    assert [f["time_s"] for f in record["frames"]] == [p / 1000 for p in pts]
    depth = np.load(out / "depth" / "frame_000002.inverse_depth.npy")
    assert depth.shape == (48, 64) and depth.dtype == np.float32
    side = json.loads((out / "depth" / "frame_000002.json").read_text())
    assert side["depth"]["median"] == pytest.approx(float(np.median(depth)))
    m = record["summary"]["metrics"]
    assert m["flicker_opw"]["pairs"] == 4 and m["flicker_opw"]["mean"] >= 0
    assert m["scale_drift"]["ratio_std"] >= 0 and "median_std_m" not in m["scale_drift"]
    # --resume: frame 3's sidecar (written last) is gone, so only frame 3 goes through the model again
    (out / "depth" / "frame_000003.json").unlink()
    res = run([str(clip), "--out", str(out), "--json", "--resume", *DA])
    assert res.exit_code == 0, res.output
    again = json.loads(res.stdout)
    assert (again["frames"], again["frames_resumed"]) == (5, 4)
    assert decoded_times(out / "depth.mp4") == [p / 1000 for p in pts]
    assert again["metrics"]["flicker_opw"]["mean"] == pytest.approx(m["flicker_opw"]["mean"], rel=1e-5)
    other = ["--model", "depthpro-tiny", "--weights", "random", "--device", "cpu"]
    _one_error_line(run([str(clip), "--out", str(out), "--resume", *other]), "made by depth-anything-v2-tiny")
    assert decoded_times(out / "depth.mp4") == [p / 1000 for p in pts]  # refused before the video was rewritten


def test_rotation_from_the_display_matrix_is_applied(tmp_path) -> None:
    from visionbench.video.source import FrameSource

    clip = make_clip(tmp_path / "phone.mp4", [0, 33], size=(64, 32), rotation=90)
    src = FrameSource(clip)
    assert (src.info.width, src.info.height, src.info.rotation_deg) == (32, 64, 90)
    frame = np.asarray(next(iter(src.frames())).image, np.float32)
    assert frame.shape == (64, 32, 3)
    # 90 degrees counter-clockwise: the white top half is now the left half
    assert frame[:, :16].mean() > 200 > 60 > frame[:, 16:, 0].mean()
    out = tmp_path / "out"
    res = run([str(clip), "--out", str(out), "--json", *DA])
    assert res.exit_code == 0, res.output
    assert np.load(out / "depth" / "frame_000000.inverse_depth.npy").shape == (64, 32)


def test_every_start_end_select_by_timestamp(tmp_path) -> None:
    clip = make_clip(tmp_path / "ten.mp4", [100 * i for i in range(8)])  # 10 fps
    out = tmp_path / "out"
    args = ["--every", "2", "--start", "0.1", "--end", "0.65", "--no-flicker"]
    res = run([str(clip), "--out", str(out), "--json", *args, *DA])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["metrics"]["flicker_opw"] is None
    frames = json.loads((out / "video.json").read_text())["frames"]
    assert [f["time_s"] for f in frames] == [0.1, 0.3, 0.5]
    assert decoded_times(out / "depth.mp4") == [0.1, 0.3, 0.5]


def test_sample_sequence_reports_every_metric(tmp_path) -> None:
    out = tmp_path / "out"
    res = run(["--sample", "--sample-frames", "3", "--out", str(out), "--json", *DA])
    assert res.exit_code == 0, res.output
    g = json.loads(res.stdout)["metrics"]["ground_truth"]
    assert g["tae"] is not None and g["tae"] >= 0
    assert g["video_level"]["abs_rel"] >= 0 and 0 <= g["video_level"]["delta1"] <= 1
    assert g["per_frame_mean"]["abs_rel_aligned"] is not None
    assert (out / "sample" / "poses.npy").exists() and len(list((out / "sample" / "frames").iterdir())) == 3


def test_depthpro_focal_px_and_metric_files_from_a_folder(tmp_path) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    rng = np.random.default_rng(0)
    for i in (1, 2, 10):  # natural order: 1, 2, 10
        Image.fromarray((rng.random((40, 56, 3)) * 255).astype(np.uint8)).save(frames / f"f{i}.png")
    out = tmp_path / "out"
    args = [str(frames), "--out", str(out), "--json", "--model", "depthpro-tiny", "--weights", "random",
            "--device", "cpu", "--focal-px", "50", "--batch-size", "2", "--fps", "10"]  # fmt: skip
    res = run(args)
    assert res.exit_code == 0, res.output
    record = json.loads((out / "video.json").read_text())
    f0 = record["frames"][0]
    assert (f0["focal_px"], f0["focal_source"]) == (50.0, "cli") and f0["fov_deg"] == pytest.approx(58.5, abs=0.1)
    assert [f["time_s"] for f in record["frames"]] == [0.0, 0.1, 0.2]
    assert (out / "depth" / "frame_000002.depth16.png").exists() and (out / "depth" / "frame_000002.depth.npy").exists()
    assert "median_std_m" in record["summary"]["metrics"]["scale_drift"]


def _one_error_line(res, *words: str) -> None:
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert "Traceback" not in res.output and text.count("error:") == 1
    for w in words:
        assert w in text, text


def test_bad_inputs_are_one_line_each(tmp_path) -> None:
    out = str(tmp_path / "out")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).bytes(5000))
    _one_error_line(run([str(corrupt), "--out", out, *DA]), "not a video")
    good = make_clip(tmp_path / "good.mp4", [0, 33, 66])
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    _one_error_line(run([str(truncated), "--out", out, *DA]), "truncated")
    front = tmp_path / "faststart.mp4"  # the index first: a cut file still opens, and ends early
    with av.open(str(front), "w", options={"movflags": "faststart"}) as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        rng = np.random.default_rng(1)
        for i in range(20):
            frame = av.VideoFrame.from_ndarray((rng.random((48, 64, 3)) * 255).astype(np.uint8), format="rgb24")
            frame.pts = i
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(front.read_bytes()[: int(front.stat().st_size * 0.6)])
    _one_error_line(run([str(cut), "--out", str(tmp_path / "cut_out"), *DA]), "ended after", "of 20 frames")
    kept = json.loads((tmp_path / "cut_out" / "video.json").read_text())
    assert 0 < len(kept["frames"]) < 20 and not kept["summary"]["complete"]  # the frames before the cut stay
    zero = tmp_path / "zero.mp4"
    with av.open(str(zero), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        c.start_encoding()
    _one_error_line(run([str(zero), "--out", out, *DA]), "zero frames")
    odd = tmp_path / "odd.mp4"
    odd.write_bytes(good.read_bytes().replace(b"avc1", b"zzz9"))  # a codec tag no FFmpeg knows
    _one_error_line(run([str(odd), "--out", out, *DA]), "unsupported video codec")
    audio = tmp_path / "audio.mka"
    with av.open(str(audio), "w") as c:
        s = c.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.rate = 8000
        for p in s.encode(frame):
            c.mux(p)
    _one_error_line(run([str(audio), "--out", out, *DA]), "no video stream")
    empty = tmp_path / "empty"
    empty.mkdir()
    _one_error_line(run([str(empty), "--out", out, *DA]), "no frames")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.new("RGB", (32, 24)).save(mixed / "a1.png")
    Image.new("RGB", (24, 32)).save(mixed / "a2.png")
    _one_error_line(run([str(mixed), "--out", out, *DA]), "one size")
    _one_error_line(run([str(empty.parent), "--out", str(empty.parent / "o"), *DA]), "inside the input folder")
    _one_error_line(run([str(good), "--out", out, "--start", "2", "--end", "1", *DA]), "--end")
    _one_error_line(run([str(good), "--out", out, "--cmap", "nope", *DA]), "--cmap")
    assert not (Path(out) / "video.json").exists()  # all of these stopped before any work


def test_a_frame_that_fails_mid_way_keeps_the_frames_before_it(tmp_path) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):  # noise: the PNGs are large enough that half of one keeps its header
        Image.fromarray((rng.random((24, 32, 3)) * 255).astype(np.uint8)).save(frames / f"{i}.png")
    data = (frames / "3.png").read_bytes()
    (frames / "3.png").write_bytes(data[: len(data) // 2])  # the header is intact, the pixels are not
    out = tmp_path / "out"
    _one_error_line(run([str(frames), "--out", str(out), *DA]), "3.png")
    record = json.loads((out / "video.json").read_text())
    assert len(record["frames"]) == 3 and not record["summary"]["complete"] and record["summary"]["error"]
    assert len(decoded_times(out / "depth.mp4")) == 3  # the video is closed properly: playable
