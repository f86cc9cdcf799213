"""Depth files: atomic writes, 16-bit millimetres, colourised pictures, EXIF focal lengths, output naming."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from visionbench.depth import intrinsics, io
from visionbench.depth.outputs import scan_inputs
from visionbench.errors import BadInputError, UnsupportedOptionError


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path) -> None:
    target = tmp_path / "x.json"
    io.write_json(target, {"a": 1})

    def boom(fh) -> None:
        fh.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        io.atomic_write(target, boom)
    assert target.read_text().strip().startswith("{") and '"a": 1' in target.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]  # no temporary left behind


def test_png16_is_millimetres_with_zero_for_unknown(tmp_path) -> None:
    depth = np.array([[0.5, 1.2345], [np.inf, 70.0]], np.float32)
    path = io.save_png16_mm(tmp_path / "d.png", depth)
    with Image.open(path) as im:
        assert im.mode.startswith("I;16") or im.mode == "I"
        raw = np.asarray(im)
    assert raw.tolist() == [[500, 1234], [0, 65535]]  # rounded mm; unknown 0; beyond 65.535 m saturates
    back = io.read_png16(path)
    assert back[0, 0] == pytest.approx(0.5) and math.isinf(back[1, 0])


def test_npy_is_float32_metres(tmp_path) -> None:
    depth = np.linspace(1, 2, 12).reshape(3, 4)
    back = np.load(io.save_npy(tmp_path / "d.npy", depth))
    assert back.dtype == np.float32 and np.allclose(back, depth)


def test_colourise_near_is_bright_and_metric_maps_get_a_scale_bar() -> None:
    depth = np.tile(np.linspace(1.0, 10.0, 200, dtype=np.float32), (100, 1))  # near on the left
    pic = np.asarray(io.colourise(depth, "metric", "gray"))
    assert pic.shape[0] > 100 and pic.shape[1] == 200  # a strip below with the metre scale
    assert pic[50, 0].mean() > pic[50, -1].mean() + 100
    rel = np.asarray(io.colourise(1.0 / depth, "relative-inverse", "gray"))
    assert rel.shape == (100, 200, 3)  # no metre scale for relative depth
    assert rel[50, 0].mean() > rel[50, -1].mean() + 100
    holes = depth.copy()
    holes[:10] = np.inf
    assert np.asarray(io.colourise(holes, "metric", "magma"))[:10].max() == 0  # unknown is black
    with pytest.raises(UnsupportedOptionError, match="colour map"):
        io.colourise(depth, "metric", "no-such-map")


def test_side_by_side_puts_photo_left() -> None:
    photo = Image.new("RGB", (40, 30), (255, 0, 0))
    pic = io.colourise(np.full((30, 40), 2.0, np.float32), "metric")
    both = io.side_by_side(photo, pic)
    assert both.size == (80, pic.height)
    assert both.getpixel((5, 5)) == (255, 0, 0)


def test_exif_35mm_focal_uses_the_diagonal(tmp_path) -> None:
    path = tmp_path / "exif.jpg"
    exif = Image.Exif()
    exif.get_ifd(intrinsics.EXIF_IFD)[intrinsics.FOCAL_35MM_TAG] = 26
    Image.new("RGB", (400, 300)).save(path, exif=exif)
    assert intrinsics.exif_focal_35mm(path) == 26.0
    f = intrinsics.focal_px_from_35mm(26, 400, 300)
    assert f == pytest.approx(26 * 500 / math.hypot(36, 24))
    # for a 3:2 frame the diagonal rule equals f35 / 36 * long side
    assert intrinsics.focal_px_from_35mm(50, 600, 400) == pytest.approx(50 / 36 * 600)
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    assert intrinsics.exif_focal_35mm(plain) is None
    assert intrinsics.exif_focal_35mm(tmp_path / "missing.jpg") is None


def test_focal_priority_and_fov() -> None:
    kw = dict(width=100, height=50)
    assert intrinsics.choose_focal(cli_px=80, exif_35mm=26, model_px=60, **kw) == (80, "cli")
    assert intrinsics.choose_focal(cli_px=None, exif_35mm=36, model_px=60, **kw)[1] == "exif"
    assert intrinsics.choose_focal(cli_px=None, exif_35mm=None, model_px=60, **kw) == (60, "model")
    assert intrinsics.choose_focal(cli_px=None, exif_35mm=None, model_px=None, **kw) == (None, "none")
    assert intrinsics.fov_deg_from_focal(50, 100) == pytest.approx(90.0)
    assert intrinsics.focal_from_fov_deg(90.0, 100) == pytest.approx(50.0)


def test_output_plan_keeps_relative_paths_and_never_reads_its_own_outputs(tmp_path) -> None:
    photos = tmp_path / "photos"
    (photos / "a").mkdir(parents=True)
    for name in ("a/x.jpg", "a/x.png", "y.jpg"):
        Image.new("RGB", (8, 8)).save(photos / name)
    out = photos / "depth"  # inside the input folder
    (out / "a").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(out / "a" / "x.depth.png")
    scan = scan_inputs([photos], out)
    plans, excluded = scan.plans, scan.excluded
    assert [p.source.relative_to(photos).as_posix() for p in plans] == ["a/x.jpg", "a/x.png", "y.jpg"]
    bases = [p.base.relative_to(out.resolve()).as_posix() for p in plans]
    assert bases == ["a/x", "a/x_png", "y"]  # same stem twice: the second keeps its extension
    assert [p.name for p in excluded] == ["x.depth.png"]
    with pytest.raises(BadInputError, match="input folder"):
        scan_inputs([photos], photos)
    with pytest.raises(BadInputError, match="no such file"):
        scan_inputs([tmp_path / "nope"], out)


def test_is_whole_tells_complete_files_from_cut_ones(tmp_path) -> None:
    from visionbench.depth.pointcloud import write_ply

    depth = np.linspace(1, 5, 48 * 64, dtype=np.float32).reshape(48, 64)
    files = [io.save_npy(tmp_path / "d.npy", depth), io.save_png16_mm(tmp_path / "d.png", depth),
             write_ply(tmp_path / "d.ply", np.ones((10, 3), np.float32), np.zeros((10, 3), np.uint8)),
             io.write_json(tmp_path / "d.json", {"a": 1})]  # fmt: skip
    for path in files:
        assert io.is_whole(path), path
        data = path.read_bytes()
        path.write_bytes(data[:-3])
        assert not io.is_whole(path), path
    assert not io.is_whole(tmp_path / "missing.npy")
