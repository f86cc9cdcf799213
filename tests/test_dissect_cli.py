"""`visionbench dissect` from the command line: a real run, and every bad input as one line with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from visionbench.cli import app

os.environ.setdefault("HF_HUB_OFFLINE", "1")
runner = CliRunner()
TINY = ["yolo11n", "--input-size", "128", "--weights", "random"]


def _run(*args: str):
    return runner.invoke(app, ["dissect", *args])


def test_json_run_writes_files(tmp_path):
    res = _run("depth-anything-v2-tiny", "--weights", "random", "--out", str(tmp_path), "--channels", "4", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    folder = tmp_path / "depth-anything-v2-tiny"
    doc = json.loads((folder / "layers.json").read_text())
    assert out["layer_count"] == len(doc["records"]) > 0
    assert all(r["type"] in {"Conv2d", "ConvTranspose2d"} for r in doc["records"])  # the default: conv
    assert doc["input"]["source"].endswith("bus.jpg") and doc["weights"]["mode"] == "random"
    assert len(list((folder / "maps").glob("*.png"))) == len(doc["records"])


def test_table_output_and_layer_types(tmp_path):
    res = _run(*TINY, "--out", str(tmp_path), "--layers", "Conv2d,SiLU", "--stats-only", "--rows", "3")
    assert res.exit_code == 0, res.output
    assert "model.0.conv" in res.output and "components" in res.output
    doc = json.loads((tmp_path / "yolo11n" / "layers.json").read_text())
    assert {r["type"] for r in doc["records"]} == {"Conv2d", "SiLU"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--match", "no_such_layer"], "matches none"),
        (["--match", "(unclosed"], "not a regular expression"),
        (["--layers", "Conv2d,Bogus"], "no leaf module of type Bogus"),
        (["--image", "/nonexistent/photo.jpg"], "no such file"),
        (["--drift", "int8"], "--drift"),
        (["--npy-channels", "some"], "--npy-channels"),
        (["--blocks", "0,x"], "--blocks"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, extra, message):
    res = _run(*TINY, "--out", str(tmp_path), *extra)
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert "Traceback" not in res.output


def test_not_an_image_in_a_real_process(tmp_path):
    """A real process: ultralytics' logging, once imported, keeps CliRunner's closed streams between invocations."""
    fake = tmp_path / "notes.jpg"
    fake.write_text("this is not a picture")
    cmd = [sys.executable, "-m", "visionbench", "dissect", *TINY, "--out", str(tmp_path), "--image", str(fake)]
    res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert res.returncode == 2, res.stderr
    assert "not an image" in res.stderr and "Traceback" not in res.stderr + res.stdout
    assert len([ln for ln in res.stderr.splitlines() if ln.strip()]) == 1


def test_blocks_on_a_model_without_encoder(tmp_path):
    res = _run(*TINY, "--out", str(tmp_path), "--blocks", "0")
    assert res.exit_code == 2 and "no transformer encoder" in res.output
