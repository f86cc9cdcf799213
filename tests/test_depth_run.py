"""`visionbench depth` end to end with a tiny DepthPro (random weights) on real photos and bad files.

Random weights give degenerate depth, so nothing here depends on trained outputs: the tests check the
files, their units and shapes, the focal-length rules, resume and the failure paths.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import visionbench as vb
from visionbench.depth import intrinsics
from visionbench.depth.options import DepthOptions
from visionbench.depth.outputs import OutputWriteError, weights_record
from visionbench.depth.pointcloud import read_ply
from visionbench.depth.run_depth import run_depth
from visionbench.errors import BadInputError, UnsupportedOptionError
from visionbench.images import sample_images

FOV_DEG = 60.0


@pytest.fixture(scope="module")
def tiny_depthpro():
    return vb.create_model("depthpro-tiny", weights="random", device="cpu")


@pytest.fixture(scope="module")
def flat_depthpro():
    """The tiny DepthPro with the last layers of its two heads fixed (weights 0, biases set): canonical inverse
    depth c = 1 everywhere and a 60 degree field of view.

    Real architecture and post-processing; the metric depth must then be exactly f / (W * c) = f / W for
    whichever focal length f is used, and the FOV head's focal length W / (2 tan 30 deg).
    """
    model = vb.create_model("depthpro-tiny", weights="random", device="cpu")
    with torch.no_grad():
        for layer, bias in ((model.module.head.layers[4], 1.0), (model.module.fov_model.head.layers[4], FOV_DEG)):
            layer.weight.zero_()
            layer.bias.fill_(bias)
    return model


def _small_bus(path, size=(120, 160)):
    with Image.open(sample_images()[0]) as im:
        im.convert("RGB").resize(size).save(path)
    return path


def _bad_and_odd_folder(root):
    """Real photos, odd-but-valid images and broken files, some in a subfolder."""
    (root / "sub").mkdir(parents=True)
    for p in sample_images():
        shutil.copy(p, root / p.name)
    photo = Image.open(sample_images()[0]).convert("RGB").resize((90, 120))
    photo.convert("L").save(root / "sub" / "gray.png")
    photo.convert("RGBA").save(root / "sub" / "rgba.png")
    photo.convert("P").save(root / "sub" / "palette.png")
    Image.fromarray(np.asarray(photo.convert("L"), np.uint16) * 257).save(root / "sub" / "sixteen.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    exif.get_ifd(intrinsics.EXIF_IFD)[intrinsics.FOCAL_35MM_TAG] = 28
    photo.save(root / "sub" / "rotated.jpg", exif=exif)
    good = ["bus.jpg", "zidane.jpg", "sub/gray.png", "sub/rgba.png", "sub/palette.png", "sub/sixteen.png",
            "sub/rotated.jpg"]  # fmt: skip
    (root / "empty.jpg").write_bytes(b"")
    (root / "notes.png").write_text("not an image")
    (root / "truncated.jpg").write_bytes(sample_images()[0].read_bytes()[:5000])
    Image.new("1", (13_400, 13_400)).save(root / "sub" / "bomb.png")  # 179.6 Mpx: above the 178.9 Mpx limit
    (root / "readme.txt.md").write_text("ignored: not an image suffix")
    bad = ["empty.jpg", "notes.png", "truncated.jpg", "sub/bomb.png"]
    return good, bad


def test_depth_end_to_end_real_photos_bad_files_and_resume(tmp_path, flat_depthpro) -> None:
    src = tmp_path / "photos"
    good, bad = _bad_and_odd_folder(src)
    out = src / "depth_out"  # inside the input folder: must not be read back on the second run
    opts = DepthOptions(out=out, batch_size=2, ply=True, ply_stride=8, side_by_side=True, workers=2)
    s = run_depth([src], opts, show_progress=False, model=flat_depthpro)
    assert (s.total, s.done, s.failed, s.skipped) == (len(good) + len(bad), len(good), len(bad), 0)
    listed = Path(s.failures_file).read_text().splitlines()
    assert sorted(line.split("\t")[0].removeprefix(str(src) + "/") for line in listed) == sorted(bad)
    reasons = " ".join(f.error for f in s.failures)
    for word in ("empty file", "not an image", "truncated"):
        assert word in reasons
    assert "limit of" in reasons and "VISIONBENCH_MAX_PIXELS" in reasons

    for rel in good:
        stem = out / rel.rsplit(".", 1)[0]
        side = json.loads(stem.with_name(stem.name + ".json").read_text())
        files = {k: stem.parent / v for k, v in side["files"].items()}
        assert set(files) == {"picture", "npy", "png16_mm", "side_by_side", "ply"}
        assert all(p.exists() for p in files.values())
        depth = np.load(files["npy"])
        assert depth.dtype == np.float32 and depth.shape == (side["input_height"], side["input_width"])
        assert side["depth_kind"] == "metric" and side["depth_unit"] == "metres"
        assert side["weights_mode"] == "random" and side["model"] == "depthpro-tiny"
        assert side["depth"]["max"] == pytest.approx(float(depth.max()))
        assert side["output_width"] == side["input_width"] and side["model_input_size"] == 256
        with Image.open(files["png16_mm"]) as im16:
            mm = np.asarray(im16).astype(np.float64)
        assert np.allclose(mm, np.clip(np.rint(depth * 1000), 0, 65535))
        points, colours = read_ply(files["ply"])
        assert len(points) == side["ply_points"] and colours is not None
        assert side["focal_px"] > 0 and side["runtime_ms"] > 0
        if rel == "sub/rotated.jpg":  # EXIF orientation applied; EXIF focal beats the FOV head
            assert (side["input_width"], side["input_height"]) == (120, 90)
            assert side["focal_source"] == "exif"
            assert side["focal_px"] == pytest.approx(intrinsics.focal_px_from_35mm(28, 120, 90))
            assert side["depth_uses_focal_px"] == side["focal_px"] != side["focal_px_predicted"]
            assert np.allclose(depth, side["focal_px"] / 120, rtol=1e-4)  # depth = f / (W c), c = 1
        else:
            assert side["focal_source"] == "model" and side["focal_px"] == pytest.approx(side["focal_px_predicted"])
            assert side["fov_deg"] == pytest.approx(FOV_DEG, rel=1e-4)
            assert np.allclose(depth, side["focal_px"] / side["input_width"], rtol=1e-4)

    # resume: finished images are skipped (files untouched), broken ones are tried again and fail again
    sidecar = out / "bus.json"
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != "depth_run.json"}
    (out / "zidane.json").unlink()
    s2 = run_depth([src], opts.model_copy(update={"resume": True}), show_progress=False, model=flat_depthpro)
    assert (s2.total, s2.done, s2.skipped, s2.failed) == (len(good) + len(bad), 1, len(good) - 1, len(bad))
    assert s2.excluded_in_out == len(list(out.rglob("*.png")))  # its own outputs are never inputs
    assert sidecar.stat().st_mtime_ns == before[sidecar]
    assert (out / "zidane.json").exists()
    assert not list(out.rglob("*.tmp"))


def test_known_focal_sets_depthpro_depth_exactly(tmp_path, flat_depthpro) -> None:
    (tmp_path / "in").mkdir()
    img = _small_bus(tmp_path / "in" / "bus.png")  # 120 x 160
    run_depth([img], DepthOptions(out=tmp_path / "a"), show_progress=False, model=flat_depthpro)
    known = DepthOptions(out=tmp_path / "b", focal_px=150.0, ply=True)
    run_depth([img], known, show_progress=False, model=flat_depthpro)
    a = json.loads((tmp_path / "a" / "bus.json").read_text())
    b = json.loads((tmp_path / "b" / "bus.json").read_text())
    assert a["focal_source"] == "model" and a["focal_px"] == pytest.approx(a["focal_px_predicted"])
    assert b["focal_source"] == "cli" and b["focal_px"] == 150.0 and b["depth_uses_focal_px"] == 150.0
    assert b["focal_px_predicted"] == pytest.approx(a["focal_px_predicted"])  # the head's guess is kept
    assert b["focal_px_predicted"] != pytest.approx(150.0)
    assert b["fov_deg"] == pytest.approx(intrinsics.fov_deg_from_focal(150.0, 120))
    da, db = np.load(tmp_path / "a" / "bus.depth.npy"), np.load(tmp_path / "b" / "bus.depth.npy")
    # DepthPro: depth = f / (W * c), here c = 1
    assert np.allclose(db, 150.0 / 120, rtol=1e-4)
    assert a["focal_px_predicted"] == pytest.approx(60 / np.tan(np.radians(FOV_DEG / 2)), rel=1e-4)
    assert np.allclose(da, a["focal_px_predicted"] / 120, rtol=1e-4)
    points, colours = read_ply(tmp_path / "b" / "bus.ply")
    assert len(points) == 120 * 160 and np.allclose(points[:, 2], 1.25, rtol=1e-4)
    # the cloud uses the known focal length: x / z at the rightmost pixel centre is (W/2 - 0.5) / f
    assert (points[:, 0] / points[:, 2]).max() == pytest.approx((60 - 0.5) / 150.0, rel=1e-4)


def test_degenerate_fov_head_is_flagged_not_hidden(tmp_path, tiny_depthpro) -> None:
    (tmp_path / "in").mkdir()
    img = _small_bus(tmp_path / "in" / "bus.png")
    with torch.no_grad():
        layer = tiny_depthpro.module.fov_model.head.layers[4]
        saved = (layer.weight.clone(), layer.bias.clone())
        layer.weight.zero_()
        layer.bias.fill_(0.0)  # a 0 degree field of view: what untrained weights can give
    try:
        s = run_depth([img], DepthOptions(out=tmp_path / "o", ply=True), show_progress=False, model=tiny_depthpro)
        fixed = run_depth([img], DepthOptions(out=tmp_path / "f", ply=True, focal_px=100.0), show_progress=False,
                          model=tiny_depthpro)  # fmt: skip
    finally:
        with torch.no_grad():
            layer.weight.copy_(saved[0])
            layer.bias.copy_(saved[1])
    assert s.failed == 1 and "no focal length for the point cloud" in s.failures[0].error
    assert fixed.done == 1 and json.loads((tmp_path / "f" / "bus.json").read_text())["focal_px_predicted"] is None


def test_relative_model_writes_labelled_inverse_depth_and_refuses_ply(tmp_path) -> None:
    (tmp_path / "in").mkdir()
    img = _small_bus(tmp_path / "in" / "bus.jpg")
    rel = vb.create_model("depth-anything-v2-tiny", weights="random", device="cpu")
    s = run_depth([img], DepthOptions(out=tmp_path / "o", cmap="magma"), show_progress=False, model=rel)
    assert s.done == 1
    side = json.loads((tmp_path / "o" / "bus.json").read_text())
    assert side["depth_kind"] == "relative-inverse" and "inverse" in side["depth_unit"]
    assert set(side["files"]) == {"picture", "npy"} and side["files"]["npy"] == "bus.inverse_depth.npy"
    assert side["focal_source"] == "none"
    with pytest.raises(UnsupportedOptionError, match="metric"):
        run_depth([img], DepthOptions(out=tmp_path / "p", ply=True), show_progress=False, model=rel)


def test_list_file_with_a_missing_entry_fails_that_entry_only(tmp_path, flat_depthpro) -> None:
    (tmp_path / "imgs").mkdir()
    _small_bus(tmp_path / "imgs" / "bus.jpg")
    listing = tmp_path / "list.txt"
    listing.write_text("# photos to process\nimgs/bus.jpg\nimgs/gone.jpg\n")
    s = run_depth([listing], DepthOptions(out=tmp_path / "o"), show_progress=False, model=flat_depthpro)
    assert (s.done, s.failed) == (1, 1) and "no such file" in s.failures[0].error
    assert (tmp_path / "o" / "imgs" / "bus.json").exists()  # relative to the list's folder


def test_bad_run_level_inputs_are_clear_errors(tmp_path, tiny_depthpro) -> None:
    with pytest.raises(BadInputError, match="no such file"):
        run_depth([tmp_path / "missing"], DepthOptions(out=tmp_path / "o"), show_progress=False, model=tiny_depthpro)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match="no images found"):
        run_depth([tmp_path / "empty"], DepthOptions(out=tmp_path / "o"), show_progress=False, model=tiny_depthpro)
    with pytest.raises(BadInputError, match="input folder"):
        run_depth([tmp_path], DepthOptions(out=tmp_path), show_progress=False, model=tiny_depthpro)
    with pytest.raises(UnsupportedOptionError, match="colour map"):
        run_depth([tmp_path], DepthOptions(out=tmp_path / "o", cmap="rainbowz"), show_progress=False,
                  model=tiny_depthpro)  # fmt: skip


def _two_photos(root, names=("a.jpg", "b.jpg")):
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        _small_bus(root / name, (48, 64))
    return root


def test_later_runs_never_overwrite_earlier_failures(tmp_path, tiny_depthpro) -> None:
    src, out = _two_photos(tmp_path / "in"), tmp_path / "out"
    (src / "broken.jpg").write_bytes(b"\xff\xd8 first run")
    out.mkdir()
    (out / "failures.txt").write_text("x.jpg\tfrom a version that used one name for every run\n")
    first = run_depth([src], DepthOptions(out=out), show_progress=False, model=tiny_depthpro)
    (src / "broken.jpg").unlink()
    (src / "other.png").write_text("second run")
    second = run_depth([src], DepthOptions(out=out), show_progress=False, model=tiny_depthpro)
    assert first.run_id != second.run_id and first.failures_file != second.failures_file
    assert "broken.jpg" in Path(first.failures_file).read_text()  # still there, as written
    assert "other.png" in Path(second.failures_file).read_text()
    assert (out / "failures.txt").exists()  # the legacy list is kept too
    record = json.loads((out / "depth_run.json").read_text())
    assert record["summary"]["run_id"] == second.run_id and record["summary"]["status"] == "completed"
    assert [r["run_id"] for r in record["previous_runs"]] == [first.run_id]
    assert record["previous_runs"][0]["failures_file"] == first.failures_file


def test_resume_redoes_truncated_or_garbled_outputs(tmp_path, flat_depthpro) -> None:
    src, out = _two_photos(tmp_path / "in", ("a.jpg", "b.jpg", "c.jpg", "d.jpg")), tmp_path / "out"
    opts = DepthOptions(out=out, ply=True, ply_stride=4)
    assert run_depth([src], opts, show_progress=False, model=flat_depthpro).done == 4
    for name in ("a.depth.npy", "b.depth.png", "c.ply"):  # cut to half, as a full disk or a copy cut short leaves it
        data = (out / name).read_bytes()
        (out / name).write_bytes(data[: len(data) // 2])
    png = bytearray((out / "d.depth16.png").read_bytes())
    png[len(png) // 2] ^= 0xFF  # same length, one byte garbled: its chunk's CRC no longer matches
    (out / "d.depth16.png").write_bytes(bytes(png))
    again = run_depth([src], opts.model_copy(update={"resume": True}), show_progress=False, model=flat_depthpro)
    assert (again.done, again.skipped) == (4, 0)
    assert np.load(out / "a.depth.npy").shape == (64, 48)
    with Image.open(out / "d.depth16.png") as im:
        im.load()
    third = run_depth([src], opts.model_copy(update={"resume": True}), show_progress=False, model=flat_depthpro)
    assert (third.done, third.skipped) == (0, 4)  # whole files are trusted


def test_images_one_pixel_wide_or_high_get_every_output(tmp_path, flat_depthpro) -> None:
    (tmp_path / "in").mkdir()
    Image.new("RGB", (1, 40), (90, 60, 30)).save(tmp_path / "in" / "thin.png")
    Image.new("RGB", (40, 1), (90, 60, 30)).save(tmp_path / "in" / "flat.png")
    opts = DepthOptions(out=tmp_path / "out", ply=True, side_by_side=True, focal_px=30.0)
    s = run_depth([tmp_path / "in"], opts, show_progress=False, model=flat_depthpro)
    assert (s.done, s.failed) == (2, 0), s.failures
    assert np.load(tmp_path / "out" / "thin.depth.npy").shape == (40, 1)
    assert np.load(tmp_path / "out" / "flat.depth.npy").shape == (1, 40)
    assert np.allclose(np.load(tmp_path / "out" / "flat.depth.npy"), 30.0 / 40, rtol=1e-4)  # f / (W c), c = 1
    assert len(read_ply(tmp_path / "out" / "thin.ply")[0]) == 40


def test_a_refused_write_stops_the_run_and_keeps_what_was_written(tmp_path, tiny_depthpro) -> None:
    src = _two_photos(tmp_path / "in", ("a.jpg", "sub/b.jpg", "z.jpg"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").write_text("a file where the outputs of in/sub/ must go")
    with pytest.raises(OutputWriteError) as err:
        run_depth([src], DepthOptions(out=out, workers=1), show_progress=False, model=tiny_depthpro)
    message = str(err.value)
    assert "sub/b.jpg" in message and "stopped" in message and str(out / "depth_run.json") in message
    assert "\n" not in message
    record = json.loads((out / "depth_run.json").read_text())["summary"]
    assert record["status"] == "stopped" and record["failed"] == 1
    # z.jpg, after the failure: written if its write was already under way, else never started
    assert record["done"] + record["not_attempted"] == 2 and (out / "z.json").exists() == (record["done"] == 2)
    assert np.load(out / "a.depth.npy").shape == (64, 48)  # kept
    assert "sub/b.jpg" in Path(record["failures_file"]).read_text()


def test_unreadable_paths_are_named_and_counted(tmp_path, tiny_depthpro) -> None:
    src = _two_photos(tmp_path / "in", ("a.jpg",))
    (src / "loop.jpg").symlink_to(src / "loop.jpg")
    (src / "gone.png").symlink_to(tmp_path / "nowhere.png")
    os.mkfifo(src / "pipe.jpg")  # opening it would wait for a writer forever
    s = run_depth([src], DepthOptions(out=tmp_path / "out"), show_progress=False, model=tiny_depthpro)
    assert (s.done, s.unreadable_paths, s.total) == (1, 3, 1)
    reasons = " ".join(f.error for f in s.failures)
    assert "symlink loop" in reasons and "dangling symlink" in reasons and "not a regular file (a FIFO)" in reasons
    given = run_depth([src / "pipe.jpg", src / "a.jpg"], DepthOptions(out=tmp_path / "o3"), show_progress=False,
                      model=tiny_depthpro)  # fmt: skip
    assert (given.done, given.failed) == (1, 1) and "a FIFO" in given.failures[0].error
    assert "symlink loop" in Path(s.failures_file).read_text()
    with pytest.raises(BadInputError, match="symlink loop"):
        run_depth([src / "loop.jpg"], DepthOptions(out=tmp_path / "o2"), show_progress=False, model=tiny_depthpro)


def test_inputs_that_all_lie_inside_out_are_said_so(tmp_path, tiny_depthpro) -> None:
    out = tmp_path / "out"
    _two_photos(out / "old")
    with pytest.raises(BadInputError, match="lies inside --out"):
        run_depth([out / "old" / "a.jpg", out / "old" / "b.jpg"], DepthOptions(out=out), show_progress=False,
                  model=tiny_depthpro)  # fmt: skip


def test_sidecars_and_summary_name_the_weights(tmp_path, tiny_depthpro) -> None:
    src = _two_photos(tmp_path / "in", ("a.jpg",))
    s = run_depth([src], DepthOptions(out=tmp_path / "out"), show_progress=False, model=tiny_depthpro)
    expected = weights_record(tiny_depthpro)
    assert expected["mode"] == "random" and expected["source"]
    assert json.loads((tmp_path / "out" / "a.json").read_text())["weights"] == expected
    assert json.loads((tmp_path / "out" / "depth_run.json").read_text())["summary"]["weights"] == expected
    assert s.weights == expected


def test_odd_names_and_lists_keep_the_failures_file_one_line_per_file(tmp_path, tiny_depthpro) -> None:
    src = _two_photos(tmp_path / "in", ("a.jpg",))
    (src / "new\nline.jpg").write_bytes(b"not a jpeg")
    (src / "tab\there.png").write_bytes(b"not a png")
    s = run_depth([src], DepthOptions(out=tmp_path / "out"), show_progress=False, model=tiny_depthpro)
    lines = Path(s.failures_file).read_text().splitlines()
    assert len(lines) == 2 and all(line.count("\t") == 1 for line in lines)
    assert any(line.startswith(str(src / "new\\nline.jpg")) for line in lines)
    (tmp_path / "list.txt").write_bytes(b"a.jpg\n\xff\xfe\x00binary")
    with pytest.raises(BadInputError, match="not a UTF-8 text list"):
        run_depth([tmp_path / "list.txt"], DepthOptions(out=tmp_path / "o2"), show_progress=False, model=tiny_depthpro)
    (tmp_path / "nul.txt").write_bytes(b"in/a.jpg\nin/b\x00.jpg\n")
    s = run_depth([tmp_path / "nul.txt"], DepthOptions(out=tmp_path / "o3"), show_progress=False, model=tiny_depthpro)
    assert (s.done, s.unreadable_paths) == (1, 1) and "not a valid path" in s.failures[0].error
