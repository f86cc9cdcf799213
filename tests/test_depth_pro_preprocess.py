"""DepthPro's fast preprocessing gives the transformers processor's tensor (resize-first is exact up to rounding)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import visionbench as vb
from visionbench.images import load_image, sample_images
from visionbench.models.base import VisionModel


@pytest.fixture(scope="module")
def model() -> VisionModel:
    return vb.create_model("depthpro-tiny", weights="random", device="cpu")


def test_matches_processor_on_real_photos(model: VisionModel) -> None:
    photos = [load_image(p) for p in sample_images()]  # 810x1080 and 1280x720: down-sizing, two aspect ratios
    ours = model.preprocess(photos).inputs["pixel_values"]
    theirs = torch.cat([model.processor(images=im, return_tensors="pt")["pixel_values"] for im in photos])
    assert ours.shape == theirs.shape == (2, 3, model.input_size, model.input_size)
    assert torch.allclose(ours, theirs, atol=1e-5), (ours - theirs).abs().max()


def test_matches_processor_when_upsampling(model: VisionModel) -> None:
    rng = np.random.default_rng(0)
    small = Image.fromarray(rng.integers(0, 256, (50, 70, 3), dtype=np.uint8))  # noise: every pixel matters
    ours = model.preprocess([small]).inputs["pixel_values"]
    theirs = model.processor(images=small, return_tensors="pt")["pixel_values"]
    assert torch.allclose(ours, theirs, atol=1e-5), (ours - theirs).abs().max()
    assert model.preprocess([small]).sizes == [(50, 70)]
