"""Every file visionbench writes goes through here: atomic, with the user's umask, and only where allowed.

Why one module: a reader (a report, `--resume`, a spreadsheet) must never see half a file, every
output follows the user's umask like any other program's files, and an unusable output folder is
one clear error before any work starts, not a traceback after an hour of compute.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from visionbench.errors import BadInputError


def _read_umask() -> int:
    """The process umask without changing it (Linux reports it in /proc); else set-and-restore once."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any], *, durable: bool = False) -> Path:
    """Call `write(file)` on a temporary file beside `path`, then rename it into place.

    The file gets the permissions `open()` would give it (0666 less the umask; mkstemp makes 0600).
    `durable=True` also fsyncs: for the records a run cannot lose (run.json, result.json).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_read_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_bytes(path: str | Path, data: bytes, *, durable: bool = False) -> Path:
    return atomic_write(path, lambda fh: fh.write(data), durable=durable)


def write_text(path: str | Path, text: str, *, durable: bool = False) -> Path:
    return write_bytes(path, text.encode("utf-8"), durable=durable)


def write_json(path: str | Path, data: Any, *, durable: bool = False) -> Path:
    """JSON with NaN and infinity refused (they are not JSON): a bug upstream, not a file to write."""
    return write_text(path, json.dumps(data, indent=2, default=str, allow_nan=False) + "\n", durable=durable)


def safe_name(name: str, limit: int = 120) -> str:
    """A model or layer name made into one safe path component (hf:org/repo -> hf_org_repo)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", name or "_")[:limit]
    return "_" + cleaned if cleaned in {".", ".."} or cleaned.startswith("..") else cleaned


def inside(root: str | Path, relative: str | Path) -> Path:
    """`root / relative`, refused unless it stays inside `root` (no absolute paths, no `..`, no links out)."""
    root_path = Path(root).resolve()
    candidate = Path(relative)
    if candidate.is_absolute():
        raise BadInputError(f"{root}: refers to an absolute path outside the folder: {relative}")
    resolved = (root_path / candidate).resolve()
    if not resolved.is_relative_to(root_path):
        raise BadInputError(f"{root}: refers to a path outside the folder: {relative}")
    return resolved


def check_output_dir(path: str | Path, what: str = "--out") -> Path:
    """Create `path` if needed and prove it is a writable folder, before any work starts.

    One clear line for each way it can be unusable: a file, under a file, read-only, no permission,
    disk full (a probe file is written and removed).
    """
    folder = Path(path).expanduser()
    for parent in [folder, *folder.parents]:
        if parent.exists() and not parent.is_dir():
            where = "is a file" if parent == folder else f"lies under a file ({parent})"
            raise BadInputError(f"{what} {folder}: {where}, not a folder")
        if parent.is_dir():
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".visionbench-probe-", dir=folder)
        try:
            os.write(fd, b"probe")
        finally:
            os.close(fd)
            os.unlink(probe)
    except PermissionError:
        raise BadInputError(f"{what} {folder}: no permission to write there") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise BadInputError(f"{what} {folder}: cannot write there ({reason})") from None
    return folder
