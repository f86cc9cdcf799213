"""Finding the images a depth run reads, and saying why a path could not be read instead of skipping it.

`visionbench.images.find_images` walks folders with `Path.rglob`, which skips a subfolder it cannot
list without a word. Here every folder that cannot be listed, every symlink loop and every dangling
link named like an image is returned as a problem, so the run counts it and lists it in its failures.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from visionbench.errors import BadInputError
from visionbench.images import IMAGE_SUFFIXES


@dataclass
class FoundInputs:
    """Image paths in a stable order, and (path, reason) for what could not be looked at."""

    paths: list[Path] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)


def os_reason(exc: OSError) -> str:
    """The plain reason of a filesystem error: permission denied, symlink loop, no such file..."""
    if exc.errno == errno.ELOOP:
        return "symlink loop (too many levels of symbolic links)"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "no such file or folder"
    return exc.strerror or type(exc).__name__


def missing_reason(path: Path) -> str:
    """Why `path.exists()` said no: a symlink loop, a dangling symlink, or nothing there."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return os_reason(exc)
        if os.path.islink(path):
            return f"dangling symlink (to {os.readlink(path)}, which does not exist)"
        return os_reason(exc)
    return "no such file or folder"


def readable_reason(path: Path) -> str | None:
    """None when `path` is a regular file that opens for reading; else the reason (named, never "corrupt").

    Only regular files are opened: opening a FIFO named like an image would wait for a writer forever.
    """
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            return "is a folder, not an image"
        if not stat.S_ISREG(mode):
            return f"not a regular file ({_kind(mode)})"
        with open(path, "rb"):
            return None
    except OSError as exc:
        return missing_reason(path) if isinstance(exc, FileNotFoundError) else os_reason(exc)
    except ValueError as exc:  # a NUL byte in a path read from a list file
        return f"not a valid path ({exc})"


def _kind(mode: int) -> str:
    kinds = {stat.S_ISFIFO: "a FIFO", stat.S_ISSOCK: "a socket", stat.S_ISCHR: "a character device",
             stat.S_ISBLK: "a block device"}  # fmt: skip
    return next((name for test, name in kinds.items() if test(mode)), "not a file")


def find_inputs(inputs: list[str | Path]) -> FoundInputs:
    """Images from files, folders (recursive, symlinked folders not followed) and .txt lists of paths."""
    found = FoundInputs()
    for item in inputs:
        path = Path(item).expanduser()
        if not path.exists():
            raise BadInputError(f"{path}: {missing_reason(path)}")
        if path.is_dir():
            _walk(path, found)
        elif path.suffix.lower() == ".txt":
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise BadInputError(f"{path}: cannot read the list ({os_reason(exc)})") from None
            except UnicodeDecodeError as exc:
                raise BadInputError(f"{path}: not a UTF-8 text list of image paths ({exc.reason} at byte "
                                    f"{exc.start})") from None  # fmt: skip
            lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
            found.problems += [
                (Path(ln.replace("\0", "\\0")), "not a valid path (a NUL byte)") for ln in lines if "\0" in ln
            ]
            lines = [ln for ln in lines if "\0" not in ln]
            found.paths += [Path(ln) if Path(ln).is_absolute() else path.parent / ln for ln in lines]
        else:
            found.paths.append(path)
    return found


def _walk(root: Path, found: FoundInputs) -> None:
    images: list[Path] = []

    def unlistable(exc: OSError) -> None:
        found.problems.append((Path(exc.filename or root), f"cannot list this folder ({os_reason(exc)})"))

    for folder, _dirs, files in os.walk(root, onerror=unlistable):
        for name in files:  # os.walk puts symlinks that do not lead to a folder here, loops included
            if not name.lower().endswith(IMAGE_SUFFIXES):
                continue
            path = Path(folder) / name
            if path.is_file():
                images.append(path)
            elif not path.exists():
                found.problems.append((path, missing_reason(path)))
            else:  # a FIFO, socket or device named like an image
                found.problems.append((path, readable_reason(path) or "not a regular file"))
    found.paths += sorted(images)
