"""`visionbench depth` on the command line: summary, exit codes, --json, one-line errors, --help."""

from __future__ import annotations

import json

from PIL import Image
from typer.testing import CliRunner

from visionbench.cli import app
from visionbench.images import sample_images

ARGS = ["--model", "depth-anything-v2-tiny", "--weights", "random", "--device", "cpu"]


def _folder(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    with Image.open(sample_images()[1]) as im:
        im.convert("RGB").resize((128, 72)).save(src / "zidane.jpg")
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return src


def test_depth_cli_summary_failures_and_json(tmp_path) -> None:
    src, out = _folder(tmp_path), tmp_path / "out"
    runner = CliRunner()
    res = runner.invoke(app, ["depth", str(src), "--out", str(out), *ARGS])
    assert res.exit_code == 1, res.output  # one file failed: the run finishes, the exit code says so
    text = " ".join(res.output.split())
    assert "1 done" in text and "1 failed" in text and "failures.txt" in text and "Traceback" not in text
    assert (out / "zidane.depth.png").exists() and "broken.jpg" in (out / "failures.txt").read_text()
    res = runner.invoke(app, ["depth", str(src / "zidane.jpg"), "--out", str(out), "--resume", "--json", *ARGS])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert (summary["done"], summary["skipped"], summary["failed"]) == (0, 1, 0)


def test_depth_cli_one_line_errors(tmp_path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["depth", str(tmp_path / "missing"), "--out", str(tmp_path / "o"), *ARGS])
    assert res.exit_code == 2 and "error:" in res.output and "no such file" in res.output
    assert "Traceback" not in res.output
    src = _folder(tmp_path)
    res = runner.invoke(app, ["depth", str(src), "--out", str(tmp_path / "o"), "--ply", *ARGS])
    assert res.exit_code == 2 and "--ply needs metric depth" in " ".join(res.output.split())
    res = runner.invoke(app, ["depth", str(src), "--out", str(src), *ARGS])
    assert res.exit_code == 2 and "input folder" in res.output


def test_depth_help_explains_the_options() -> None:
    res = CliRunner().invoke(app, ["depth", "--help"], terminal_width=200)
    for opt in ("--focal-px", "--ignore-exif", "--resume", "--ply-stride", "--side-by-side", "--cmap", "--batch-size"):
        assert opt in res.output
