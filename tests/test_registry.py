"""The registry: names, cards, duplicate refusal, suggestions for unknown names, exact full-size counts."""

from __future__ import annotations

import pytest
import torch

import visionbench as vb
from visionbench.errors import UnknownModelError, UnsupportedOptionError
from visionbench.models.card import ModelCard
from visionbench.models.registry import register, resolve_device, resolve_dtype

SUITE = [
    "depth-anything-v2-small", "depth-anything-v2-base", "depth-anything-v2-large", "depthpro",
    "mobile-sam", "yolo11n", "yolo11n-seg", "yolo11n-pose",
]  # fmt: skip

EXACT_PARAMS = {
    "depthpro": 951_991_330,
    "depth-anything-v2-small": 24_785_089,
    "depth-anything-v2-base": 97_470_785,
    "depth-anything-v2-large": 335_315_649,
    "yolo11n": 2_624_080,
    "yolo11n-seg": 2_876_848,
    "yolo11n-pose": 2_908_507,
    "mobile-sam": 10_130_092,
}


def test_suite_is_registered_and_tiny_variants_hidden():
    assert sorted(vb.list_models()) == sorted(SUITE)
    everything = vb.list_models(include_hidden=True)
    assert {"depthpro-tiny", "depth-anything-v2-tiny"} <= set(everything)
    assert vb.list_models("depth-anything-*") == [n for n in SUITE if n.startswith("depth-anything")]


@pytest.mark.parametrize("name", SUITE)
def test_full_size_architecture_has_exact_parameter_count(name):
    """Built on meta (no memory, no compute): the count is a property of the architecture.

    YOLO is run fused (Conv+BN folded, as ultralytics' predictor does); the published count is the
    trained module's, kept with `fuse=False`.
    """
    unfused = {"fuse": False} if name.startswith("yolo") else {}
    model = vb.create_model(name, device="meta", weights="random", **unfused)
    assert model.num_params() == EXACT_PARAMS[name] == vb.get_card(name).params
    if unfused:
        assert model.variant == "unfused"
        fused = vb.create_model(name, device="meta", weights="random")
        assert fused.variant == "fused" and fused.num_params() < EXACT_PARAMS[name]
        assert fused.describe()["published_params"] == EXACT_PARAMS[name]


def test_depthpro_without_fov_head():
    model = vb.create_model("depthpro", device="meta", weights="random", use_fov_model=False)
    assert model.num_params() == 647_731_777
    assert "fov" not in model.components()


def test_duplicate_names_are_refused():
    card = vb.get_card("yolo11n")
    with pytest.raises(ValueError, match="already registered"):
        register(card)(lambda spec: None)


def test_unknown_name_suggests_nearest():
    with pytest.raises(UnknownModelError, match="depthpro") as info:
        vb.create_model("depth-pro")
    assert "Did you mean" in str(info.value)
    with pytest.raises(UnknownModelError, match="yolo11n"):
        vb.get_card("yolo11")


def test_cards_are_typed_and_complete():
    for name in SUITE:
        card = vb.get_card(name)
        assert isinstance(card, ModelCard)
        assert card.license and card.weights_source and card.paper
        assert card.input_size in {518, 640, 1024, 1536}


def test_bad_option_values():
    with pytest.raises(UnsupportedOptionError, match="dtype"):
        resolve_dtype("float8")
    assert resolve_dtype("bf16") is torch.bfloat16
    with pytest.raises(UnsupportedOptionError, match="device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UnsupportedOptionError, match="CUDA"):
            resolve_device("cuda")
    with pytest.raises(UnsupportedOptionError, match="input-size"):
        vb.create_model("yolo11n", input_size=5)
