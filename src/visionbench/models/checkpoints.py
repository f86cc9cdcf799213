"""Reading torch checkpoint files without running code the user did not allow.

Stock ultralytics `.pt` files pickle whole model objects. `torch.load(weights_only=True)` refuses
any class it does not know, so the classes a stock checkpoint holds are allowed explicitly with
`torch.serialization.safe_globals`: `nn.Module` subclasses from `torch.nn` and ultralytics' own
model code, ultralytics' settings namespace, numpy scalars and dtypes, and paths. A pickle's
REDUCE can then only call those constructors, never `os.system`. A zip checkpoint's globals are
listed before loading (`get_unsafe_globals_in_checkpoint`), so one outside the list is named in
one line; legacy (pre-1.6, non-zip) files cannot be listed and are read against the whole list,
without `mmap` (which needs the zip format). `--trust-remote-code` is the only way past the list.
"""

from __future__ import annotations

import functools
import importlib
import pathlib
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from visionbench.errors import WeightsError

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
        if allowed:
            with torch.serialization.safe_globals(allowed):
                return torch.load(path, map_location="cpu", weights_only=weights_only, mmap=mmap)
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
            f"{path}: not a readable checkpoint: empty, truncated or not a torch file ({_first_line(exc)})"
        ) from exc


def _unpickler_reason(exc: BaseException) -> str:
    """torch's weights_only message is a paragraph; the line after 'WeightsUnpickler error:' says why."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        if "WeightsUnpickler error" in line:
            rest = line.split("WeightsUnpickler error:", 1)[1].strip()
            return rest or (lines[i + 1] if i + 1 < len(lines) else line)
    return lines[0] if lines else type(exc).__name__


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
