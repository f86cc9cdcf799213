"""Pictures of the outputs: each model's prediction of the run's first image, drawn without another forward.

One small real run (visionbench's own run_suite, one worker process a model) of depth-anything-v2-tiny
(relative), depthpro-tiny at 256 px (metric, with FOV) and yolo11n-seg at 128 px, random weights; its
pictures and its report are checked, then a run.json that points outside the run folder. The drawing of
detections, keypoints and SAM masks is checked on real tiny models whose heads are biased to detect.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import visionbench as vb
from visionbench.bench.output_pictures import LONG_SIDE, MAX_BOXES, PICTURES_FILE, write_output_pictures
from visionbench.bench.suite import run_suite
from visionbench.config import BenchConfig, ModelPlan
from visionbench.depth import io as depth_io
from visionbench.models.base import Prediction
from visionbench.report import build_report
from visionbench.results import load_run

MODELS = ["depth-anything-v2-tiny", "depthpro-tiny", "yolo11n-seg"]
EXPECTED = {
    "depth-anything-v2-tiny": {"output-depth.png", "output-depth-side.png"},
    "depthpro-tiny": {"output-depth.png", "output-depth-side.png"},
    "yolo11n-seg": {"output-segment.png"},
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, device, photo_paths) -> Path:
    plans = {"depthpro-tiny": ModelPlan(input_size=256), "yolo11n-seg": ModelPlan(input_size=128)}
    config = BenchConfig(models=MODELS, device=device, weights="random", images=[str(photo_paths[0])], plans=plans,
                         runs=2, budget_s=0.0, warmup=1)  # fmt: skip
    _, folder = run_suite(config, out_root=tmp_path_factory.mktemp("runs"))
    build_report(folder)
    return folder


def rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def colours(pixels: np.ndarray) -> int:
    packed = (pixels[..., 0].astype(np.int32) << 16) | (pixels[..., 1].astype(np.int32) << 8) | pixels[..., 2]
    return len(np.unique(packed))


def test_every_model_of_the_run_has_its_pictures(run_dir, bus):
    run = load_run(run_dir)
    assert [m.status for m in run.models] == ["ok"] * len(MODELS)
    photo_w, photo_h = round(bus.width * LONG_SIDE / bus.height), LONG_SIDE  # bus.jpg is portrait, 810x1080
    for m in run.models:
        assert {Path(p).name for p in m.output_pictures} == EXPECTED[m.name]
        for rel in m.output_pictures:
            path = run_dir / rel
            assert rel.startswith(m.folder + "/") and depth_io.is_whole(path)  # a whole PNG, in the model's folder
            pixels = rgb(path)
            assert pixels.std() > 10 and colours(pixels) > 50, rel
            height, width = pixels.shape[:2]
            if rel.endswith("output-depth.png"):  # the map at the photo's picture size, its scale strip below
                assert width == photo_w and height > photo_h
            elif rel.endswith("output-depth-side.png"):
                assert width == 2 * photo_w and height > photo_h
            else:
                assert (width, height) == (photo_w, photo_h)


def test_depth_pictures_use_the_depth_commands_colours_and_scale(run_dir, bus):
    """Top of the map's colours near, a metre scale for DepthPro (with its FOV recorded), a relative one otherwise."""
    table = depth_io.colour_table("inferno")
    run = {m.name: m for m in load_run(run_dir).models}
    for name, kind in [("depth-anything-v2-tiny", "relative-inverse"), ("depthpro-tiny", "metric")]:
        folder = run_dir / run[name].folder
        pixels = rgb(folder / "output-depth.png")
        ramp = pixels[LONG_SIDE + 4].astype(int)  # a row through the scale's gradient: far (left) to near (right)
        assert np.abs(ramp[2] - table[depth_io.FAR_INDEX]).max() <= 4  # (columns 0 and -1 carry tick marks)
        assert np.abs(ramp[-3] - table[255]).max() <= 4
        facts = json.loads((folder / PICTURES_FILE).read_text())
        assert facts["errors"] == []
        depth = next(p for p in facts["pictures"] if p["shows"] == "depth")
        assert depth["depth_kind"] == kind == run[name].output_summary[0]["depth_kind"]
        assert depth["cmap"] == "inferno" and depth["colour_lo"] <= depth["colour_hi"]
    pro = next(p for p in json.loads((run_dir / run["depthpro-tiny"].folder / PICTURES_FILE).read_text())["pictures"])
    assert pro["fov_deg"] == pytest.approx(run["depthpro-tiny"].output_summary[0]["fov_deg"])
    assert pro["focal_px"] > 0 and pro["far_m"] >= pro["near_m"] > 0


def test_the_report_shows_the_pictures_in_markdown_and_html(run_dir):
    md, page = (run_dir / "report.md").read_text(), (run_dir / "report.html").read_text()
    section = md.split("## Outputs", 1)[1].split("\n## ", 1)[0]
    assert "### Depth maps" in section and "### Detections, masks and keypoints" in section
    assert "Random weights for depth-anything-v2-tiny, depthpro-tiny, yolo11n-seg" in section
    assert "metric depth" in section and "field of view" in section and "relative inverse depth" in section
    linked = re.findall(r"\]\((report_files/output-[^)]+\.png)\)", section)
    run = load_run(run_dir)
    pictures = {(run_dir / p).read_bytes() for m in run.models for p in m.output_pictures}
    assert len(linked) == 1 + 2 + 1  # the photo beside the first depth map, the two maps in a row, the segmentation
    assert {(run_dir / f).read_bytes() for f in linked} <= pictures
    embedded = {base64.b64decode(s) for s in re.findall(r'src="data:image/png;base64,([^"]+)"', page)}
    assert {(run_dir / f).read_bytes() for f in linked} <= embedded  # the HTML carries them in itself


def test_a_path_outside_the_run_folder_is_never_read(run_dir, tmp_path):
    copy = shutil.copytree(run_dir, tmp_path / "run")
    secret = Image.new("RGB", (8, 8), (255, 0, 255))
    secret.save(tmp_path / "secret.png")
    (copy / "yolo11n-seg" / "link.png").symlink_to(tmp_path / "secret.png")
    data = json.loads((copy / "run.json").read_text())
    hostile = ["../secret.png", str(tmp_path / "secret.png"), "yolo11n-seg/link.png"]
    for m in data["models"]:
        m["output_pictures"] = hostile
    (copy / "run.json").write_text(json.dumps(data))
    build_report(copy)
    md, page = (copy / "report.md").read_text(), (copy / "report.html").read_text()
    secret_bytes = (tmp_path / "secret.png").read_bytes()
    assert base64.b64encode(secret_bytes).decode() not in page
    assert all(f.read_bytes() != secret_bytes for f in (copy / "report_files").iterdir())
    assert md.count("lies outside the run folder: not read") == len(hostile) * len(MODELS)


def _detecting(name: str, bias: float, size: int = 128) -> vb.VisionModel:
    """A real YOLO at a small size whose class scores are pushed up, so that random weights detect (as in
    test_adapters): at 256 px zidane.jpg then gives more detections than are drawn."""
    model = vb.create_model(name, weights="random", input_size=size)
    with torch.no_grad():
        for seq in model.module.model[-1].cv3:
            seq[-1].bias.fill_(bias)
    return model


def test_detections_and_keypoints_are_drawn_on_the_photo(tmp_path, photo_paths, zidane):
    model = _detecting("yolo11n-pose", 5.0, size=256)
    (pred,) = model.predict([zidane])
    assert len(pred.boxes) > MAX_BOXES and pred.keypoints is not None
    folder = tmp_path / "yolo11n-pose"
    folder.mkdir()
    assert write_output_pictures(model, photo_paths[1], [pred], folder) == ["yolo11n-pose/output-pose.png"]
    drawn = rgb(folder / "output-pose.png").astype(int)
    plain = np.asarray(zidane.resize((drawn.shape[1], drawn.shape[0]), Image.Resampling.LANCZOS)).astype(int)
    assert drawn.shape[:2] == (432, LONG_SIDE)  # zidane.jpg is 1280x720
    assert (np.abs(drawn - plain).max(axis=2) > 60).mean() > 0.02  # boxes, labels and skeletons cover the photo
    facts = json.loads((folder / PICTURES_FILE).read_text())["pictures"][0]
    assert facts["found"] == len(pred.boxes) and facts["drawn"] == MAX_BOXES and facts["keypoints"]


def test_mobile_sam_mask_is_overlaid(tmp_path, photo_paths, bus):
    torch.manual_seed(0)  # create_model's seed does not reach ultralytics' random init; the worker seeds like this
    model = vb.create_model("mobile-sam", weights="random")
    (pred,) = model.predict([bus])
    folder = tmp_path / "mobile-sam"
    folder.mkdir()
    assert write_output_pictures(model, photo_paths[0], [pred], folder) == ["mobile-sam/output-mask.png"]
    drawn = rgb(folder / "output-mask.png").astype(int)
    plain = np.asarray(bus.resize((drawn.shape[1], drawn.shape[0]), Image.Resampling.LANCZOS)).astype(int)
    mask = np.asarray(Image.fromarray(pred.masks[0]).resize((drawn.shape[1], drawn.shape[0]), Image.Resampling.NEAREST))
    changed = np.abs(drawn - plain).max(axis=2) > 40
    assert 0 < mask.mean() < 1 and changed[mask].mean() > 0.5 > changed[~mask].mean()  # tinted where the mask is


def test_a_picture_that_cannot_be_drawn_is_recorded_and_the_others_stay(tmp_path, photo_paths, bus):
    """Depth drawn (its NaN FOV recorded as unknown), a detection that does not add up (two boxes, one class)
    recorded as an error: nothing raises."""
    model = _detecting("yolo11n", 0.0)
    depth = np.linspace(1.0, 10.0, bus.width * bus.height, dtype=np.float32).reshape(bus.height, bus.width)
    boxes, scores, classes = np.zeros((2, 4), np.float32), np.ones(2, np.float32), np.zeros(1, int)
    pred = Prediction(task="detect", depth=depth, depth_kind="metric", fov_deg=float("nan"), boxes=boxes,
                      scores=scores, classes=classes)  # fmt: skip
    folder = tmp_path / "odd"
    folder.mkdir()
    written = write_output_pictures(model, photo_paths[0], [pred], folder)
    assert written == ["odd/output-depth.png", "odd/output-depth-side.png"]
    record = json.loads((folder / PICTURES_FILE).read_text())
    (error,) = record["errors"]
    assert error.startswith("detect: ")
    facts = record["pictures"][0]
    assert facts["fov_deg"] is None  # NaN is not JSON: unknown
    # the colours span the 2nd to 98th percentile of 1/depth: of 1..10 m evenly, 1.18 m to 9.82 m
    assert facts["near_m"] == pytest.approx(1.18, rel=0.01) and facts["far_m"] == pytest.approx(9.82, rel=0.01)
    assert write_output_pictures(model, tmp_path / "missing.jpg", [pred], folder) == []  # no photo: nothing, no raise
    (error,) = json.loads((folder / PICTURES_FILE).read_text())["errors"]
    assert error.startswith("photo: BadInputError") and "missing.jpg" in error
