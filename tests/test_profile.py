"""Measured compute breakdown: rows add up, components match the module tree, known durations come out right."""

from __future__ import annotations

import json
import time

import pytest
import torch
from PIL import Image
from torch import nn
from typer.testing import CliRunner

import visionbench as vb
from visionbench.cli import app
from visionbench.measure.profile import OTHER, component_roots, profile_model
from visionbench.measure.trace import trace
from visionbench.models.base import Batch, Prediction, VisionModel, WeightsInfo
from visionbench.models.card import ModelCard


def _check_rows_add_up(result, model) -> None:
    labels = [c.label for c in result.components]
    assert labels == [*model.components(), OTHER]
    assert sum(c.time_share for c in result.components) == pytest.approx(1.0, abs=1e-9)
    assert sum(c.time_ms for c in result.components) == pytest.approx(result.hooked_ms, rel=1e-9)
    for run in range(result.runs):  # within each run the rows add up exactly to the hooked forward
        parts = sum(c.time_ms_samples[run] for c in result.components)
        assert parts == pytest.approx(result.hooked_ms_samples[run], rel=1e-9)
    glue = result.components[-1]
    assert min(glue.time_ms_samples) >= 0  # negative glue would mean time counted twice
    assert len(result.used_runs) >= result.runs // 2


def test_yolo_components_cover_the_model_and_calls_accumulate(device):
    model = vb.create_model("yolo11n", weights="random", input_size=64, device=device)
    result = profile_model(model, model.example_batch(1), runs=5)
    _check_rows_add_up(result, model)
    by_label = {c.label: c for c in result.components}
    for label, prefixes in model.components().items():
        assert by_label[label].calls == len(prefixes)  # every root layer called once, accumulated per label
    # the three parts are the whole model: nothing left for glue in FLOPs or parameters
    assert by_label[OTHER].flops == 0 and by_label[OTHER].params == 0
    assert sum(c.params for c in result.components) == model.num_params() == result.params
    assert by_label[OTHER].time_share < 0.25  # glue is the yolo loop's bookkeeping, not a hidden component


def test_depth_anything_matches_the_meta_trace(device):
    model = vb.create_model("depth-anything-v2-tiny", weights="random", device=device)
    result = profile_model(model, model.example_batch(1), runs=3)
    _check_rows_add_up(result, model)
    traced = trace("depth-anything-v2-tiny")
    assert result.flops == traced.flops
    for c in result.components[:-1]:
        assert c.flops == traced.component_flops[c.label]
        assert c.params == traced.component_params[c.label]


class _Sleep(nn.Module):
    """A block whose cost is known: it sleeps, then optionally calls an inner block."""

    def __init__(self, seconds: float, inner: nn.Module | None = None) -> None:
        super().__init__()
        self.seconds, self.inner = seconds, inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.seconds)
        return self.inner(x) if self.inner is not None else x


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.b = _Sleep(0.010)
        self.a = _Sleep(0.020)
        self.c = _Sleep(0.005)
        self.outer = _Sleep(0.010)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.a(self.a(x))  # called twice: 40 ms
        x = self.b(x)  # 10 ms
        time.sleep(0.015)  # glue: 15 ms
        return self.outer(x)


class _SleepModel(VisionModel):
    def preprocess(self, images: list[Image.Image]) -> Batch:
        raise NotImplementedError

    def postprocess(self, outputs, batch) -> list[Prediction]:
        return []

    def example_batch(self, batch_size: int = 1, device=None) -> Batch:
        return Batch({"x": torch.zeros(batch_size, 1)}, [(1, 1)] * batch_size)

    def components(self) -> dict[str, list[str]]:
        return {"a": ["a"], "b": ["b"], "outer": ["outer"], "c": ["c"]}


def _sleep_model() -> _SleepModel:
    card = ModelCard(name="sleeper", task="detect", library="ultralytics", architecture="test", params=0,
                     input_size=1, mean=(0, 0, 0), std=(1, 1, 1), license="-")  # fmt: skip
    net = _Net()
    net.outer.inner = net.c  # `c` (its own component) runs inside `outer`: 5 ms go to c, not twice
    return _SleepModel(card, net, WeightsInfo("random", "test"), input_size=1, device=torch.device("cpu"),
                       dtype=torch.float32)  # fmt: skip


def test_known_durations_repeated_calls_nesting_and_glue():
    model = _sleep_model()
    result = profile_model(model, model.example_batch(), runs=3, warmup=0, flops=False)
    got = {c.label: c.time_ms for c in result.components}
    calls = {c.label: c.calls for c in result.components}
    slack = 12.0  # ms: sleep overshoots on a busy machine, never undershoots
    for label, expected in {"a": 40, "b": 10, "outer": 10, "c": 5, OTHER: 15}.items():
        assert expected - 1 <= got[label] <= expected + slack, (label, got)
    assert calls == {"a": 2, "b": 1, "outer": 1, "c": 1, OTHER: 0}
    assert sum(got.values()) == pytest.approx(result.hooked_ms, rel=1e-9)
    # hooks barely perturb a forward of known cost: the fastest hooked and plain runs agree within a few percent
    # (the fastest, because sleeps only overshoot, and by how much depends on the other work on the machine)
    assert min(result.hooked_ms_samples) == pytest.approx(min(result.forward_ms_samples), rel=0.05)


def test_overlapping_components_are_refused():
    net = _Net()
    with pytest.raises(ValueError, match="overlap"):
        component_roots(nn.Sequential(net), {"all": ["0"], "part": ["0.a"]})


def test_cli_profile_json_and_bad_option():
    runner = CliRunner()
    res = runner.invoke(app, ["profile", "yolo11n", "--input-size", "64", "--weights", "random", "--runs", "2",
                              "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [c["label"] for c in data["components"]] == ["backbone", "neck", "head", OTHER]
    assert data["method"].startswith("forward pre/post hooks")
    bad = runner.invoke(app, ["profile", "yolo11n", "--runs", "0"])
    assert bad.exit_code == 2 and "--runs" in bad.output
