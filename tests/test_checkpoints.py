"""Pretrained weights as users have them (issue 16): Apple's depth_pro.pt, checkpoints saved by
ultralytics' own code, a Hugging Face cache folder, and the bad files around them, each one line."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import visionbench as vb
from visionbench.errors import VisionbenchError, WeightsError
from visionbench.models import depth_pro_checkpoint as dpc
from visionbench.models.ultralytics_common import weight_search_dirs, weights_dir

SRC = Path(vb.__file__).resolve().parents[1]


def _vit(prefix: str, layers: int) -> set[str]:
    """A timm ViT's keys as ml-depth-pro's vit_factory builds it (dinov2 preset, no classifier)."""
    keys = {f"{prefix}cls_token", f"{prefix}pos_embed", f"{prefix}patch_embed.proj.weight"}
    keys |= {f"{prefix}patch_embed.proj.bias", f"{prefix}norm.weight", f"{prefix}norm.bias"}
    for i in range(layers):
        b = f"{prefix}blocks.{i}."
        keys |= {b + s for s in ("ls1.gamma", "ls2.gamma")}
        keys |= {f"{b}{m}.{p}" for m in ("norm1", "norm2", "attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2")
                 for p in ("weight", "bias")}  # fmt: skip
    return keys


def original_layout(config) -> set[str]:
    """Every key of ml-depth-pro's DepthPro state dict, read off its modules (encoder.py, decoder.py,
    fov.py, depth_pro.py) for this config: what `hf_to_original` must produce, no more, no less."""
    wb = ("weight", "bias")
    keys = _vit("encoder.patch_encoder.", config.patch_model_config.num_hidden_layers)
    keys |= _vit("encoder.image_encoder.", config.image_model_config.num_hidden_layers)
    # projection (1x1 conv, no bias) then 3 / 2 / 1 / 1 / 1 transposed convs, no bias
    keys |= {f"encoder.upsample_latent0.{i}.weight" for i in range(4)}
    keys |= {f"encoder.upsample_latent1.{i}.weight" for i in range(3)}
    keys |= {f"encoder.upsample{n}.{i}.weight" for n in range(3) for i in range(2)}
    keys |= {f"encoder.upsample_lowres.{p}" for p in wb} | {f"encoder.fuse_lowres.{p}" for p in wb}
    # decoder: convs[0] is Identity when the first level already has the decoder's width
    first = config.intermediate_feature_dims[-1]
    keys |= {f"decoder.convs.{i}.weight" for i in range(0 if first != config.fusion_hidden_size else 1, 5)}
    for f in range(5):
        keys |= {f"decoder.fusions.{f}.resnet{r}.residual.{i}.{p}" for r in (1, 2) for i in (1, 3) for p in wb}
        keys |= {f"decoder.fusions.{f}.out_conv.{p}" for p in wb}
        if f:
            keys.add(f"decoder.fusions.{f}.deconv.weight")
    keys |= {f"head.{i}.{p}" for i in (0, 1, 2, 4) for p in wb}
    if config.use_fov_model:
        keys |= _vit("fov.encoder.0.", config.fov_model_config.num_hidden_layers)
        keys |= {f"fov.encoder.1.{p}" for p in wb} | {f"fov.downsample.0.{p}" for p in wb}
        keys |= {f"fov.head.{i}.{p}" for i in (0, 2, 4) for p in wb}
    return keys


@pytest.fixture(scope="module")
def depthpro_tiny():
    return vb.create_model("depthpro-tiny", weights="random", seed=11)


def test_depth_pro_mapping_round_trip_covers_the_original_layout(depthpro_tiny):
    hf = depthpro_tiny.module.state_dict()
    original = dpc.hf_to_original(hf)
    assert set(original) == original_layout(depthpro_tiny.module.config)
    qkv = original["encoder.patch_encoder.blocks.0.attn.qkv.weight"]
    q = hf["depth_pro.encoder.patch_encoder.model.encoder.layer.0.attention.q_proj.weight"]
    assert qkv.shape[0] == 3 * q.shape[0] and torch.equal(qkv[: q.shape[0]], q)
    back = dpc.original_to_hf(original)
    assert set(back) == set(hf) and all(torch.equal(back[k], hf[k]) for k in hf)


def test_apple_checkpoint_loads_with_weights_only_and_says_so(depthpro_tiny, tmp_path, bus):
    path = tmp_path / "depth_pro.pt"
    torch.save(dpc.hf_to_original(depthpro_tiny.module.state_dict()), path)
    loaded = vb.create_model("depthpro-tiny", weights=str(path))
    assert loaded.weights.mode == "pretrained" and "ml-depth-pro layout" in loaded.weights.source
    assert loaded.weights.files == {str(path): hashlib.sha256(path.read_bytes()).hexdigest()}
    a, b = depthpro_tiny.module.state_dict(), loaded.module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    (pa,), (pb,) = depthpro_tiny.predict([bus]), loaded.predict([bus])
    assert (pa.depth == pb.depth).all() and pa.fov_deg == pb.fov_deg


def test_apple_checkpoint_of_another_shape_or_with_stray_keys_is_one_line(depthpro_tiny, tmp_path):
    original = dpc.hf_to_original(depthpro_tiny.module.state_dict())
    stray = tmp_path / "stray.pt"
    torch.save({**original, "encoder.patch_encoder.blocks.0.extra.weight": torch.zeros(1)}, stray)
    with pytest.raises(WeightsError, match="not part of DepthPro's layout.*extra"):
        vb.create_model("depthpro-tiny", weights=str(stray))
    short = tmp_path / "short.pt"
    torch.save({k: v for k, v in original.items() if not k.startswith("head.")}, short)
    with pytest.raises(WeightsError, match="missing keys.*head.layers"):
        vb.create_model("depthpro-tiny", weights=str(short))


def test_truncated_and_empty_checkpoints_are_one_line(depthpro_tiny, tmp_path):
    whole = tmp_path / "whole.pt"
    torch.save(dpc.hf_to_original(depthpro_tiny.module.state_dict()), whole)
    cut = tmp_path / "depth_pro.pt"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    for bad in (cut, empty):
        with pytest.raises(WeightsError, match="not a readable checkpoint") as info:
            vb.create_model("depthpro-tiny", weights=str(bad))
        assert "\n" not in str(info.value)


@pytest.fixture(scope="module")
def ultralytics_checkpoint(tmp_path_factory) -> Path:
    """yolo11n with random weights, saved by ultralytics' own `Model.save` (what release files are)."""
    from ultralytics import YOLO

    path = tmp_path_factory.mktemp("ul") / "yolo11n.pt"
    YOLO("yolo11n.yaml").save(str(path))
    return path


def test_checkpoint_saved_by_ultralytics_loads_without_the_flag(ultralytics_checkpoint, bus):
    as_weights = vb.create_model("yolo11n", weights=str(ultralytics_checkpoint), input_size=128)
    as_model = vb.create_model(f"ultralytics:{ultralytics_checkpoint}", input_size=128)
    digest = hashlib.sha256(ultralytics_checkpoint.read_bytes()).hexdigest()
    for model in (as_weights, as_model):
        assert model.weights.mode == "pretrained" and model.weights.files == {str(ultralytics_checkpoint): digest}
        assert model.variant == "fused"
    a, b = as_weights.module.state_dict(), as_model.module.state_dict()
    assert set(a) == set(b) and all(torch.allclose(a[k].float(), b[k].float()) for k in a)
    record = as_weights.weights.record()
    assert record.files[str(ultralytics_checkpoint)] == digest and record.mode == "pretrained"


def test_a_class_outside_the_allow_list_is_named(ultralytics_checkpoint, tmp_path):
    import datetime

    ckpt = torch.load(ultralytics_checkpoint, weights_only=False)  # our own file, made by the fixture
    ckpt["saved_at"] = datetime.datetime(2026, 1, 1)
    odd = tmp_path / "odd.pt"
    torch.save(ckpt, odd)
    with pytest.raises(WeightsError, match=r"refers to datetime\.datetime, which is not a class") as info:
        vb.create_model(f"ultralytics:{odd}", input_size=128)
    assert "--trust-remote-code" in str(info.value) and "\n" not in str(info.value)
    trusted = vb.create_model(f"ultralytics:{odd}", input_size=128, trust_remote_code=True)
    assert trusted.weights.mode == "pretrained"


def test_another_architectures_checkpoint_is_one_line(ultralytics_checkpoint):
    with pytest.raises(WeightsError, match="does not fit this architecture"):
        vb.create_model("yolo11n-pose", weights=str(ultralytics_checkpoint), input_size=128)
    with pytest.raises(WeightsError, match="does not fit this architecture"):
        vb.create_model("depth-anything-v2-tiny", weights=str(ultralytics_checkpoint))


def test_auto_never_downloads_offline_and_looks_where_downloads_land(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    model = vb.create_model("yolo11n", weights="auto", input_size=128)
    assert model.weights.mode == "random" and "no download was tried (YOLO_OFFLINE is set)" in model.weights.warning
    assert weights_dir() in weight_search_dirs() and str(weights_dir()) in model.weights.warning


def test_auto_with_the_release_host_unreachable_says_so(monkeypatch, tmp_path):
    """This machine has no network: the 2 s probe fails and `auto` says why, without a long wait."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("YOLO_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    from visionbench.models.weights import can_connect

    if can_connect("github.com"):
        pytest.skip("the release host answers here: this test is for closed networks")
    model = vb.create_model("yolo11n", weights="auto", input_size=128)
    assert model.weights.mode == "random" and "github.com is unreachable" in model.weights.warning


def _hub_cache(root: Path, depthpro_tiny, revision: str, *, with_weights: bool = True) -> Path:
    """The layout huggingface_hub writes: models--apple--DepthPro-hf/{refs/main, snapshots/<rev>/}."""
    from transformers import DepthProImageProcessor

    repo = root / "models--apple--DepthPro-hf"
    snapshot = repo / "snapshots" / revision
    depthpro_tiny.module.save_pretrained(snapshot)
    DepthProImageProcessor(size={"height": 256, "width": 256}, image_mean=[0.4] * 3).save_pretrained(snapshot)
    if not with_weights:
        for f in snapshot.glob("*.safetensors"):
            f.unlink()
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    return snapshot


def _in_fresh_process(code: str, cache: Path) -> dict:
    """huggingface_hub reads HF_HUB_CACHE at import: a fresh interpreter sees the test's cache."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_hub_cache_snapshot_resolves_as_pretrained_with_its_own_settings(depthpro_tiny, tmp_path):
    revision = "0123456789abcdef0123456789abcdef01234567"
    snapshot = _hub_cache(tmp_path / "hub", depthpro_tiny, revision)
    code = (
        f"REVISION = {revision!r}"
        + """
import json, visionbench as vb
m = vb.create_model("depthpro", weights="auto")
door = vb.create_model("hf:apple/DepthPro-hf@" + REVISION)
r = m.weights.record()
print(json.dumps({"mode": r.mode, "source": r.source, "revision": r.revision, "files": r.files,
                  "input_size": m.input_size, "mean": list(m.processor.image_mean),
                  "layers": m.module.config.patch_model_config.num_hidden_layers,
                  "door_revision": door.weights.revision, "door_mode": door.weights.mode}))
"""
    )
    got = _in_fresh_process(code, tmp_path / "hub")
    assert got["mode"] == "pretrained" and got["revision"] == revision and got["door_revision"] == revision
    assert "config and preprocessor settings from that folder" in got["source"]
    assert got["input_size"] == 256 and got["mean"] == [0.4, 0.4, 0.4]  # the folder's, not the built-in 1536 / 0.5
    assert got["layers"] == 2  # the folder's config, not the hard-coded ViT-L
    weights_file = snapshot / "model.safetensors"
    assert got["files"][str(weights_file)] == hashlib.sha256(weights_file.read_bytes()).hexdigest()
    assert {Path(p).name for p in got["files"]} == {"config.json", "preprocessor_config.json", "model.safetensors"}


def test_hub_cache_without_weights_or_revision_is_one_line(depthpro_tiny, tmp_path):
    revision = "fedcba9876543210fedcba9876543210fedcba98"
    _hub_cache(tmp_path / "hub", depthpro_tiny, revision, with_weights=False)
    code = """
import json, visionbench as vb
from visionbench.errors import VisionbenchError
out = {}
for name in ("hf:apple/DepthPro-hf", "hf:apple/DepthPro-hf@0000000000000000000000000000000000000000"):
    try:
        vb.create_model(name)
        out[name] = "built"
    except VisionbenchError as e:
        out[name] = str(e)
print(json.dumps(out))
"""
    got = _in_fresh_process(code, tmp_path / "hub")
    no_weights = got["hf:apple/DepthPro-hf"]
    assert "has no weights file" in no_weights and "\n" not in no_weights
    assert "HF_HUB_OFFLINE=1" not in no_weights  # already set: no hint to set it
    no_revision = got["hf:apple/DepthPro-hf@0000000000000000000000000000000000000000"]
    assert "is not in the local Hugging Face cache" in no_revision and "@0000" in no_revision


def test_auto_with_a_cache_missing_weights_falls_back_loudly_naming_it(depthpro_tiny, tmp_path):
    _hub_cache(tmp_path / "hub", depthpro_tiny, "a" * 40, with_weights=False)
    code = """
import json, visionbench as vb
from visionbench.models.registry import BuildSpec, get_card
from visionbench.models.hf_common import build_transformers
from visionbench.models.depth_pro import depth_pro_config
from visionbench.models.weights import parse_weights
from transformers import DepthProForDepthEstimation
import torch
spec = BuildSpec(card=get_card("depthpro-tiny"), weights=parse_weights("auto"), device=torch.device("cpu"),
                 dtype=torch.float32, input_size=256)
_, info, _ = build_transformers(spec, DepthProForDepthEstimation, depth_pro_config(tiny=True), "apple/DepthPro-hf")
print(json.dumps({"mode": info.mode, "warning": info.warning}))
"""
    got = _in_fresh_process(code, tmp_path / "hub")
    assert got["mode"] == "random" and "has no weights file" in got["warning"] and "RANDOM" in got["warning"]


@pytest.mark.parametrize(
    "content,needle",
    [("", "empty config"), ("{not json", "not a readable JSON config"),
     ('{"model_type": "no-such-model"}', "model_type 'no-such-model'"),
     ('{"model_type": "depth_anything", "auto_map": {"AutoConfig": "x.Y"}}', "needs its own Python code")],
)  # fmt: skip
def test_hf_folders_with_a_bad_config_are_one_line(content, needle, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(content)
    (folder / "model.safetensors").write_bytes(b"")
    with pytest.raises(VisionbenchError) as info:
        vb.create_model(f"hf:{folder}")
    assert needle in str(info.value) and "\n" not in str(info.value)
