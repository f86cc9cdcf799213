"""Weights: auto falls back loudly and fast, local files and folders load, bad files fail clearly, no pickle."""

from __future__ import annotations

import hashlib
import time

import pytest
import torch
from safetensors.torch import save_file

import visionbench as vb
from visionbench.errors import WeightsError
from visionbench.models import weights as weights_mod


def _same_outputs(a, b, image) -> bool:
    batch = a.preprocess([image])
    with torch.inference_mode():
        out_a, out_b = a.forward(batch), b.forward(batch)
    return torch.allclose(out_a.predicted_depth, out_b.predicted_depth)


def test_auto_falls_back_to_random_and_says_so():
    model = vb.create_model("depth-anything-v2-small", weights="auto")
    assert model.weights.mode == "random"
    assert "RANDOM" in model.weights.warning and "depth-anything-v2-small" in model.weights.warning
    assert "Depth-Anything-V2-Small-hf" in model.weights.warning
    assert model.describe()["weights_warning"] == model.weights.warning


def test_unreachable_hub_never_hangs(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(weights_mod, "HUB_HOST", "127.0.0.1")  # nothing listens on 443 here
    weights_mod.hub_reachable.cache_clear()
    try:
        start = time.perf_counter()
        assert weights_mod.hub_reachable() is False
        model = vb.create_model("depth-anything-v2-small", weights="auto")
        assert model.weights.mode == "random"
        assert time.perf_counter() - start < 10
    finally:
        weights_mod.hub_reachable.cache_clear()


def test_hf_offline_is_honoured(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    weights_mod.hub_reachable.cache_clear()
    assert weights_mod.hub_reachable() is False
    weights_mod.hub_reachable.cache_clear()


def test_safetensors_file_round_trip(tmp_path, bus):
    source = vb.create_model("depth-anything-v2-tiny", weights="random", seed=3)
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in source.module.state_dict().items()}, str(path))
    loaded = vb.create_model("depth-anything-v2-tiny", weights=str(path))
    assert loaded.weights.mode == "pretrained" and str(path) in loaded.weights.source
    assert _same_outputs(source, loaded, bus)
    # a folder holding that one file works too
    assert vb.create_model("depth-anything-v2-tiny", weights=str(tmp_path)).weights.mode == "pretrained"


def test_hf_folder_round_trip_and_hf_door(tmp_path, bus):
    source = vb.create_model("depth-anything-v2-tiny", weights="random", seed=5)
    source.module.save_pretrained(tmp_path / "da")
    loaded = vb.create_model("depth-anything-v2-tiny", weights=str(tmp_path / "da"))
    assert _same_outputs(source, loaded, bus)
    door = vb.create_model(f"hf:{tmp_path / 'da'}", input_size=98)
    assert door.weights.mode == "pretrained" and door.card.task == "depth-relative"
    (pred,) = door.predict([bus])
    assert pred.depth.shape == (bus.height, bus.width)


def test_weights_of_another_architecture_name_the_keys(tmp_path):
    yolo = vb.create_model("yolo11n", weights="random", input_size=128, fuse=False)
    path = tmp_path / "yolo.safetensors"
    save_file({k: v.contiguous() for k, v in yolo.module.state_dict().items()}, str(path))
    with pytest.raises(WeightsError, match="missing keys") as info:
        vb.create_model("depth-anything-v2-tiny", weights=str(path))
    assert "unexpected keys" in str(info.value) and "model.0.bn.bias" in str(info.value)


def test_unreadable_and_corrupt_weights(tmp_path):
    with pytest.raises(WeightsError, match="no such file"):
        vb.create_model("yolo11n", weights=str(tmp_path / "missing.pt"))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(WeightsError, match="cannot read"):
        vb.create_model("yolo11n", weights=str(bad))
    odd = tmp_path / "weights.onnx"
    odd.write_bytes(b"x")
    with pytest.raises(WeightsError, match="unsupported weights format"):
        vb.create_model("yolo11n", weights=str(odd))


def test_pickled_stock_checkpoint_loads_without_trust(tmp_path):
    """An ultralytics-style .pt pickles the whole model; its classes are on the allow-list (issue 16)."""
    yolo = vb.create_model("yolo11n", weights="random", input_size=128, seed=2, fuse=False)
    path = tmp_path / "yolo11n.pt"
    torch.save({"model": yolo.module}, path)
    loaded = vb.create_model("yolo11n", weights=str(path), input_size=128, fuse=False)
    assert loaded.weights.mode == "pretrained"
    assert loaded.weights.files == {str(path): hashlib.sha256(path.read_bytes()).hexdigest()}
    a, b = yolo.module.state_dict(), loaded.module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    door = vb.create_model(f"ultralytics:{path}", input_size=128)
    assert door.card.task == "detect" and door.card.params is None


def test_plain_state_dict_pt_loads_without_pickle(tmp_path):
    sam = vb.create_model("mobile-sam", weights="random", seed=4)
    path = tmp_path / "mobile_sam.pt"
    torch.save(sam.module.state_dict(), path)
    loaded = vb.create_model("mobile-sam", weights=str(path))
    assert loaded.weights.mode == "pretrained"


def test_auto_finds_local_ultralytics_checkpoint(tmp_path, monkeypatch):
    yolo = vb.create_model("yolo11n-pose", weights="random", input_size=128, seed=7, fuse=False)
    save_file(
        {k: v.contiguous() for k, v in yolo.module.state_dict().items()}, str(tmp_path / "yolo11n-pose.safetensors")
    )
    monkeypatch.chdir(tmp_path)
    found = vb.create_model("yolo11n-pose", weights="auto", input_size=128)
    assert found.weights.mode == "pretrained" and found.weights.warning is None


def test_ultralytics_yaml_door():
    model = vb.create_model("ultralytics:yolo11n-seg.yaml", weights="random", input_size=128, fuse=False)
    assert model.card.task == "segment" and model.num_params() == 2_876_848
