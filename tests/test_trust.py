"""Nothing runs that the user did not allow: a malicious model yaml and a malicious pickle, through
every command that builds a model (the real CLI in a subprocess), never run without --trust-remote-code.

Each attack, if it ran, would create a marker file; every case asserts the marker is absent, the
exit code is 2, and stderr is one `error:` line naming what was refused (so the gate, not some
earlier failure, stopped it).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import visionbench as vb
from visionbench.errors import WeightsError
from visionbench.images import default_image_path
from visionbench.models.ultralytics_yaml import stock_yamls

SRC = Path(vb.__file__).resolve().parents[1]
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")  # every torch-pickle extension the loader accepts


class _RunsCode:
    """Unpickling this calls exec: what a malicious checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "CODE_RAN"


@pytest.fixture
def evil_yaml(tmp_path: Path, marker: Path) -> Path:
    """The stock yolo11.yaml whose `activation:` runs code before returning a real activation."""
    stock = stock_yamls()["yolo11.yaml"].read_text()
    payload = f"__import__('pathlib').Path({str(marker)!r}).touch() or torch.nn.SiLU()"
    folder = tmp_path / "evil"
    folder.mkdir()
    path = folder / "yolo11n.yaml"
    path.write_text(f'activation: "{payload}"\n{stock}')
    return path


@pytest.fixture
def evil_pickles(tmp_path: Path, marker: Path) -> dict[str, Path]:
    """One malicious pickle per accepted extension, in torch's zip format (and one legacy, non-zip)."""
    files = {}
    for suffix in PICKLE_SUFFIXES:
        path = tmp_path / f"evil{suffix}"
        torch.save({"model": _RunsCode(marker)}, path)
        files[suffix] = path
    legacy = tmp_path / "evil_legacy.pt"
    torch.save({"model": _RunsCode(marker)}, legacy, _use_new_zipfile_serialization=False)
    files["legacy"] = legacy
    raw = tmp_path / "evil_raw.pth"  # a bare pickle, not a torch file at all
    raw.write_bytes(pickle.dumps(_RunsCode(marker)))
    files["raw"] = raw
    return files


def _cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "HF_HUB_OFFLINE": "1",
        "YOLO_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    env.pop("VISIONBENCH_DEBUG", None)
    cmd = [sys.executable, "-m", "visionbench", *map(str, args)]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _refused(result: subprocess.CompletedProcess[str], marker: Path, command: str, *needles: str) -> None:
    """Refused, said in one line. `bench` runs a suite: a model that fails is recorded as failed and
    the run exits 1 with its folder written; every other command exits 2 with one `error:` line."""
    output = result.stdout + result.stderr
    assert not marker.exists(), f"code ran: {output[-2000:]}"
    assert "Traceback" not in output
    if command == "bench":
        assert result.returncode == 1, (result.returncode, output[-2000:])
    else:
        assert result.returncode == 2, (result.returncode, output[-2000:])
        errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1, result.stderr[-2000:]
    flat = " ".join(output.split())  # rich wraps long lines
    for needle in needles:
        assert needle in flat, (needle, output[-2000:])


def _commands(model: str, tmp_path: Path, weights: str | None = None) -> dict[str, list[str | Path]]:
    """Every command that builds a model, at the smallest sizes they take."""
    image = default_image_path()
    w = ["--weights", weights] if weights else []
    return {
        "trace": ["trace", model, "--input-size", "64"],
        "bench": ["bench", model, *w, "--images", image, "--input-size", "64", "--runs", "1", "--budget", "0",
                  "--no-e2e", "--out", tmp_path / "bench"],
        "dissect": ["dissect", model, *w, "--image", image, "--input-size", "64", "--stats-only", "--no-plots",
                    "--out", tmp_path / "dissect"],
        "depth": ["depth", image, "--model", model, *w, "--input-size", "64", "--out", tmp_path / "depth"],
        "profile": ["profile", model, *w, "--input-size", "64", "--runs", "1"],
        "eval": ["eval", model, *w, "--input-size", "64"],
    }  # fmt: skip


@pytest.mark.parametrize("command", ["trace", "bench", "dissect", "depth", "profile", "eval"])
def test_malicious_yaml_never_runs_without_the_flag(command, evil_yaml, marker, tmp_path):
    args = _commands(f"ultralytics:{evil_yaml}", tmp_path)[command]
    _refused(_cli(*args, cwd=tmp_path), marker, command, "activation", "--trust-remote-code")


@pytest.mark.parametrize("command", ["trace", "bench", "dissect", "depth", "profile", "eval"])
def test_malicious_pickle_never_runs_without_the_flag(command, evil_pickles, marker, tmp_path):
    """As an `ultralytics:<file>.pt` model everywhere; as `--weights` wherever a command takes it."""
    args = _commands(f"ultralytics:{evil_pickles['.pt']}", tmp_path)[command]
    _refused(_cli(*args, cwd=tmp_path), marker, command, "exec, which is not a class", "--trust-remote-code")


@pytest.mark.parametrize(
    "command,suffix",
    [("bench", ".pt"), ("dissect", ".pth"), ("depth", ".bin"), ("profile", ".ckpt"), ("eval", "legacy")],
)
def test_malicious_weights_file_never_runs_without_the_flag(command, suffix, evil_pickles, marker, tmp_path):
    model = "depth-anything-v2-tiny"
    args = _commands(model, tmp_path, weights=str(evil_pickles[suffix]))[command]
    _refused(_cli(*args, cwd=tmp_path), marker, command, "exec, which is not a class")


@pytest.mark.parametrize("suffix", [*PICKLE_SUFFIXES, "legacy", "raw"])
def test_every_pickle_extension_is_refused_by_the_library(suffix, evil_pickles, marker):
    for model in ("yolo11n", "mobile-sam", "depth-anything-v2-tiny"):
        with pytest.raises(WeightsError, match=r"refers to (builtins\.)?exec, which is not a class|cannot read"):
            vb.create_model(model, weights=str(evil_pickles[suffix]), input_size=64)
    assert not marker.exists()


def test_the_flag_is_the_way_past_the_yaml_gate(evil_yaml, marker, tmp_path):
    """With --trust-remote-code on this command line ultralytics evaluates the yaml as it always does."""
    args = _commands(f"ultralytics:{evil_yaml}", tmp_path)["dissect"]
    result = _cli(*args, "--trust-remote-code", cwd=tmp_path)
    assert marker.exists(), result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def test_stock_yamls_pass_the_gate():
    """Every detect / segment / pose yaml that ships with ultralytics builds without the flag."""
    from visionbench.models.ultralytics_yaml import load_model_yaml

    for name in ("yolo11n.yaml", "yolo11n-seg.yaml", "yolo11n-pose.yaml", "yolov8n.yaml", "yolo12n.yaml"):
        assert load_model_yaml(name)["backbone"]
    for path in stock_yamls().values():
        load_model_yaml(str(path))  # raises if the allow-list misses something a stock file uses
