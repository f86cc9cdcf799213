"""`visionbench eval`: the built-in Middlebury sample, a user folder, scoring rules, files and the CLI."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import visionbench as vb
from visionbench.cli import app
from visionbench.depth.datasets import load_dataset, middlebury_motorcycle, read_depth
from visionbench.depth.evaluate import ALIGN_LSQ, ALIGN_NONE, EvalOptions, evaluate_model, score_prediction, write_eval
from visionbench.depth.io import save_png16_mm
from visionbench.depth.outputs import weights_record
from visionbench.errors import BadInputError


@pytest.fixture(scope="module")
def motorcycle():
    return middlebury_motorcycle()


@pytest.fixture(scope="module")
def tiny_relative():
    return vb.create_model("depth-anything-v2-tiny", weights="random", device="cpu")


def test_middlebury_motorcycle_depth_from_disparity(motorcycle) -> None:
    gt = motorcycle.depth_m
    assert motorcycle.image.size == (741, 500) and gt.shape == (500, 741)
    known = np.isfinite(gt)
    assert 1 - known.mean() == pytest.approx(0.0735, abs=0.001)  # 7.35 % unknown disparity
    # depth = B f / (d + dx) over disparities 7.2 .. 59.9 px
    assert gt[known].min() == pytest.approx(0.193001 * 994.978 / (59.90896 + 31.086), rel=1e-4)
    assert gt[known].max() == pytest.approx(0.193001 * 994.978 / (7.1913557 + 31.086), rel=1e-4)
    assert motorcycle.focal_px == 994.978


def test_ground_truth_fed_back_scores_perfectly_and_scale_error_is_known(motorcycle) -> None:
    gt = motorcycle.depth_m
    perfect = score_prediction(gt, gt, "metric")
    assert perfect["abs_rel"] == pytest.approx(0.0, abs=1e-7) and perfect["delta1"] == 1.0
    assert perfect["boundary_f1"] == pytest.approx(1.0)
    assert perfect["valid_pixels"] == int(np.isfinite(gt).sum())
    off = score_prediction(gt * 1.1, gt, "metric")
    assert off["abs_rel"] == pytest.approx(0.1, rel=1e-5)
    assert off["boundary_f1"] == pytest.approx(1.0)  # scale-invariant
    # a relative model's inverse depth, off by scale and shift, is aligned back to perfect
    rel = np.where(np.isfinite(gt), 2.0 / gt + 0.3, 0.0).astype(np.float32)
    aligned = score_prediction(rel, gt, "relative-inverse")
    assert aligned["abs_rel"] < 1e-4 and aligned["align_scale"] == pytest.approx(0.5, rel=1e-4)
    # a prediction at half resolution (same aspect) is resized to the ground truth first
    half = np.asarray(Image.fromarray(np.where(np.isfinite(gt), gt, 3.0)).resize((370, 250), Image.BILINEAR))
    assert score_prediction(half, gt, "metric")["abs_rel"] < 0.05
    assert score_prediction(gt, gt, "metric", max_depth=3.0)["valid_pixels"] < perfect["valid_pixels"]


def _user_dataset(root):
    (root / "images").mkdir(parents=True)
    (root / "depth").mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c", "d"):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(root / "images" / f"{name}.png")
    np.save(root / "depth" / "a.npy", rng.uniform(1, 5, (48, 64)).astype(np.float32))
    save_png16_mm(root / "depth" / "b.png", rng.uniform(1, 5, (24, 32)).astype(np.float32))  # half size, same aspect
    np.save(root / "depth" / "d.npy", rng.uniform(1, 5, (64, 64)).astype(np.float32))  # another aspect ratio
    (root / "intrinsics.json").write_text(json.dumps({"a": {"fx": 100.0, "cx": 32}, "*": 80}))


def test_user_folder_dataset_rows_summary_and_files(tmp_path, tiny_relative) -> None:
    _user_dataset(tmp_path / "ds")
    ds = load_dataset(tmp_path / "ds")
    assert [r.name for r in ds] == ["a", "b", "d"] and ds.skipped == ["c.png"]
    result = evaluate_model(tiny_relative, ds, EvalOptions())
    assert result.alignment == ALIGN_LSQ and result.depth_kind == "relative-inverse"
    rows = {r.name: r for r in result.rows}
    assert rows["a"].error is None and rows["a"].focal_px_true == 100.0 and rows["b"].focal_px_true == 80.0
    assert (rows["b"].gt_width, rows["b"].gt_height, rows["b"].image_width) == (32, 24, 64)
    assert rows["b"].error is None and rows["b"].valid_pixels == 24 * 32
    assert "aspect ratio" in rows["d"].error and result.failed == 1
    assert result.summary["abs_rel"] == pytest.approx((rows["a"].abs_rel + rows["b"].abs_rel) / 2)
    files = write_eval(result, tmp_path / "out")
    data = json.loads(files["json"].read_text())
    assert data["alignment"] == ALIGN_LSQ and len(data["rows"]) == 3
    table = list(csv.DictReader(files["csv"].read_text().splitlines()))
    assert [r["name"] for r in table] == ["a", "b", "d", "MEAN"]
    assert float(table[-1]["abs_rel"]) == pytest.approx(result.summary["abs_rel"], rel=1e-5)


def test_dataset_errors_are_clear(tmp_path) -> None:
    with pytest.raises(BadInputError, match="not a built-in dataset"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "x" / "images").mkdir(parents=True)
    with pytest.raises(BadInputError, match="missing depth/"):
        load_dataset(tmp_path / "x")
    (tmp_path / "x" / "depth").mkdir()
    with pytest.raises(BadInputError, match="no image"):
        load_dataset(tmp_path / "x")
    Image.new("RGB", (4, 4)).save(tmp_path / "eight_bit.png")
    with pytest.raises(BadInputError, match="16-bit"):
        read_depth(tmp_path / "eight_bit.png")
    np.save(tmp_path / "rgb.npy", np.zeros((4, 4, 3)))
    with pytest.raises(BadInputError, match="2-D"):
        read_depth(tmp_path / "rgb.npy")
    (tmp_path / "x" / "intrinsics.json").write_text('{"a": {"fy": 3}}')
    with pytest.raises(BadInputError, match="fx"):
        load_dataset(tmp_path / "x")


def test_metric_model_on_middlebury_reports_focal_error(tmp_path) -> None:
    model = vb.create_model("depthpro-tiny", weights="random", device="cpu")
    with torch.no_grad():  # fixed last layers: canonical inverse depth c = 1 (depth = f / W), a 40 degree FOV
        for layer, bias in ((model.module.head.layers[4], 1.0), (model.module.fov_model.head.layers[4], 40.0)):
            layer.weight.zero_()
            layer.bias.fill_(bias)
    result = evaluate_model(model, load_dataset("middlebury-motorcycle"), EvalOptions())
    row = result.rows[0]
    assert result.alignment == ALIGN_NONE and row.error is None
    f40 = 741 / 2 / np.tan(np.radians(20.0))
    assert row.focal_px_pred == pytest.approx(f40, rel=1e-4) and row.focal_px_true == 994.978
    assert row.focal_error_pct == pytest.approx(abs(f40 - 994.978) / 994.978 * 100, rel=1e-3)
    gt = middlebury_motorcycle().depth_m
    ok = np.isfinite(gt)
    assert row.abs_rel == pytest.approx(float(np.mean(np.abs(f40 / 741 - gt[ok]) / gt[ok])), rel=1e-3)
    known = evaluate_model(model, load_dataset("middlebury-motorcycle"), EvalOptions(use_known_focal=True)).rows[0]
    assert known.focal_px_pred == pytest.approx(row.focal_px_pred)  # still the model's own guess
    # with the true focal length the depth is 994.978 / 741 = 1.343 m everywhere: AbsRel known from the gt
    expected = float(np.mean(np.abs(994.978 / 741 - gt[ok]) / gt[ok]))
    assert known.abs_rel == pytest.approx(expected, rel=1e-3)


def test_eval_cli_table_json_and_errors(tmp_path) -> None:
    _user_dataset(tmp_path / "ds")
    runner = CliRunner()
    res = runner.invoke(app, ["eval", "depth-anything-v2-tiny", "--weights", "random", "--device", "cpu",
                              "--dataset", str(tmp_path / "ds"), "--out", str(tmp_path / "o")])  # fmt: skip
    assert res.exit_code == 1, res.output  # one image could not be scored
    assert "alignment: least-squares" in " ".join(res.output.split()) and "AbsRel" in res.output
    assert (tmp_path / "o" / "eval.csv").exists() and (tmp_path / "o" / "eval.json").exists()
    res = runner.invoke(app, ["eval", "depth-anything-v2-tiny", "--weights", "random", "--device", "cpu", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["summary"]["delta1"] is not None
    res = runner.invoke(app, ["eval", "depth-anything-v2-tiny", "--dataset", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "error:" in res.output and "Traceback" not in res.output


EVAL_NO_MODEL = ["eval", "no-such-model", "--device", "cpu"]  # an error about it would mean a model was built first


def _lines(output: str) -> list[str]:
    return [ln for ln in output.splitlines() if ln.strip()]


@pytest.mark.parametrize(
    "extra, flag",
    [(["--min-depth", "nan"], "--min-depth"), (["--min-depth", "0"], "--min-depth"),
     (["--min-depth=-1"], "--min-depth"), (["--min-depth", "inf"], "--min-depth"),
     (["--max-depth", "nan"], "--max-depth"), (["--max-depth", "0"], "--max-depth"),
     (["--max-depth=-1"], "--max-depth"), (["--depth-scale", "0"], "--depth-scale"),
     (["--depth-scale", "nan"], "--depth-scale"), (["--min-depth", "5", "--max-depth", "2"], "--max-depth 2.0"),
     (["--min-depth", "2", "--max-depth", "2"], "--max-depth 2.0")],
)  # fmt: skip
def test_eval_option_values_are_checked_before_any_work(tmp_path, extra, flag) -> None:
    res = CliRunner().invoke(app, [*EVAL_NO_MODEL, "--out", str(tmp_path / "o"), *extra])
    lines = _lines(res.output)
    assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: " + flag), res.output
    assert not (tmp_path / "o").exists()


def test_eval_unusable_out_is_one_line_before_the_model_is_built(tmp_path) -> None:
    (tmp_path / "f").write_text("a file")
    for out in (tmp_path / "f", tmp_path / "f" / "sub"):
        res = CliRunner().invoke(app, [*EVAL_NO_MODEL, "--out", str(out)])
        lines = _lines(res.output)
        assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith(f"error: --out {out}"), res.output


def test_eval_scores_are_shown_when_writing_them_fails(tmp_path) -> None:
    out = tmp_path / "o"
    (out / "eval.json").mkdir(parents=True)  # a folder where the file must go: the write fails after scoring
    args = ["eval", "depth-anything-v2-tiny", "--weights", "random", "--device", "cpu", "--out", str(out)]
    res = CliRunner().invoke(app, args, terminal_width=200)
    assert res.exit_code == 1, res.output
    lines = _lines(res.output)
    assert lines[-1].startswith("error: writing the eval results failed") and "eval.json" in lines[-1]
    assert "AbsRel" in res.output and "mean" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, [*args, "--json"])
    assert res.exit_code == 1 and json.loads(res.stdout)["summary"]["abs_rel"] is not None  # the scores, whole


def test_eval_result_names_the_weights(tiny_relative) -> None:
    result = evaluate_model(tiny_relative, load_dataset("middlebury-motorcycle"), EvalOptions())
    assert result.weights == weights_record(tiny_relative) and result.weights["mode"] == "random"


def test_dataset_paths_that_cannot_be_read_are_named(tmp_path) -> None:
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(BadInputError, match="symlink loop"):
        load_dataset(tmp_path / "loop")


def test_dataset_permissions_are_named_not_called_corrupt(tiny_relative, as_nobody) -> None:
    base = Path(tempfile.mkdtemp(prefix="vb-perm-"))  # tmp_path's parents are private to root
    try:
        os.chmod(base, 0o755)
        _user_dataset(base / "ds")
        os.chmod(base / "ds" / "images" / "a.png", 0o600)
        with as_nobody():
            result = evaluate_model(tiny_relative, load_dataset(base / "ds"), EvalOptions())
        rows = {r.name: r for r in result.rows}
        assert "permission denied" in rows["a"].error and "corrupt" not in rows["a"].error
        assert rows["b"].error is None
        os.chmod(base / "ds" / "depth", 0o700)
        with as_nobody(), pytest.raises(BadInputError, match=r"depth: cannot list this folder \(permission denied\)"):
            load_dataset(base / "ds")
    finally:
        shutil.rmtree(base)


def test_ctrl_c_midway_keeps_the_rows_scored(tmp_path, tiny_relative) -> None:
    _user_dataset(tmp_path / "ds")
    ds = load_dataset(tmp_path / "ds")
    seen = []

    def progress(n: int) -> None:  # a real SIGINT after the first image, as a user's Ctrl-C
        seen.append(n)
        if len(seen) == 1:
            signal.raise_signal(signal.SIGINT)

    result = evaluate_model(tiny_relative, ds, EvalOptions(), progress=progress)
    assert result.interrupted and (result.images, result.not_attempted) == (1, len(ds) - 1)
    assert result.rows[0].name == "a" and result.rows[0].abs_rel is not None
    assert result.summary["abs_rel"] == pytest.approx(result.rows[0].abs_rel)
    files = write_eval(result, tmp_path / "o")
    assert json.loads(files["json"].read_text())["interrupted"] is True
