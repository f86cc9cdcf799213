"""`visionbench depth` on the command line: summary, exit codes, --json, one-line errors, --help."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
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
    assert "1 done" in text and "1 failed" in text and "failures-" in text and "Traceback" not in text
    assert (out / "zidane.depth.png").exists() and "broken.jpg" in next(out.glob("failures-*.txt")).read_text()
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
    yolo = ["--model", "yolo11n", "--weights", "random", "--device", "cpu"]
    frames = tmp_path / "frames"  # video: a folder of frames
    frames.mkdir()
    shutil.copy(src / "zidane.jpg", frames)
    for command in (["depth", str(src)], ["video", str(frames)]):
        res = runner.invoke(app, [*command, "--out", str(tmp_path / "y"), *yolo])
        assert res.exit_code == 2 and f"`{command[0]}` needs a depth model" in res.output, res.output


def test_depth_help_explains_the_options() -> None:
    res = CliRunner().invoke(app, ["depth", "--help"], terminal_width=200)
    for opt in ("--focal-px", "--ignore-exif", "--resume", "--ply-stride", "--side-by-side", "--cmap", "--batch-size"):
        assert opt in res.output


def _error_lines(output: str) -> list[str]:
    return [ln for ln in output.splitlines() if ln.strip()]


def _one_photo(root):
    root.mkdir(parents=True, exist_ok=True)
    with Image.open(sample_images()[1]) as im:
        im.convert("RGB").resize((64, 36)).save(root / "zidane.jpg")
    return root


NO_MODEL = ["--model", "no-such-model", "--device", "cpu"]  # an error about it would mean a model was built first


@pytest.mark.parametrize(
    "extra, flag",
    [(["--focal-px", "inf"], "--focal-px"), (["--focal-px", "nan"], "--focal-px"),
     (["--focal-px", "0"], "--focal-px"), (["--focal-px=-1"], "--focal-px"), (["--batch-size", "0"], "--batch-size"),
     (["--ply-stride", "0"], "--ply-stride"), (["--workers", "0"], "--workers"), (["--batch-size=-3"], "--batch-size")],
)  # fmt: skip
def test_depth_option_values_are_checked_before_any_work(tmp_path, extra, flag) -> None:
    src, out = _one_photo(tmp_path / "in"), tmp_path / "out"
    res = CliRunner().invoke(app, ["depth", str(src), "--out", str(out), *NO_MODEL, *extra])
    lines = _error_lines(res.output)
    assert res.exit_code == 2 and len(lines) == 1, res.output
    assert lines[0].startswith("error: " + flag) and "Traceback" not in res.output
    assert not out.exists()  # no folder made


@pytest.mark.parametrize("where", ["file", "under_file", "proc"])
def test_an_unusable_out_is_one_line_before_any_work(tmp_path, where) -> None:
    src = _one_photo(tmp_path / "in")
    (tmp_path / "f").write_text("a file")
    out = {"file": tmp_path / "f", "under_file": tmp_path / "f" / "sub", "proc": Path("/proc/self/visionbench")}[where]
    res = CliRunner().invoke(app, ["depth", str(src), "--out", str(out), *NO_MODEL])
    lines = _error_lines(res.output)
    assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith(f"error: --out {out}"), res.output
    assert (tmp_path / "f").read_text() == "a file"


def test_file_names_with_rich_markup_are_printed_as_they_are(tmp_path) -> None:
    src = _one_photo(tmp_path / "[red]in")
    (src / "[bold]x.jpg").write_bytes(b"not a jpeg")
    (src / "in[").mkdir()
    (src / "in[" / "]y.jpg").write_bytes(b"not a jpeg either")  # its path holds "[/]": a closing tag to rich
    res = CliRunner().invoke(app, ["depth", str(src), "--out", str(tmp_path / "[b]out"), *ARGS], terminal_width=400)
    assert res.exit_code == 1, res.output
    text = res.output
    assert "[bold]x.jpg" in text and "in[/]y.jpg" in text and "[b]out" in text and "Traceback" not in text


def _cli(*args: str, **popen) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **popen.pop("env", {})}
    return subprocess.Popen([sys.executable, "-m", "visionbench", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **popen)  # fmt: skip


def _many_photos(root, n: int):
    first = _one_photo(root) / "zidane.jpg"
    for i in range(n):
        shutil.copy(first, root / f"p{i:04d}.jpg")
    return root


def _sidecars(folder) -> list:
    return [p for p in folder.glob("*.json") if p.name != "depth_run.json"]


def _wait_for_first_image(proc: subprocess.Popen, out) -> None:
    deadline = time.monotonic() + 300
    while not (out.is_dir() and _sidecars(out)):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no image written in 300 s"
        time.sleep(0.01)


def test_ctrl_c_midway_writes_the_summary_of_what_was_done(tmp_path) -> None:
    src, out = _many_photos(tmp_path / "in", 300), tmp_path / "out"
    proc = _cli("depth", str(src), "--out", str(out), "--json", "--workers", "1", *ARGS)
    _wait_for_first_image(proc, out)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert _error_lines(stderr) == ["error: interrupted; results written so far are kept"]
    record = json.loads((out / "depth_run.json").read_text())["summary"]
    assert record["status"] == "interrupted" and record["total"] == 301
    assert 1 <= record["done"] == len(_sidecars(out)) < 301 and record["not_attempted"] == 301 - record["done"]


def test_out_replaced_by_a_file_midway_stops_and_says_where_the_summary_went(tmp_path) -> None:
    src, out, moved, tmp = _many_photos(tmp_path / "in", 300), tmp_path / "out", tmp_path / "moved", tmp_path / "tmp"
    tmp.mkdir()
    proc = _cli("depth", str(src), "--out", str(out), "--workers", "1", *ARGS, env={"TMPDIR": str(tmp)})
    _wait_for_first_image(proc, out)
    out.rename(moved)
    out.write_text("a file now")
    _stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr
    error = [ln for ln in _error_lines(stderr) if ln.startswith("error:")]
    assert len(error) == 1 and "stopped" in error[0] and "Traceback" not in stderr
    fallback = next(tmp.glob("visionbench-depth_run-*.json"))
    assert str(fallback) in error[0]
    record = json.loads(fallback.read_text())["summary"]
    assert record["status"] == "stopped" and record["done"] == len(_sidecars(moved)) >= 1
    assert record["done"] + record["failed"] + record["not_attempted"] == 301


def test_permissions_are_named_for_files_folders_and_out(as_nobody) -> None:
    """As an unprivileged user: an unreadable photo, an unlistable subfolder, a read-only --out.
    Each is said as such and counted, never called corrupt nor skipped in silence."""
    import matplotlib.pyplot  # noqa: F401 - imported (and its cache made) while root: nobody has no home

    base = Path(tempfile.mkdtemp(prefix="vb-perm-"))  # tmp_path's parents are private to root
    try:
        os.chmod(base, 0o755)
        src = _one_photo(base / "in")
        shutil.copy(src / "zidane.jpg", src / "secret.jpg")
        os.chmod(src / "secret.jpg", 0o600)
        _one_photo(src / "locked")
        os.chmod(src / "locked", 0o700)
        (base / "ro").mkdir()
        out = base / "out"
        out.mkdir()
        os.chown(out, 65534, 65534)
        runner = CliRunner()
        with as_nobody():
            res = runner.invoke(app, ["depth", str(src), "--out", str(out), "--json", *ARGS])
            ro = runner.invoke(app, ["depth", str(src / "zidane.jpg"), "--out", str(base / "ro" / "o"), *NO_MODEL])
        assert res.exit_code == 1, res.output
        summary = json.loads(res.stdout)
        assert (summary["done"], summary["failed"], summary["unreadable_paths"]) == (1, 1, 1)
        errors = {Path(f["path"]).name: f["error"] for f in summary["failures"]}
        assert "permission denied" in errors["secret.jpg"] and "corrupt" not in errors["secret.jpg"]
        assert "cannot list this folder (permission denied)" in errors["locked"]
        assert "locked" in Path(summary["failures_file"]).read_text()
        assert ro.exit_code == 2, ro.output
        assert _error_lines(ro.output) == [f"error: --out {base / 'ro' / 'o'}: no permission to write there"]
    finally:
        shutil.rmtree(base)


def _file_contents():
    """Bytes a user's folder may hold: noise, real photos cut anywhere, tiny images of odd modes and sizes."""
    import io as _io

    from hypothesis import strategies as st

    photo = sample_images()[1].read_bytes()

    def image(mode: str, w: int, h: int, fmt: str) -> bytes:
        buf = _io.BytesIO()
        Image.new(mode, (w, h)).save(buf, format=fmt)
        return buf.getvalue()

    odd = st.builds(image, st.sampled_from(["RGB", "L", "RGBA", "P", "1", "I;16"]), st.integers(1, 40),
                    st.integers(1, 40), st.sampled_from(["PNG", "TIFF"]))  # fmt: skip
    return st.one_of(st.binary(max_size=64), st.integers(0, len(photo)).map(lambda n: photo[:n]), odd)


def test_generated_files_and_options_never_escape_the_error_boundary(tmp_path) -> None:
    """Whatever the files and option values: exit 0, 1 or 2, no traceback, nothing written outside --out."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    counter = iter(range(10**6))

    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(files=st.lists(_file_contents(), min_size=1, max_size=3),
           suffix=st.sampled_from([".jpg", ".png", ".tif", ".webp"]),
           batch=st.sampled_from(["1", "2", "0", "-1"]),
           focal=st.sampled_from([None, "30", "0", "nan", "inf", "-5"]))  # fmt: skip
    def check(files, suffix, batch, focal) -> None:
        case = tmp_path / f"case{next(counter)}"
        src, out = case / "in", case / "out"
        src.mkdir(parents=True)
        for i, data in enumerate(files):
            (src / f"f{i}{suffix}").write_bytes(data)
        before = {p for p in case.rglob("*")}
        args = ["depth", str(src), "--out", str(out), "--batch-size", batch, *ARGS]
        res = CliRunner().invoke(app, args + (["--focal-px", focal] if focal else []))
        assert res.exit_code in {0, 1, 2}, res.output
        assert "Traceback" not in res.output
        assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
        new = {p for p in case.rglob("*")} - before
        assert all(p == out or out in p.parents for p in new), new

    check()
