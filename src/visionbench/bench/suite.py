"""A run of several models: one worker process each, results written atomically as each finishes, resumable.

    run, run_dir = run_suite(BenchConfig(models=["yolo11n", "depth-anything-v2-small"]))

The run folder is complete after every model (run.json, summary.csv, report.md), so Ctrl-C, a
crash or a timeout never loses a finished model, and `resume_suite(RUN_DIR)` runs only what is not done.
A model stopped midway (timeout, crash, out of memory) keeps what it measured before it stopped, read
back from its `events.jsonl`, and is marked partial.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from visionbench.bench.eta import Eta, probe_peak
from visionbench.bench.events import EventReader
from visionbench.bench.stopped import collect_result
from visionbench.config import BenchConfig
from visionbench.errors import BadInputError, UnknownModelError
from visionbench.files import check_output_dir, safe_name, write_json
from visionbench.images import default_image_path, find_images, load_image
from visionbench.results import (
    MODEL_FILE,
    RUN_FILE,
    ModelResult,
    RunResult,
    load_run,
    now_iso,
)

log = logging.getLogger("visionbench")
POLL_S = 0.2


class SuiteObserver:
    """What a front end (the CLI's progress bar) hears; every method is optional."""

    def started(self, run: RunResult, run_dir: Path, todo: list[str], eta_s: float) -> None: ...

    def model_started(self, name: str, index: int, total: int, eta_s: float) -> None: ...

    def progress(self, name: str, phase: str, eta_s: float) -> None: ...

    def model_finished(self, result: ModelResult, eta_s: float) -> None: ...


def prepare_images(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """Usable images and 'path: reason' for each skipped one; a BadInputError when none is usable."""
    paths = find_images(inputs) if inputs else [default_image_path()]
    usable, skipped = [], []
    for p in paths:
        try:
            load_image(p)
            usable.append(p.resolve())
        except BadInputError as exc:
            skipped.append(str(exc))
    if not usable:  # one line that names the reasons, not a warning per image and then the error
        detail = f": {'; '.join(skipped[:3])}" if skipped else ""
        raise BadInputError(f"no usable image among {len(paths)} input(s){detail}")
    for reason in skipped:
        log.warning("skipping image %s", reason)
    return usable, skipped


def new_run_dir(root: str | Path = "runs") -> Path:
    """runs/<YYYYMMDD_HHMMSS>/ (a suffix when two runs start in the same second)."""
    stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
    path = Path(root) / stamp
    n = 2
    while path.exists():
        path, n = Path(root) / f"{stamp}_{n}", n + 1
    path.mkdir(parents=True)
    return path


def run_suite(
    config: BenchConfig,
    out_root: str | Path = "runs",
    *,
    observer: SuiteObserver | None = None,
    command: str = "",
) -> tuple[RunResult, Path]:
    """Benchmark every model of `config` into a new folder under `out_root`; returns the run and its folder.

    Everything that can be checked is checked before the folder exists: the output location, the
    model names, the images and the device.
    """
    from visionbench.measure.environment import capture_environment
    from visionbench.models.registry import resolve_device
    from visionbench.models.weights import parse_weights

    check_output_dir(out_root)
    parse_weights(config.weights)  # a --weights path that does not exist fails every model: say so once, first
    _check_some_model_exists(config.models)
    images, skipped = prepare_images(config.images)
    device = resolve_device(config.device)
    run_dir = new_run_dir(out_root)
    env = capture_environment(str(device), config.seed)
    run = RunResult(run_id=run_dir.name, started_at=now_iso(), command=command, config=config, environment=env)
    return _run_models(run, run_dir, list(config.models), images, skipped, observer or SuiteObserver())


def resume_suite(
    run_dir: str | Path,
    *,
    models: list[str] | None = None,
    trust_remote_code: bool = False,
    observer: SuiteObserver | None = None,
    command: str = "",
) -> tuple[RunResult, Path]:
    """Continue a run folder: its models not `ok` run again with the run's own options.

    `models` narrows what runs (names not in the run are added: the caller named them). Trust is never
    read from the folder: `trust_remote_code` is this caller's, every time (run.json records it).
    """
    from visionbench.models.registry import resolve_device

    folder = check_run_folder(run_dir)
    run = load_run(folder)
    named = list(dict.fromkeys(models or []))
    added = [m for m in named if m not in run.config.models]
    run.config = run.config.model_copy(
        update={"models": run.config.models + added, "trust_remote_code": trust_remote_code}
    )
    run.status, run.finished_at = "running", None
    if command:
        run.command = command
    _check_some_model_exists(run.config.models)
    images, skipped = prepare_images(run.config.images)
    resolve_device(run.config.device)
    wanted = named or run.config.models
    return _run_models(run, folder, wanted, images, skipped, observer or SuiteObserver())


def check_run_folder(run_dir: str | Path) -> Path:
    """A run folder to resume: it exists, holds run.json and can be written; one line naming it otherwise."""
    folder = Path(run_dir)
    if not folder.is_dir():
        raise BadInputError(f"--out {folder} --resume: no such run folder")
    if not (folder / RUN_FILE).is_file():
        raise BadInputError(f"--out {folder} --resume: not a run folder (no {RUN_FILE})")
    return check_output_dir(folder)


def _run_models(
    run: RunResult, run_dir: Path, wanted: list[str], images: list[Path], skipped: list[str], obs: SuiteObserver
) -> tuple[RunResult, Path]:
    """Run the models of `wanted` not yet `ok`, writing the run folder after each one."""
    from visionbench.models.registry import resolve_device

    config = run.config
    todo = [m for m in wanted if (r := run.result(m)) is None or r.status != "ok"]
    device = resolve_device(config.device)
    measured = any(r.peak is not None for r in run.models)  # a resumed run's workers already probed
    peak = probe_peak(str(device), config.dtype, config.threads) if todo and not measured else None
    eta = Eta(config, device.type, peak)
    for r in run.models:
        eta.observe(r)
    first = sum(eta.model_s(m) for m in todo)
    if run.first_estimate_s is None:  # a resumed run keeps its original estimate
        run.first_estimate_s = first
    write_outputs(run, run_dir)
    obs.started(run, run_dir, todo, first)
    try:
        for i, name in enumerate(todo):
            remaining = sum(eta.model_s(m) for m in todo[i + 1 :])
            obs.model_started(name, i, len(todo), remaining + eta.model_s(name))
            result = _run_one(name, config, images, skipped, run_dir, eta, remaining, obs)
            run.upsert(result)
            if result.weights is not None:
                run.environment.weights_modes[name] = result.weights.mode
            eta.observe(result)
            write_outputs(run, run_dir)
            obs.model_finished(result, remaining)
    except KeyboardInterrupt as exc:
        if isinstance(exc, _Interrupted):
            run.upsert(exc.result)
        run.status, run.finished_at = "interrupted", now_iso()
        write_outputs(run, run_dir)
        raise
    run.status, run.finished_at = "complete", now_iso()
    write_outputs(run, run_dir)
    return run, run_dir


def _check_some_model_exists(names: list[str]) -> None:
    """Every name unknown is bad input (exit 2, no run folder); some unknown ones are recorded failures."""
    from visionbench.models.registry import get_card

    errors = []
    for name in names:
        try:
            get_card(name)
            return
        except UnknownModelError as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


def _run_one(
    name: str,
    config: BenchConfig,
    images: list[Path],
    skipped: list[str],
    run_dir: Path,
    eta: Eta,
    later_s: float,
    obs: SuiteObserver,
) -> ModelResult:
    """One model in its own worker process, with the timeout, crash and Ctrl-C policies."""
    from visionbench.models.registry import get_card

    folder = safe_name(name)
    model_dir = run_dir / folder
    try:
        get_card(name)  # an unknown name fails here, without paying for a process
    except UnknownModelError as exc:
        return ModelResult(name=name, status="failed", error=str(exc), folder=folder, finished_at=now_iso())
    model_dir.mkdir(parents=True, exist_ok=True)
    for stale in (MODEL_FILE, "events.jsonl", "traceback.txt"):
        (model_dir / stale).unlink(missing_ok=True)
    spec = {"name": name, "config": config.model_dump(), "images": [str(p) for p in images], "out_dir": str(model_dir)}
    spec_path = model_dir / "worker_spec.json"
    write_json(spec_path, spec)
    reader = EventReader(model_dir / "events.jsonl")
    started = time.monotonic()
    expected_end = started + eta.model_s(name)
    phase = "starting"
    status, reason = None, None
    with open(model_dir / "worker.log", "w") as log_fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "visionbench.bench.worker", str(spec_path)],
            stdout=log_fh, stderr=subprocess.STDOUT, start_new_session=True, env=_worker_env(),
        )  # fmt: skip
        try:
            while proc.poll() is None:
                time.sleep(POLL_S)
                for ev in reader.read():
                    phase, expected_end = _apply_event(ev, phase, expected_end)
                now = time.monotonic()
                obs.progress(name, phase, max(0.0, expected_end - now) + later_s)
                if config.timeout is not None and now - started > config.timeout:
                    _kill(proc)
                    status, reason = "timeout", f"exceeded --timeout {config.timeout:g} s during {phase}"
        except KeyboardInterrupt:
            _kill(proc)
            result = collect_result(
                name, model_dir, folder, proc.returncode, "interrupted", f"interrupted (Ctrl-C) during {phase}"
            )
            raise _Interrupted(result) from None
    result = collect_result(name, model_dir, folder, proc.returncode, status, reason)
    result.skipped_images = list(skipped)
    return result


class _Interrupted(KeyboardInterrupt):
    def __init__(self, result: ModelResult) -> None:
        super().__init__("interrupted")
        self.result = result


def _apply_event(ev: dict[str, Any], phase: str, expected_end: float) -> tuple[str, float]:
    kind = ev.get("event")
    if kind == "phase":
        bs = ev.get("batch_size")
        phase = f"{ev['phase']}" + (f" (batch {bs})" if bs and bs != 1 else "")
    elif kind == "estimate":
        expected_end = time.monotonic() + float(ev.get("remaining_s", 0.0))
    elif kind == "sample":
        phase = f"{ev.get('loop')} #{ev.get('n')}"
    return phase, expected_end


def _kill(proc: subprocess.Popen) -> None:
    """Stop the worker's whole process group (it may have children), politely then firmly."""
    for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _worker_env() -> dict[str, str]:
    env = os.environ.copy()
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("YOLO_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def write_outputs(run: RunResult, run_dir: Path) -> None:
    """run.json, summary.csv and report.md, each replaced atomically."""
    from visionbench.report import write_run_files

    write_run_files(run, run_dir)
