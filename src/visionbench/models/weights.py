"""Where weights come from: `auto` (cache or hub, else random and say so), `random`, or a local path.

The hub must never hang a run: `HF_HUB_OFFLINE=1` is honoured, and otherwise a 2-second TCP probe
decides whether a download is even tried. Checkpoints are read as safetensors or with
`torch.load(weights_only=True)`: no pickled code runs unless the user asked for it.

Stock ultralytics `.pt` files pickle whole model objects, so the classes a stock checkpoint holds
are allowed explicitly with `torch.serialization.safe_globals`: `nn.Module` subclasses from `torch.nn`
and ultralytics' model code, ultralytics' settings namespace, numpy scalars and dtypes, and paths. A
pickle's REDUCE can then only call those constructors, never `os.system`. A zip checkpoint's globals
are listed before loading, so one outside the list is named in one line; legacy (non-zip) files
cannot be listed and are read against the whole list, without `mmap`. `--trust-remote-code` is the
only way past the list.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import pathlib
import pickle
import re
import socket
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

from visionbench.errors import BadInputError, WeightsError
from visionbench.models.base import WeightsInfo, first_line
from visionbench.switches import switched_on

if TYPE_CHECKING:
    from visionbench.models.registry import BuildSpec

log = logging.getLogger("visionbench")

HUB_HOST = "huggingface.co"
SAFE_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")


@dataclass(frozen=True)
class WeightsRequest:
    """The parsed `--weights` option."""

    kind: Literal["auto", "random", "path"]
    path: Path | None = None


def parse_weights(value: str | Path | None) -> WeightsRequest:
    """`auto` | `random` | a file or folder that exists; anything else is a clear error."""
    if value is None or str(value) == "auto":
        return WeightsRequest("auto")
    if str(value) == "random":
        return WeightsRequest("random")
    path = Path(value).expanduser()
    if not path.exists():
        raise WeightsError(f"--weights: no such file or folder: {path} (use auto, random or a path)")
    if path.is_file() and not os.access(path, os.R_OK):
        raise WeightsError(f"--weights: cannot read {path}")
    return WeightsRequest("path", path)


def offline() -> bool:
    """The hub's own switch (`HF_HUB_OFFLINE`), read the one way every switch is read."""
    return switched_on("HF_HUB_OFFLINE")


def offline_hint() -> str:
    """How to skip the network probe next time, unless the user already did."""
    return "" if offline() else "; set HF_HUB_OFFLINE=1 to skip the network probe"


@functools.lru_cache(maxsize=1)
def hub_reachable() -> bool:
    """Whether a hub download may be tried: not offline, and the hub answers."""
    return not offline() and can_connect(HUB_HOST)


def can_connect(host: str, timeout_s: float = 2.0) -> bool:
    """A TCP connect with a short timeout; never a long hang on a closed network."""
    try:
        with socket.create_connection((host, 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def find_hf_snapshot(repo_id: str, revision: str | None = None, *, download: bool = True) -> tuple[Path | None, str]:
    """(snapshot folder, "") or (None, why not): cached first, then a download when allowed and reachable."""
    from huggingface_hub import snapshot_download

    what = f"{repo_id}@{revision}" if revision else repo_id
    try:
        folder: Path | None = Path(snapshot_download(repo_id, revision=revision, local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure means "not cached"
        folder = None
    if folder is not None:
        missing = snapshot_missing(folder)
        if not missing:
            return folder, ""
        why = f"the cached snapshot {folder} has no {missing}"
    else:
        why = f"{what} is not in the local Hugging Face cache"
    if not download:
        return None, why
    if offline():
        return None, f"{why}, and HF_HUB_OFFLINE is set (no download)"
    if not hub_reachable():
        return None, f"{why}, and the hub is unreachable"
    try:
        patterns = ["*.json", "*.safetensors", "*.txt"]
        got = Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns, etag_timeout=5))
    except Exception as exc:  # noqa: BLE001 - a missing repo or revision, a timeout: one line
        name = type(exc).__name__
        if "Revision" in name:
            return None, f"revision {revision!r} of {repo_id} does not exist on the hub"
        if "RepositoryNotFound" in name:
            return None, f"{repo_id} does not exist on the hub (or needs a login)"
        return None, f"{why}; the download failed ({name}: {first_line(exc)})"
    missing = snapshot_missing(got)
    return (got, "") if not missing else (None, f"the downloaded snapshot {got} has no {missing}")


def snapshot_missing(folder: Path) -> str:
    """What a model folder lacks to be loaded ("" when it has a config and a weights file)."""
    if not (folder / "config.json").is_file():
        return "config.json"
    if not (any(folder.glob("*.safetensors")) or any(folder.glob("*.bin"))):
        return "weights file (*.safetensors or *.bin)"
    return ""


def read_state_dict(path: Path, *, allow_pickle: bool = False) -> dict[str, torch.Tensor]:
    """A state dict from safetensors (memory-mapped) or a torch file read with weights_only=True."""
    if path.suffix not in SAFE_SUFFIXES:
        raise WeightsError(f"{path}: unsupported weights format {path.suffix!r} (use {', '.join(SAFE_SUFFIXES)})")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        obj = torch_load(path, trust_remote_code=allow_pickle)
    except WeightsError:
        raise
    except Exception as exc:  # noqa: BLE001
        hint = "" if allow_pickle else " (read with weights_only=True: pickled code is not executed)"
        raise WeightsError(f"{path}: cannot read weights: {first_line(exc)}{hint}") from exc
    if isinstance(obj, nn.Module):
        return obj.state_dict()
    if isinstance(obj, dict):
        for key in ("state_dict", "ema", "model"):  # ultralytics prefers ema, as here
            inner = obj.get(key)
            if isinstance(inner, nn.Module):
                return inner.float().state_dict()
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return inner
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
    raise WeightsError(f"{path}: no state dict of tensors inside (found {type(obj).__name__})")


def load_into(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load a state dict strictly, assigning tensors (no second copy); name what does not fit."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [k for k in own.keys() & state.keys() if tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
        if mismatched:
            k = mismatched[0]
            parts.append(
                f"{len(mismatched)} shape mismatches (e.g. {k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)})"
            )
        raise WeightsError(f"{source} does not fit this architecture: {'; '.join(parts)}")
    module.load_state_dict(state, strict=True, assign=True)


def random_info(spec: BuildSpec, where: str | None = None) -> WeightsInfo:
    """Random weights; `where` (why `auto` found none) becomes the loud warning every output repeats."""
    warning = None
    if where is not None:
        warning = (
            f"NO PRETRAINED WEIGHTS for {spec.card.name}: {where}. Using RANDOM weights: timing, memory, FLOPs "
            "and structure are valid; outputs and activation statistics are not those of the trained model."
        )
        log.warning(warning)
    return WeightsInfo("random", f"random init (seed {spec.seed})", warning)


def resolve_file_in_folder(folder: Path) -> Path:
    """A weights file as it is; a weights folder without config.json: its single weights file."""
    if not folder.is_dir():
        return folder
    files = [p for p in sorted(folder.iterdir()) if p.suffix in SAFE_SUFFIXES]
    if len(files) != 1:
        raise BadInputError(f"{folder}: expected one weights file or a config.json, found {len(files)} weights files")
    return files[0]


TRUST_HINT = "pass --trust-remote-code only if you trust this file"
# Modules whose nn.Module subclasses a stock checkpoint may hold (also their submodules).
MODULE_PACKAGES = ("torch.nn.modules", "ultralytics.nn.modules", "ultralytics.nn.tasks")
# Plain classes of ultralytics' training code that a checkpoint saved mid-training can hold.
CLASS_MODULES = ("ultralytics.utils.loss", "ultralytics.utils.tal")


def torch_load(path: Path, *, trust_remote_code: bool = False) -> Any:
    """The object in a torch file: weights_only with the stock-checkpoint allow-list unless trusted."""
    is_zip = zipfile.is_zipfile(path)
    if trust_remote_code:
        return _load(path, weights_only=False, mmap=is_zip)
    if is_zip:
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        except Exception:  # noqa: BLE001 - a broken archive: torch.load below names the problem
            names = []
        allowed = [allowed_global(name, path) for name in names]
        return _load(path, weights_only=True, mmap=True, allowed=allowed)
    return _load(path, weights_only=True, mmap=False, allowed=_all_allowed())


def allowed_global(name: str, path: Path | str = "checkpoint") -> Any:
    """The object a pickle may reference under `name`, or a WeightsError naming it."""
    fixed = _fixed().get(name)
    if fixed is not None:
        return (fixed, name)
    module_name, _, attr = name.rpartition(".")
    if module_name and (
        any(module_name == p or module_name.startswith(p + ".") for p in MODULE_PACKAGES)
        or module_name in CLASS_MODULES
    ):
        try:
            obj = getattr(importlib.import_module(module_name), attr, None)
        except ImportError:
            obj = None
        if isinstance(obj, type) and (
            issubclass(obj, nn.Module) or (module_name in CLASS_MODULES and obj.__module__ == module_name)
        ):
            return (obj, name)
    raise WeightsError(
        f"{path}: refers to {name}, which is not a class a stock model checkpoint holds "
        f"(read with weights_only=True: pickled code is not executed); {TRUST_HINT}"
    )


def _restricted_getattr(obj: Any, name: str) -> Any:
    """What stock checkpoints pickle through getattr: a module's own forward (YOLO11 heads)."""
    if isinstance(obj, nn.Module) and name in {"forward", "forward_fuse"}:
        return getattr(type(obj), name).__get__(obj)
    if isinstance(obj, type) and issubclass(obj, nn.Module) and name in {"forward", "forward_fuse"}:
        return getattr(obj, name)
    raise pickle.UnpicklingError(f"getattr({type(obj).__name__}, {name!r}) is not allowed in a checkpoint")


@functools.cache
def _fixed() -> dict[str, Any]:
    """Built on first use: numpy and ultralytics are imported only when a file is read."""
    import numpy as np

    scalar = np.float64(0).__reduce__()[0]
    fixed: dict[str, Any] = {
        "numpy.dtype": np.dtype,
        "numpy.core.multiarray.scalar": scalar,
        "numpy._core.multiarray.scalar": scalar,
        "builtins.getattr": _restricted_getattr,
        "pathlib.PosixPath": pathlib.PurePosixPath,
        "pathlib.WindowsPath": pathlib.PureWindowsPath,
        "pathlib._local.PosixPath": pathlib.PurePosixPath,
        "pathlib._local.WindowsPath": pathlib.PureWindowsPath,
    }
    for dtype in (np.float64, np.float32, np.float16, np.int64, np.int32, np.bool_):
        cls = type(np.dtype(dtype))
        fixed[f"{cls.__module__}.{cls.__qualname__}"] = cls
    try:
        from ultralytics.utils import IterableSimpleNamespace

        fixed["ultralytics.utils.IterableSimpleNamespace"] = IterableSimpleNamespace
        fixed["ultralytics.yolo.utils.IterableSimpleNamespace"] = IterableSimpleNamespace
    except ImportError:
        pass
    return fixed


def _all_allowed() -> list[Any]:
    """Every allowed global, for legacy files whose globals cannot be listed before loading."""
    import inspect
    import pkgutil

    entries: list[Any] = [(obj, name) for name, obj in _fixed().items()]
    modules = []
    for package in MODULE_PACKAGES + CLASS_MODULES:
        try:
            mod = importlib.import_module(package)
        except ImportError:
            continue
        modules.append(mod)
        for info in pkgutil.walk_packages(getattr(mod, "__path__", []), package + "."):
            try:
                modules.append(importlib.import_module(info.name))
            except ImportError:
                continue
    for mod in modules:
        for _, obj in inspect.getmembers(mod, inspect.isclass):
            if obj.__module__ == mod.__name__ and (issubclass(obj, nn.Module) or mod.__name__ in CLASS_MODULES):
                entries.append((obj, f"{mod.__name__}.{obj.__qualname__}"))
    return entries


def _load(path: Path, *, weights_only: bool, mmap: bool, allowed: list[Any] | None = None) -> Any:
    try:
        with torch.serialization.safe_globals(allowed or []):
            return torch.load(path, map_location="cpu", weights_only=weights_only, mmap=mmap)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        if found and weights_only:
            allowed_global(found.group(1), path)  # raises the one line naming it
        if "persistent_load" in str(exc) and not mmap:
            raise WeightsError(
                f"{path}: a legacy (non-zip) torch file holding a whole pickled model cannot be read with "
                f"weights_only=True; save its state_dict with a current torch, or {TRUST_HINT}"
            ) from exc
        raise WeightsError(f"{path}: cannot read weights: {_unpickler_reason(exc)}; {TRUST_HINT}") from exc
    except (RuntimeError, EOFError, ValueError, OSError, AttributeError, ImportError, TypeError) as exc:
        raise WeightsError(
            f"{path}: not a readable checkpoint: empty, truncated or not a torch file ({first_line(exc)})"
        ) from exc


def _unpickler_reason(exc: BaseException) -> str:
    """torch's weights_only message is a paragraph; the line after 'WeightsUnpickler error:' says why."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        if "WeightsUnpickler error" in line:
            rest = line.split("WeightsUnpickler error:", 1)[1].strip()
            return rest or (lines[i + 1] if i + 1 < len(lines) else line)
    return lines[0] if lines else type(exc).__name__
