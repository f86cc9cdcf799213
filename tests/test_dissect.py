"""Dissection of tiny real models: statistics against numpy on the saved arrays, order, hooks, pictures."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import visionbench as vb
from visionbench.dissect import DissectOptions, dissect_model, load_layers
from visionbench.dissect.select import leaf_modules, select_layers
from visionbench.dissect.stats import StatsEngine
from visionbench.errors import BadInputError
from visionbench.images import default_image_path, load_image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DEVICE = os.environ.get("VISIONBENCH_DEVICE", "cpu")


@pytest.fixture(scope="module")
def bus():
    return load_image(default_image_path())


@pytest.fixture(scope="module")
def yolo():
    return vb.create_model("yolo11n", weights="random", input_size=128, device=DEVICE)


def _layers(result) -> dict:
    return load_layers(result.path).model_dump()  # through the typed reader the report uses


def test_stats_match_numpy_on_full_npy(yolo, bus, tmp_path):
    result = dissect_model(yolo, bus, tmp_path, DissectOptions(npy_channels="all", channels=4, summary_plots=False))
    doc = _layers(result)
    records = doc["records"]
    assert len(records) == len(select_layers(yolo.module, "conv")) == result.layer_count
    for r in records:
        arr = np.load(result.folder / r["npy"])
        assert list(arr.shape) == r["shape"]  # 'all' channels of a batch of one: the whole output
        a = arr.astype(np.float64)
        assert r["min"] == pytest.approx(a.min(), rel=1e-6, abs=1e-7)
        assert r["max"] == pytest.approx(a.max(), rel=1e-6, abs=1e-7)
        assert r["mean"] == pytest.approx(a.mean(), rel=1e-4, abs=1e-7)
        assert r["std"] == pytest.approx(a.std(), rel=1e-4, abs=1e-8)
        assert r["sparsity"] == pytest.approx((arr == 0).mean(), abs=1e-12)
        assert r["near_zero"] == pytest.approx((np.abs(arr) < 1e-6).mean(), abs=1e-12)
        assert r["nan_count"] == 0 and r["inf_count"] == 0
        assert (result.folder / r["picture"]).stat().st_size > 0
    assert doc["weights"]["mode"] == "random" and doc["device"] == str(yolo.device)
    # bus.jpg is 810x1080: ultralytics' rectangular letterbox keeps its aspect at stride 32 (96 = 810/1080*128)
    assert doc["input"]["tensors"]["x"]["shape"] == [1, 3, 128, 96]


@pytest.mark.parametrize("fused", [True, False], ids=["fused-kernel", "torch-kernels"])
@pytest.mark.parametrize("chunk", [None, 1000])  # 1000: the chunked path that huge outputs (> 2**24) take
def test_stats_engine_nan_inf_and_sparsity_against_numpy(chunk, fused, monkeypatch):
    if chunk:
        monkeypatch.setattr("visionbench.dissect.stats.COUNT_CHUNK", chunk)
    rng = np.random.default_rng(0)
    a = rng.standard_normal(50_000).astype(np.float32)
    a[a < -0.5] = 0.0
    a[:7] = 3e-7
    a[10], a[11], a[12] = np.nan, np.inf, -np.inf
    clean = np.maximum(rng.standard_normal((4, 8, 9)).astype(np.float32), 0) + 1000.0  # var << mean^2
    relu = np.maximum(rng.standard_normal(20_000), 0).astype(np.float32)
    relu[:5] = 2e-7
    offset = (rng.standard_normal(3000) * 1e-3 + 50).astype(np.float32)
    big = rng.standard_normal(3 * (1 << 20) + 5).astype(np.float32)  # split across threads by the fused kernel
    big[::1000] = 0.0
    big[1::1000] = 5e-7
    constant = np.full(5000, 2.0, dtype=np.float32)  # stride/anchor tensors: the std must be exactly 0
    far_first = offset.copy()
    far_first[0] = -1e4  # a first value far from the mean: the shifted sums cancel, the centred pass runs
    arrays = (a, clean, relu, offset, -np.abs(relu) - 1.0, big, constant, np.zeros(100, np.float32), far_first)
    engine = StatsEngine(torch.device("cpu"), fused=fused)
    if fused and engine.kernel is None:
        pytest.skip("no C compiler here: the fused kernel falls back to torch")
    slots = [engine.add(torch.from_numpy(x)) for x in arrays]
    stats = engine.fetch()
    for x, slot in zip(arrays, slots, strict=True):
        s, f = stats[slot], x[np.isfinite(x)].astype(np.float64)
        assert s["min"] == pytest.approx(f.min()) and s["max"] == pytest.approx(f.max())
        assert s["mean"] == pytest.approx(f.mean(), rel=1e-5)
        assert s["std"] == pytest.approx(f.std(), rel=1e-3)
        assert s["zeros"] == (x == 0).sum() and s["near_zero"] == (np.abs(x) < 1e-6).sum()
        assert s["nan"] == np.isnan(x).sum() and s["inf"] == np.isinf(x).sum()


def test_every_selected_layer_in_execution_order(yolo, tmp_path):
    seen: list[str] = []
    leaves = leaf_modules(yolo.module)
    handles = [m.register_forward_hook(lambda m, i, o, n=n: seen.append(n)) for n, m in leaves]
    try:
        with torch.inference_mode():
            yolo.forward(yolo.example_batch(1))
    finally:
        for h in handles:
            h.remove()
    result = dissect_model(yolo, None, tmp_path, DissectOptions(layers="all", pictures=False, summary_plots=False))
    records = _layers(result)["records"]
    assert [r["name"] for r in records] == seen
    assert [r["index"] for r in records] == list(range(len(seen)))
    shared = [r for r in records if r["type"] == "SiLU"]
    calls = [r["call"] for r in shared if r["name"] == shared[0]["name"]]
    assert calls == list(range(len(calls))) and len(calls) > 1  # ultralytics shares one SiLU: every call recorded
    assert not any((tmp_path / "yolo11n" / "maps").glob("*.png"))


def test_hook_error_never_leaves_hooks(yolo, tmp_path, monkeypatch):
    batch = yolo.example_batch(1)
    with torch.inference_mode():
        before = yolo.forward(batch)[0].clone()
    calls = {"n": 0}
    original = StatsEngine.add

    def failing(self, tensor):
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("boom in a hook")
        return original(self, tensor)

    monkeypatch.setattr(StatsEngine, "add", failing)
    with pytest.raises(RuntimeError, match="boom"):
        dissect_model(yolo, None, tmp_path, DissectOptions(layers="all"))
    monkeypatch.undo()
    assert all(not m._forward_hooks for m in yolo.module.modules())
    with torch.inference_mode():
        after = yolo.forward(batch)[0]
    torch.testing.assert_close(after, before)


def test_layers_json_reads_back_typed_with_captions(yolo, bus, tmp_path):
    result = dissect_model(yolo, bus, tmp_path, DissectOptions(channels=4, npy_channels=0, summary_plots=False))
    doc = load_layers(tmp_path)  # the --out folder: its one model folder's file
    assert len(doc.records) == result.layer_count and doc.writer == "threads" and doc.normalisation
    first = doc.records[0]
    assert first.caption == f"#0 {first.name} Conv2d {first.shape} ch 0-3 of {first.shape[1]}"
    assert first.npy is None and (result.folder / first.picture).exists()
    assert np.asarray(Image.open(result.folder / first.picture)).shape[0] > 2 * 32  # 4 tiles of at least 32 px
    Path(result.path).write_text(json.dumps({"records": [{"index": "x"}]}))
    with pytest.raises(BadInputError, match="not a layers.json of this visionbench"):
        load_layers(result.folder)


def test_bad_selection_is_a_clear_error(yolo, tmp_path):
    with pytest.raises(BadInputError, match="matches none"):
        dissect_model(yolo, None, tmp_path, DissectOptions(match="no_such_layer_xyz"))
    with pytest.raises(BadInputError, match="no leaf module of type"):
        dissect_model(yolo, None, tmp_path, DissectOptions(layers="Conv2d,NotAType"))
    assert not (tmp_path / "yolo11n").exists()


def test_depth_anything_tokens_pictured_on_the_patch_grid(tmp_path):
    model = vb.create_model("depth-anything-v2-tiny", weights="random", device=DEVICE)
    batch = model.example_batch(1)
    name = "backbone.encoder.layer.0.mlp.fc2"
    captured = {}
    module = dict(model.module.named_modules())[name]
    handle = module.register_forward_hook(lambda m, i, o: captured.setdefault("out", o.detach().clone()))
    try:
        result = dissect_model(model, None, tmp_path, DissectOptions(match=r"mlp\.fc2$", npy_channels="all"))
    finally:
        handle.remove()
    layout = model.token_layout(batch)
    rows, cols = layout["grid"]
    rec = next(r for r in _layers(result)["records"] if r["name"] == name)
    assert rec["layout"] == "tokens"
    arr = np.load(result.folder / rec["npy"])
    tokens = captured["out"].numpy()  # [1, 1 + rows*cols, dim]
    assert arr.shape == (1, tokens.shape[-1], rows, cols)
    np.testing.assert_array_equal(arr[0, :, 2, 3], tokens[0, 1 + 2 * cols + 3])  # class token dropped, row-major
    assert (result.folder / "summary.png").exists() and (result.folder / "components.png").exists()


def test_depthpro_tiny_patches_and_blocks(tmp_path, bus):
    model = vb.create_model("depthpro-tiny", weights="random", device=DEVICE)
    opts = DissectOptions(match=r"(patch_embeddings\.projection|layer\.1\.mlp\.fc2|head\.layers\.\d+)$", blocks=[0, -1],
                          channels=4, npy_channels=2, summary_plots=False)  # fmt: skip
    result = dissect_model(model, bus, tmp_path, opts)
    doc = _layers(result)
    proj = next(
        r for r in doc["records"] if r["name"].endswith("patch_encoder.model.embeddings.patch_embeddings.projection")
    )
    assert proj["shape"][0] == 35 and proj["patches"] and (result.folder / proj["patches"]).exists()
    assert np.load(result.folder / proj["npy"]).shape == (35, 2, 4, 4)
    assert any(r["layout"] == "tokens" for r in doc["records"])
    encoders = {b["encoder"] for b in doc["blocks"]}
    assert encoders == set(model.token_layout()["module_prefixes"])
    assert sorted({b["block"] for b in doc["blocks"]}) == [0, 1]
    assert all(b["shown"] == "scale 0.25 (1x1) #0" for b in doc["blocks"] if "patch_encoder" in b["encoder"])
    for b in doc["blocks"]:
        assert (result.folder / b["figure"]).exists()
    with pytest.raises(BadInputError, match="blocks 7"):
        dissect_model(model, None, tmp_path, DissectOptions(blocks=[7]))


def test_the_report_reads_the_typed_records(yolo, bus, tmp_path):
    from visionbench.report.arch import dissection_findings, stage_rows

    result = dissect_model(yolo, bus, tmp_path, DissectOptions(layers="all", pictures=False, summary_plots=False))
    records = [r for r in load_layers(result.folder).records if r.is_tensor_with_stats]
    rows = stage_rows(records)
    assert sum(int(row[1]) for row in rows) == len(records) > 0
    assert [row[0] for row in rows] == list(dict.fromkeys(r.component for r in records))
    big = max(records, key=lambda r: max(abs(r.min), abs(r.max)))
    assert dissection_findings(records)[0].startswith(f"Largest magnitude: {big.name} ")
