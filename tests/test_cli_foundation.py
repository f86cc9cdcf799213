"""CLI for the foundation: `models`, `trace`, and one clear line with exit code 2 for every bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from visionbench.cli import app
from visionbench.models.availability import local_weights
from visionbench.models.registry import get_card

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_models_json_lists_the_suite_with_cards():
    result = invoke("models", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {r["name"] for r in rows} >= {"depthpro", "yolo11n", "mobile-sam"}
    depthpro = next(r for r in rows if r["name"] == "depthpro")
    assert depthpro["params"] == 951_991_330 and depthpro["input_size"] == 1536
    assert depthpro["local_weights"] == local_weights(get_card("depthpro"))  # cached or not, reported as it is


def test_models_table_and_all_flag():
    result = invoke("models", "--all")
    assert result.exit_code == 0
    assert "depthpro-tiny" in result.stdout and "951,991,330" in result.stdout


def test_trace_json_document():
    result = invoke("trace", "yolo11n", "--input-size", "256", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["params"] == 2_616_248 and doc["input_shapes"]["x"] == [1, 3, 256, 256]
    assert doc["layers"][0]["output_shapes"] == [[1, 16, 128, 128]]


@pytest.mark.parametrize(
    "args,needle",
    [
        (("trace", "depthpr0"), "Did you mean: depthpro"),
        (("trace", "yolo11n", "--input-size", "4"), "input-size"),
        (("trace", "depthpro", "--input-size", "1024"), "needs at least 1536 px"),
        (("trace", "yolo11n", "--batch-size", "0"), "batch-size"),
        (("trace", "hf:/no/such/folder"), "hf:/no/such/folder"),
        (("trace", "ultralytics:nothing.txt"), "ultralytics:"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, needle):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert needle in result.output
    assert "Traceback" not in result.output


def test_real_process_exit_code_and_no_traceback():
    """Through the installed entry point, as a user runs it."""
    proc = subprocess.run(
        [sys.executable, "-m", "visionbench", "trace", "yolo12x"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert "unknown model 'yolo12x'" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_help_explains_every_option():
    result = invoke("trace", "--help")
    assert result.exit_code == 0
    for option in ("--input-size", "--batch-size", "--rows", "--json"):
        assert option in result.stdout


def test_trace_rows_limits_the_table():
    result = invoke("trace", "yolo11n", "--input-size", "64", "--rows", "2")
    assert result.exit_code == 0, result.output
    assert "leaf layers (2 of" in result.stdout


@pytest.mark.slow  # the full-size architecture, built on the meta device
def test_trace_full_size_depthpro_on_meta():
    result = invoke("trace", "depthpro", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["params"] == 951_991_330 and doc["input_shapes"]["pixel_values"] == [1, 3, 1536, 1536]
    assert doc["flops"] > 10**13


@pytest.mark.parametrize(
    "value,on,off",
    [(None, False, False), ("1", True, False), (" Yes ", True, False), ("OFF", False, True), ("maybe", False, False)],
)
def test_a_switch_typo_keeps_the_default(monkeypatch, value, on, off):
    from visionbench.switches import switched_off, switched_on

    if value is None:
        monkeypatch.delenv("VISIONBENCH_TEST_SWITCH", raising=False)
    else:
        monkeypatch.setenv("VISIONBENCH_TEST_SWITCH", value)
    assert switched_on("VISIONBENCH_TEST_SWITCH") is on
    assert switched_off("VISIONBENCH_TEST_SWITCH") is off
