"""Precision drift: float32 vs bfloat16 on a tiny real model; float16 overflow on a module with large activations."""

from __future__ import annotations

import json
import os

import numpy as np
import torch
from torch import nn

import visionbench as vb
from visionbench.dissect import DissectOptions, dissect_model
from visionbench.dissect.drift import first_jump
from visionbench.models.base import Batch, Prediction, VisionModel, WeightsInfo
from visionbench.models.card import ModelCard

os.environ.setdefault("HF_HUB_OFFLINE", "1")


class Loud(nn.Module):
    """Conv layers whose middle one produces values near 1e6: fine in float32/bfloat16, beyond float16's 65504."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Conv2d(3, 4, 3, padding=1)
        self.loud = nn.Conv2d(4, 4, 1)
        self.quiet = nn.Conv2d(4, 1, 1)
        with torch.no_grad():
            self.loud.weight.fill_(2.0e5)
            self.quiet.weight.fill_(1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.quiet(self.loud(self.first(x).abs() + 1.0))[:, 0]


class LoudModel(VisionModel):
    def preprocess(self, images):  # pragma: no cover - the tests use example_batch
        raise NotImplementedError

    def forward(self, batch: Batch):
        return self.module(batch.inputs["x"])

    def postprocess(self, outputs, batch):
        return [
            Prediction(task="depth-relative", depth=o.float().numpy(), depth_kind="relative-inverse") for o in outputs
        ]

    def example_batch(self, batch_size=1, device=None):
        return Batch({"x": torch.rand(batch_size, 3, 16, 16)}, [(16, 16)] * batch_size)


def _loud() -> LoudModel:
    torch.manual_seed(0)
    card = ModelCard(name="loud", task="depth-relative", library="transformers", architecture="Loud", params=None,
                     input_size=16, mean=(0, 0, 0), std=(1, 1, 1), license="test")  # fmt: skip
    return LoudModel(card, Loud().eval(), WeightsInfo("random", "test"), input_size=16, device=torch.device("cpu"),
                     dtype=torch.float32)  # fmt: skip


def test_bfloat16_drift_small_nonzero_and_weights_restored(tmp_path):
    model = vb.create_model("depth-anything-v2-tiny", weights="random")
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    result = dissect_model(model, None, tmp_path, DissectOptions(layers="all", pictures=False, drift="bfloat16"))
    drift = json.loads(result.path.read_text())["drift"]
    errors = [r["relative_error"] for r in drift["layers"] if r["relative_error"] is not None]
    assert len(errors) == len(drift["layers"]) > 50
    assert 0 < np.median(errors) < 0.05  # bfloat16 keeps 8 bits of mantissa: about 0.4 % a rounding
    assert all(r["cosine"] > 0.99 for r in drift["layers"])
    assert not any(r["overflow"] or r["nonfinite"] for r in drift["layers"])
    assert 0 < drift["final_relative_error"] < 0.1
    assert drift["final"]["predictions"]["depth_relative_error"] > 0
    assert (result.folder / "drift.png").exists()
    for k, v in model.module.state_dict().items():  # the float32 weights are the very same afterwards
        assert v.dtype == before[k].dtype and torch.equal(v, before[k]), k


def test_float16_overflow_named_at_the_loud_layer(tmp_path):
    model = _loud()
    result = dissect_model(model, None, tmp_path, DissectOptions(pictures=False, summary_plots=False, drift="float16"))
    drift = json.loads(result.path.read_text())["drift"]
    rows = {r["name"]: r for r in drift["layers"]}
    assert not rows["first"]["overflow"]
    assert rows["loud"]["overflow"] and rows["loud"]["fp32_max_abs"] > 65504
    assert drift["first_jump"]["name"] == "loud" and "overflow" in drift["first_jump"]["reason"]
    bf = dissect_model(
        _loud(), None, tmp_path / "bf", DissectOptions(pictures=False, summary_plots=False, drift="bfloat16")
    )
    assert json.loads(bf.path.read_text())["drift"]["first_jump"] is None or not any(
        r["overflow"] for r in json.loads(bf.path.read_text())["drift"]["layers"])  # fmt: skip


def test_first_jump_rule():
    rows = [{"position": i, "name": f"l{i}", "overflow": False, "nonfinite": False, "relative_error": e}
            for i, e in enumerate([0.004, 0.005, 0.004, 0.006, 0.05, 0.06])]  # fmt: skip
    assert first_jump(rows)["name"] == "l4"
    rows[2]["nonfinite"] = True
    assert first_jump(rows)["name"] == "l2"
