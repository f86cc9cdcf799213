"""Weights for ultralytics models: a local checkpoint first, else the official release file.

`auto` looks in the working folder, ultralytics' `weights_dir` and our cache; else, unless
`HF_HUB_OFFLINE` or `YOLO_OFFLINE` is set and when the host answers, ultralytics' downloader fetches
the release file into `weights_dir` under a time limit. Files are read with the stock-class
allow-list (weights.py), so official `.pt` files load without `--trust-remote-code`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from torch import nn

from visionbench.errors import WeightsError
from visionbench.models.base import META_WEIGHTS, WeightsInfo, file_info, first_line
from visionbench.models.registry import BuildSpec
from visionbench.models.weights import can_connect, load_into, random_info, read_state_dict, resolve_file_in_folder
from visionbench.switches import switched_on

log = logging.getLogger("visionbench")

RELEASE_HOST = "github.com"
OUR_CACHE = Path.home() / ".cache" / "visionbench" / "weights"
DOWNLOAD_TIMEOUT_S = 600.0  # a whole release file (yolo11n 5.4 MB, mobile_sam 40 MB) on a slow link


def weights_dir() -> Path:
    """ultralytics' own weights folder (where its downloader saves), else our cache."""
    try:
        from ultralytics.utils import SETTINGS

        return Path(SETTINGS["weights_dir"])
    except Exception:  # noqa: BLE001 - settings unreadable: our own cache still works
        return OUR_CACHE


def weight_search_dirs() -> list[Path]:
    """Where `auto` looks for ultralytics checkpoints: cwd, ultralytics' weights_dir, our cache."""
    return list(dict.fromkeys([Path.cwd(), weights_dir(), OUR_CACHE]))


def find_local_checkpoint(filename: str) -> Path | None:
    for folder in weight_search_dirs():
        for candidate in (folder / filename, folder / Path(filename).with_suffix(".safetensors")):
            if candidate.is_file():
                return candidate
    return None


def downloads_off() -> str | None:
    """Why no download is tried, or None when one may be."""
    for name in ("HF_HUB_OFFLINE", "YOLO_OFFLINE"):
        if switched_on(name):
            return f"{name} is set"
    return None


def download_release_file(filename: str, timeout_s: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """The official release file through ultralytics' downloader into `weights_dir()`, or one line why not."""
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES, attempt_download_asset

    if filename not in GITHUB_ASSETS_NAMES:
        raise WeightsError(f"{filename}: not an official ultralytics release file")
    target = weights_dir() / filename
    target.parent.mkdir(parents=True, exist_ok=True)
    failure: list[BaseException] = []

    def fetch() -> None:
        try:
            attempt_download_asset(str(target))
        except BaseException as exc:  # noqa: BLE001 - reported by the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=fetch, name=f"download {filename}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise WeightsError(
            f"download of {filename} timed out after {timeout_s:g} s (place the file in {target.parent})"
        )
    if failure:
        raise WeightsError(f"download of {filename} failed: {first_line(failure[0])}")
    if not target.is_file() or target.stat().st_size == 0:
        raise WeightsError(f"download of {filename} left no file at {target}")
    return target


def load_ultralytics_weights(
    spec: BuildSpec, build_random: Callable[[], nn.Module], checkpoint_name: str | None
) -> tuple[nn.Module, WeightsInfo]:
    """The architecture filled from the named, found or downloaded file (a named one never falls back)."""
    req = spec.weights
    module = build_random()
    if spec.device.type == "meta":
        return module, META_WEIGHTS
    if req.kind == "random":
        return module, random_info(spec)
    if req.kind == "path":
        assert req.path is not None
        file = resolve_file_in_folder(req.path)
        load_into(module, read_state_dict(file, allow_pickle=spec.trust_remote_code), str(file))
        return module, file_info(file)
    found = find_local_checkpoint(checkpoint_name) if checkpoint_name else None
    revision = None
    if found is None and checkpoint_name:
        found, revision, where = _try_download(checkpoint_name)
    if found is not None:
        try:
            load_into(module, read_state_dict(found, allow_pickle=spec.trust_remote_code), str(found))
            return module, file_info(found, revision=revision)
        except WeightsError as exc:
            where = f"found {found} but could not load it safely ({exc})"
    elif not checkpoint_name:
        where = "no checkpoint is known for this model"
    return module, random_info(spec, where)


def _try_download(filename: str) -> tuple[Path | None, str | None, str]:
    """(file, release tag, why not) for `auto`: a download only when allowed and the host answers."""
    dirs = ", ".join(str(d) for d in weight_search_dirs())
    missing = f"{filename} not found in {dirs}"
    off = downloads_off()
    if off is not None:
        return None, None, f"{missing}, and no download was tried ({off})"
    if not can_connect(RELEASE_HOST):
        return None, None, f"{missing}, and {RELEASE_HOST} is unreachable (no download)"
    try:
        file = download_release_file(filename)
    except WeightsError as exc:
        return None, None, f"{missing}; {exc}"
    import inspect

    from ultralytics.utils.downloads import attempt_download_asset

    release = inspect.signature(attempt_download_asset).parameters["release"].default  # the tag it fetches
    log.info("downloaded %s into %s", filename, file.parent)
    return file, f"ultralytics/assets {release}" if release else None, ""
