"""Every family end to end on real photos: preprocess -> forward -> postprocess at the image's resolution."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import visionbench as vb


@pytest.fixture(scope="module")
def depthpro_tiny(device):
    return vb.create_model("depthpro-tiny", weights="random", device=device)


def test_depthpro_metric_depth_fov_and_focal_at_input_resolution(depthpro_tiny, bus, zidane):
    preds = depthpro_tiny.predict([bus, zidane])
    for pred, im in zip(preds, [bus, zidane], strict=True):
        assert pred.depth.shape == (im.height, im.width)
        assert pred.depth.dtype == np.float32 and np.isfinite(pred.depth).all()
        assert pred.depth_kind == "metric"
        # focal length in pixels follows from the FOV head at the image's own width
        expected = 0.5 * im.width / math.tan(math.radians(pred.fov_deg) / 2)
        assert pred.focal_px == pytest.approx(expected, rel=1e-4)


def test_depthpro_tiny_keeps_the_35_patch_tiling(depthpro_tiny):
    layout = depthpro_tiny.token_layout()
    assert len(layout["patch_scales"]) == 35
    # batch-axis order, as transformers stacks them: 25 patches at full scale first, the 0.25x one last
    assert layout["patch_scales"][0].startswith("scale 1 ") and layout["patch_scales"][-1].startswith("scale 0.25")
    assert sum(s.startswith("scale 1 ") for s in layout["patch_scales"]) == 25
    shapes = []
    embed = depthpro_tiny.module.depth_pro.encoder.patch_encoder.model.embeddings.patch_embeddings
    hook = embed.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape)))
    try:
        with torch.inference_mode():
            depthpro_tiny.forward(depthpro_tiny.example_batch(1))
    finally:
        hook.remove()
    # one image becomes 35 patches on the patch encoder's batch axis, one label each
    assert [s[0] for s in shapes] == [len(layout["patch_scales"])]


def test_depth_anything_relative_inverse_depth_on_mixed_sizes(bus, zidane, device):
    model = vb.create_model("depth-anything-v2-tiny", weights="random", device=device)
    batch = model.preprocess([bus, zidane])
    h, w = batch.inputs["pixel_values"].shape[-2:]
    assert h % 14 == 0 and w % 14 == 0
    preds = model.postprocess(model.forward(batch), batch)
    assert [p.depth.shape for p in preds] == [(bus.height, bus.width), (zidane.height, zidane.width)]
    assert all(p.depth_kind == "relative-inverse" for p in preds)


@pytest.mark.parametrize("name,field", [("yolo11n", "boxes"), ("yolo11n-seg", "masks"), ("yolo11n-pose", "keypoints")])
def test_yolo_families_return_their_task_outputs(name, field, bus, device):
    model = vb.create_model(name, weights="random", input_size=160, device=device)
    batch = model.preprocess([bus])
    # ultralytics' rectangular letterbox: 810x1080 -> 120x160, width padded to the next multiple of 32
    assert tuple(batch.inputs["x"].shape) == (1, 3, 160, 128)
    assert float(batch.inputs["x"].min()) >= 0.0 and float(batch.inputs["x"].max()) <= 1.0
    (pred,) = model.postprocess(model.forward(batch), batch)
    value = getattr(pred, field)
    assert value is not None
    assert pred.boxes.shape[1:] == (4,)
    if field == "masks":
        assert value.shape[1:] == (bus.height, bus.width)
    if field == "keypoints":
        assert value.shape[1:] == (17, 3)
    assert set(model.components()) == {"backbone", "neck", "head"}


def test_yolo_boxes_are_in_image_pixels(bus, device):
    """Force detections by lowering the class bias: boxes must land inside the original image."""
    model = vb.create_model("yolo11n", weights="random", input_size=160, device=device)
    head = model.module.model[-1]
    with torch.no_grad():
        for seq in head.cv3:
            seq[-1].bias.fill_(5.0)  # every anchor scores ~1.0
    (pred,) = model.predict([bus])
    assert len(pred.boxes) > 0
    assert pred.boxes[:, [0, 2]].min() >= 0 and pred.boxes[:, [0, 2]].max() <= bus.width
    assert pred.boxes[:, [1, 3]].min() >= 0 and pred.boxes[:, [1, 3]].max() <= bus.height


def test_mobile_sam_masks_for_the_default_centre_point(bus, device):
    model = vb.create_model("mobile-sam", weights="random", device=device)
    batch = model.preprocess([bus])
    coords = batch.inputs["point_coords"][0, 0].tolist()
    scale = 1024 / max(bus.size)
    assert coords == pytest.approx([bus.width / 2 * scale, bus.height / 2 * scale])
    (pred,) = model.postprocess(model.forward(batch), batch)
    assert pred.masks.shape == (1, bus.height, bus.width) and pred.masks.dtype == bool
    assert model.num_params() == 10_130_092


def test_random_weights_are_seeded():
    a = vb.create_model("depth-anything-v2-tiny", weights="random", seed=0)
    b = vb.create_model("depth-anything-v2-tiny", weights="random", seed=0)
    c = vb.create_model("depth-anything-v2-tiny", weights="random", seed=1)
    sa, sb, sc = a.module.state_dict(), b.module.state_dict(), c.module.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)
    assert all(torch.isfinite(v).all() for v in sa.values() if v.is_floating_point())


def test_bfloat16_build(bus):
    model = vb.create_model("depth-anything-v2-tiny", weights="random", dtype="bfloat16")
    assert {p.dtype for p in model.module.parameters()} == {torch.bfloat16}
    (pred,) = model.predict([bus])
    assert pred.depth.dtype == np.float32


def _bgr(image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(image)[..., ::-1])


def test_yolo_preprocess_is_ultralytics_predictors(bus, zidane):
    """The tensor ultralytics' own DetectionPredictor makes (its letterbox, rectangular for one shape)."""
    from ultralytics.models.yolo.detect import DetectionPredictor

    model = vb.create_model("yolo11n", weights="random", input_size=160)
    # rect=True is what `YOLO.predict` passes its predictor
    predictor = DetectionPredictor(overrides={"imgsz": 160, "device": "cpu", "verbose": False, "rect": True})
    predictor.imgsz, predictor.device = [160, 160], torch.device("cpu")
    predictor.model = SimpleNamespace(format="pt", stride=32, fp16=False, dynamic=False)
    predictor.source_type = SimpleNamespace(tensor=False)
    for images in ([bus], [bus, bus], [bus, zidane]):
        ours = model.preprocess(images).inputs["x"]
        theirs = predictor.preprocess([_bgr(im) for im in images])
        assert ours.shape == theirs.shape and torch.equal(ours, theirs)
    assert model.preprocess([bus, zidane]).inputs["x"].shape[-2:] == (160, 160)  # mixed shapes: the square


def test_yolo_runs_fused_with_the_unfused_module_kept_as_an_option(bus):
    fused = vb.create_model("yolo11n", weights="random", input_size=128, seed=3)
    plain = vb.create_model("yolo11n", weights="random", input_size=128, seed=3, fuse=False)
    assert (fused.variant, plain.variant) == ("fused", "unfused")
    assert plain.num_params() == fused.card.params == 2_624_080 > fused.num_params()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.module.modules())
    batch = fused.preprocess([bus])
    with torch.inference_mode():
        a, b = fused.forward(batch), plain.forward(batch)
    assert torch.allclose(a[0], b[0], atol=1e-3, rtol=1e-3)  # folding BN changes rounding only
    assert fused.describe()["variant"] == "fused" and fused.describe()["published_params"] == 2_624_080


def test_mobile_sam_preprocess_is_ultralytics_predictors(bus, zidane):
    """The tensor ultralytics' SAM Predictor makes: letterbox top-left with grey 114, then normalised."""
    from ultralytics.models.sam import Predictor

    model = vb.create_model("mobile-sam", weights="random", input_size=256)
    predictor = Predictor(overrides={"imgsz": 256, "device": "cpu", "verbose": False})
    predictor.imgsz, predictor.device = [256, 256], torch.device("cpu")
    predictor.mean = torch.tensor([123.675, 116.28, 103.53]).view(-1, 1, 1)
    predictor.std = torch.tensor([58.395, 57.12, 57.375]).view(-1, 1, 1)
    predictor.model = SimpleNamespace(fp16=False)
    for image in (bus, zidane):  # the predictor takes one image at a time
        ours = model.preprocess([image]).inputs["images"]
        assert torch.equal(ours, predictor.preprocess([_bgr(image)]))
