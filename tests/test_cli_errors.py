"""The CLI's error boundary under generated input: an exit code of 0-3, one `error:` line, no traceback,
nothing written outside --out. Option values and file contents come from hypothesis; a few fixed cases
cover what generation would rarely hit (markup in a model name, the real entry point)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from visionbench.cli import app
from visionbench.config import BenchConfig
from visionbench.images import sample_images
from visionbench.models.registry import list_models
from visionbench.results import load_run

runner = CliRunner()
FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Text a shell can pass (no NUL, no lone surrogates), including rich markup and option-like strings.
ARG = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12) | st.sampled_from(
    ["x[/]", "[bold]", "[/x]", "-", "--", "nan", "inf", "-1", "0", "1e309", "31", "bf16"]
)
KNOWN = set(list_models(include_hidden=True))


def _unknown(name: str) -> bool:
    return name not in KNOWN and not name.startswith(("hf:", "ultralytics:")) and not name.startswith("-")


def _check(result, out: Path, root: Path, before: set[Path]) -> None:
    """The boundary's promise, whatever the input."""
    text = result.output
    assert result.exit_code in {0, 1, 2, 3}, text
    assert "Traceback" not in text and "╭" not in text, text  # no traceback, no Typer box
    if result.exit_code == 2:
        # ultralytics patches PIL's Image.open once imported and logs its own "requirement pi-heif not
        # found" line on an unreadable file (reported: images.load_image should bypass the patch); its
        # lines are not ours to count here.
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("WARNING ⚠️")]
        assert len(lines) == 1 and lines[0].startswith("error: "), text
    after = {p for p in root.rglob("*")}
    outside = {p for p in after - before if not p.is_relative_to(out)}
    assert not outside, outside


@FEW
@given(
    model=ARG.filter(_unknown),
    dtype=st.none() | ARG | st.sampled_from(["float32", "fp16", "bogus"]),
    timeout=st.none() | st.floats(allow_nan=True, allow_infinity=True) | ARG,
    input_size=st.none() | st.integers(-5, 10_000) | ARG,
    batch_sizes=st.none() | st.text("0123456789,- x", max_size=6),
    runs=st.none() | st.integers(-2, 3),
)
def test_bench_options_fail_cleanly_before_any_work(model, dtype, timeout, input_size, batch_sizes, runs) -> None:
    """Every value is either refused in one line or accepted; the model is never found, so nothing runs."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        out = root / "out"
        args = ["bench", model, "--out", str(out)]
        for flag, value in (("--dtype", dtype), ("--timeout", timeout), ("--input-size", input_size),
                            ("--batch-sizes", batch_sizes), ("--runs", runs)):  # fmt: skip
            if value is not None:
                args += [flag, str(value)]
        before = set(root.rglob("*"))
        result = runner.invoke(app, args)
        _check(result, out, root, before)
        assert result.exit_code == 2  # a bad value, or the unknown model: no run was possible
        assert not out.exists() or not any(out.iterdir())  # no run folder made


def _image_bytes(kind: str, mode: str, size: tuple[int, int], cut: float, noise: bytes) -> bytes:
    if kind == "random":
        return noise
    real = sample_images()[0].read_bytes()
    if kind == "truncated":
        return real[: max(1, int(len(real) * cut))]
    img = Image.new(mode, size)
    buf = io.BytesIO()
    img.save(buf, format="TIFF" if mode in {"I;16", "I", "F", "CMYK"} else "PNG")
    return buf.getvalue()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["random", "truncated", "truncated", "odd"]),  # an odd image runs the model: fewer
    mode=st.sampled_from(["1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I", "F", "CMYK"]),
    size=st.tuples(st.integers(1, 48), st.integers(1, 48)),
    cut=st.floats(0.0, 0.99),
    noise=st.binary(max_size=256),
    suffix=st.sampled_from([".jpg", ".png", ".tif", ".txt", ""]),
)
def test_dissect_any_file_is_measured_or_refused_in_one_line(kind, mode, size, cut, noise, suffix) -> None:
    """Generated file contents through a command that reads an image and runs a (tiny-input) model in process."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        out, src = root / "out", root / f"input{suffix}"
        src.write_bytes(_image_bytes(kind, mode, size, cut, noise))
        before = set(root.rglob("*"))
        args = ["dissect", "yolo11n", "--image", str(src), "--input-size", "64", "--stats-only", "--no-plots"]
        result = runner.invoke(app, [*args, "--device", "cpu", "--out", str(out), "--json"])
        _check(result, out, root, before)
        if kind == "odd":
            assert result.exit_code == 0, result.output  # every mode and size of a real image is usable


def test_markup_in_a_model_name_is_shown_and_the_suite_goes_on(tmp_path: Path) -> None:
    """`x[/]` is a model name like any other: recorded as unknown, the next model runs, run.json completes."""
    res = runner.invoke(app, ["bench", "x[/]", "depth-anything-v2-tiny", "--runs", "2", "--budget", "0", "--no-e2e",
                              "--device", "cpu", "--out", str(tmp_path)])  # fmt: skip
    assert res.exit_code == 1, res.output  # one model failed, as recorded
    assert "Traceback" not in res.output and "x[/]" in res.output
    run_dir = next(tmp_path.iterdir())
    run = load_run(run_dir)
    assert run.status == "complete" and [(m.name, m.status) for m in run.models] == [
        ("x[/]", "failed"),
        ("depth-anything-v2-tiny", "ok"),
    ]
    assert (run_dir / "report.md").is_file() and (run_dir / "report.html").is_file()


def test_usage_errors_are_one_line() -> None:
    """Click's own errors (unknown option, wrong type, missing argument) take the same one-line path."""
    for args in (["bench", "yolo11n", "--runs", "x"], ["trace"], ["bench", "yolo11n", "--batch-size", "2"]):
        res = runner.invoke(app, args)
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), res.output


def test_usage_errors_through_the_entry_point_are_one_line() -> None:
    env = {**os.environ, "COLUMNS": "80"}
    for args in (["bench", "yolo11n", "--bogus"], ["nosuch"]):
        proc = subprocess.run([sys.executable, "-m", "visionbench", *args], capture_output=True, text=True,
                              timeout=120, env=env)  # fmt: skip
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
        assert proc.stdout == ""


def _options(name: str) -> dict[str, tuple[tuple[str, ...], str]]:
    command = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    return {p.name: (tuple(p.opts), p.help or "") for p in command.params if p.param_type_name == "option"}


def test_bench_and_run_share_one_options_model() -> None:
    """Each option fills the config field of its own name, described by that field; run adds only --quick."""
    bench, run = _options("bench"), _options("run")
    assert set(run) - set(bench) == {"quick"} and set(bench) <= set(run)
    assert all(bench[k][1] == run[k][1] for k in bench)  # same help text: one declaration
    fields = BenchConfig.model_fields
    filled = set(bench) - {"out", "resume", "as_json"}
    assert filled <= set(fields)
    for name in filled:
        assert "--" + name.replace("_", "-") in bench[name][0], name  # the flag is the field's name
        assert (fields[name].description or "") in bench[name][1], name
    assert "--batch-size" not in bench["batch_sizes"][0] and "--rows" in _options("trace")["rows"][0]
