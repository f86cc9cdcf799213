"""`visionbench depth --engine ray` on a real local Ray (2 CPUs, one instance for the whole file) with a tiny
DepthPro of the real architecture: the same files as the local engine, resume, one-line errors, S3 in and out.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from visionbench.cli import app
from visionbench.depth import intrinsics
from visionbench.depth.options import DepthOptions
from visionbench.depth.ray_engine import INSTALL_HINT, run_depth_ray
from visionbench.depth.summary import DepthRunSummary
from visionbench.images import sample_images

ray = pytest.importorskip("ray")
TIMINGS = ("runtime_ms", "decode_ms")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's standalone S3 server on 127.0.0.1; its address is in the environment before Ray starts, so the
    Ray workers (which inherit it) reach the same bucket. None when moto's server cannot run here."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        yield None
        return
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per S3 request otherwise
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env["AWS_ENDPOINT_URL"]
    server.stop()
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def local_ray(s3_endpoint):
    """One local Ray for every test here (starting one costs seconds); the engine reuses it, then it stops."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _photos(root: Path) -> tuple[list[str], list[str]]:
    """Small copies of the two real photos (one with an EXIF focal length, one rotated, one gray) and broken files."""
    (root / "sub").mkdir(parents=True)
    bus, zidane = (Image.open(p).convert("RGB") for p in sample_images())
    bus.resize((96, 128)).save(root / "bus.jpg")
    exif = Image.Exif()
    exif.get_ifd(intrinsics.EXIF_IFD)[intrinsics.FOCAL_35MM_TAG] = 28
    zidane.resize((160, 90)).save(root / "zidane.jpg", exif=exif)
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    bus.resize((120, 90)).save(root / "sub" / "rotated.jpg", exif=exif)
    zidane.resize((80, 60)).convert("L").save(root / "sub" / "gray.png")
    (root / "empty.jpg").write_bytes(b"")
    (root / "notes.png").write_text("not an image")
    (root / "truncated.jpg").write_bytes(sample_images()[0].read_bytes()[:5000])
    return ["bus", "zidane", "sub/rotated", "sub/gray"], ["empty.jpg", "notes.png", "truncated.jpg"]


def _opts(out: Path, **kw) -> DepthOptions:
    return DepthOptions(model="depthpro-tiny", weights="random", device="cpu", out=out, ply=True, **kw)


def _local_engine(inputs: list[Path], out: Path) -> DepthRunSummary:
    """The local engine as a user runs it, in a fresh process like each Ray actor: a long test process can
    carry torch state from earlier tests that shifts the last bits of a forward, and equality must be exact."""
    cmd = [sys.executable, "-m", "visionbench", "depth", *map(str, inputs), "--model", "depthpro-tiny",
           "--weights", "random", "--device", "cpu", "--ply", "--out", str(out), "--json"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=os.environ | {"OMP_NUM_THREADS": "1"})
    assert done.returncode in (0, 1), done.stderr[-2000:]
    return DepthRunSummary.model_validate(json.loads((out / "depth_run.json").read_text())["summary"])


def _sidecar(path: Path) -> dict:
    data = json.loads(path.read_text())
    return {k: v for k, v in data.items() if k not in TIMINGS}


def test_ray_engine_writes_what_the_local_engine_writes(tmp_path, local_ray) -> None:
    good, bad = _photos(tmp_path / "photos")
    local = _local_engine([tmp_path / "photos"], tmp_path / "local")
    remote = run_depth_ray([str(tmp_path / "photos")], _opts(tmp_path / "ray"), show_progress=False)

    assert (remote.done, remote.failed, remote.total) == (local.done, local.failed, local.total) == (4, 3, 7)
    assert [f.model_dump() for f in remote.failures] == [f.model_dump() for f in local.failures]
    assert Path(remote.failures_file).read_text() == Path(local.failures_file).read_text()
    assert Path(remote.failures_file).name == f"failures-{remote.run_id}.txt"
    assert remote.actors >= 1 and remote.actor_resources == {"num_cpus": 1.0} and remote.cluster_resources["CPU"] == 2

    def files(root: Path, run_id: str) -> list[str]:  # each run names its failures file by its own run id
        return sorted(str(p.relative_to(root)).replace(run_id, "RUN") for p in root.rglob("*") if p.is_file())

    assert files(tmp_path / "local", local.run_id) == files(tmp_path / "ray", remote.run_id)
    for stem in good:
        a, b = tmp_path / "local" / stem, tmp_path / "ray" / stem
        assert np.array_equal(np.load(f"{a}.depth.npy"), np.load(f"{b}.depth.npy"))
        assert _sidecar(Path(f"{a}.json")) == _sidecar(Path(f"{b}.json"))
        for suffix in (".depth.png", ".depth16.png", ".ply"):
            assert Path(f"{a}{suffix}").read_bytes() == Path(f"{b}{suffix}").read_bytes(), stem + suffix
    assert _sidecar(tmp_path / "ray" / "zidane.json")["focal_source"] == "exif"  # EXIF travelled with the image
    summary = json.loads((tmp_path / "ray" / "depth_run.json").read_text())
    assert summary["summary"]["engine"] == "ray" and summary["summary"]["done"] == 4
    assert summary["options"] == json.loads((tmp_path / "local" / "depth_run.json").read_text())["options"] | {
        "out": str(tmp_path / "ray")
    }


def test_ray_engine_focal_px_and_resume(tmp_path, local_ray) -> None:
    _photos(tmp_path / "photos")
    out = tmp_path / "out"
    first = run_depth_ray([str(tmp_path / "photos")], _opts(out, focal_px=150.0), show_progress=False)
    assert (first.done, first.failed) == (4, 3)
    side = json.loads((out / "bus.json").read_text())
    assert (side["focal_px"], side["focal_source"], side["depth_uses_focal_px"]) == (150.0, "cli", 150.0)

    Path(f"{out}/sub/gray.json").unlink()  # as if the run had stopped before this image's sidecar
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.npy")}
    again = run_depth_ray([str(tmp_path / "photos")], _opts(out, focal_px=150.0, resume=True), show_progress=False)
    assert (again.skipped, again.done, again.failed, again.total) == (3, 1, 3, 7)
    changed = [p.name for p, t in before.items() if p.stat().st_mtime_ns != t]
    assert changed == ["gray.depth.npy"]
    assert (out / "sub" / "gray.json").exists()


def test_ray_cli_summary_and_one_line_errors(tmp_path, local_ray) -> None:
    _photos(tmp_path / "photos")
    runner = CliRunner()
    args = ["depth", str(tmp_path / "photos"), "-m", "depthpro-tiny", "--weights", "random", "--device", "cpu",
            "-o", str(tmp_path / "out"), "--engine", "ray"]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 1, res.output  # three broken files
    assert "4 done" in res.output and "3 failed" in res.output and "model actor(s)" in res.output

    for extra, needle in (
        (["--ray-address", f"127.0.0.1:{_free_port()}"], "no Ray cluster reachable"),
        (["--ray-address", "nonsense"], "expected HOST:PORT"),
        (["--engine", "spark"], "expected local or ray"),
    ):
        res = runner.invoke(app, args + extra)
        assert res.exit_code == 2, res.output
        assert res.output.startswith("error:") and needle in res.output and len(res.output.splitlines()) == 1

    res = runner.invoke(app, [*args[:1], str(tmp_path / "missing"), *args[2:]])
    assert res.exit_code == 2 and "no such file or folder" in res.output and "Traceback" not in res.output


def test_without_ray_one_line_says_how_to_install(tmp_path) -> None:
    code = "import sys; sys.modules['ray'] = None; from visionbench.cli import main; sys.argv[0] = 'vb'; main()"
    args = ["depth", str(sample_images()[0]), "-o", str(tmp_path), "--engine", "ray"]
    res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    lines = (res.stdout + res.stderr).strip().splitlines()
    # INSTALL_HINT's "[ray]" survives only once cli.common.fail escapes rich markup (the cli branch does)
    assert len(lines) == 1 and lines[0].startswith("error: " + INSTALL_HINT.split("[")[0])


def test_ray_engine_reads_and_writes_s3(tmp_path, local_ray, s3_endpoint) -> None:
    if s3_endpoint is None:
        pytest.skip("moto's S3 server is not installed")
    import fsspec

    fs = fsspec.filesystem("s3")
    fs.mkdir("photos")
    fs.mkdir("depth")
    local = tmp_path / "photos"
    good, _ = _photos(local)
    for p in local.rglob("*"):
        if p.is_file():
            fs.put_file(str(p), f"photos/set/{p.relative_to(local)}")
    summary = run_depth_ray(["s3://photos/set"], _opts(tmp_path / "unused"), out="s3://depth/run", show_progress=False)
    assert (summary.done, summary.failed) == (4, 3)
    reference = _local_engine([local], tmp_path / "local")
    assert reference.done == 4
    fs.invalidate_cache()
    for stem in good:
        with fs.open(f"depth/run/{stem}.depth.npy", "rb") as fh:
            assert np.array_equal(np.load(fh), np.load(tmp_path / "local" / f"{stem}.depth.npy"))
        remote = {k: v for k, v in json.loads(fs.cat_file(f"depth/run/{stem}.json")).items() if k not in TIMINGS}
        expected = _sidecar(tmp_path / "local" / f"{stem}.json")
        assert remote == expected | {"source": remote["source"]} and remote["source"].startswith("s3://photos/set/")
    failures = fs.cat_file(f"depth/run/failures-{summary.run_id}.txt").decode().splitlines()
    names = ("empty.jpg", "notes.png", "truncated.jpg")
    assert sorted(line.split("\t")[0] for line in failures) == [f"s3://photos/set/{n}" for n in names]
    again = run_depth_ray(["s3://photos/set"], _opts(tmp_path / "unused", resume=True), out="s3://depth/run",
                          show_progress=False)  # fmt: skip
    assert (again.skipped, again.done) == (4, 0)
    shutil.rmtree(tmp_path / "unused", ignore_errors=True)


def test_pool_leaves_cpus_to_decoding_and_takes_one_gpu_per_actor() -> None:
    from visionbench.depth.ray_engine import pool_plan
    from visionbench.errors import UnsupportedOptionError

    assert pool_plan({"CPU": 2.0}, "auto") == (1, {"num_cpus": 1.0}, "cpu")  # one CPU stays for the read tasks
    assert pool_plan({"CPU": 16.0}, "cpu")[0] == 12
    assert pool_plan({"CPU": 64.0, "GPU": 8.0}, "auto") == (8, {"num_gpus": 1.0, "num_cpus": 1.0}, "cuda")
    assert pool_plan({"CPU": 64.0, "GPU": 8.0}, "cpu")[2] == "cpu"
    with pytest.raises(UnsupportedOptionError, match="no GPU"):
        pool_plan({"CPU": 8.0}, "cuda")
