"""Build and load the small hand-written C kernels of the dissection (statistics, picture tiles).

Each kernel is one C source compiled on first use with the system's C compiler into the user's cache folder
(`~/.cache/visionbench/kernels/<name>-<hash>.so`, the hash taken over source, compiler and flags, so an edit
never loads a stale build) and loaded with ctypes, which releases the GIL for the call: writer threads and
split statistics then really run in parallel. Never fast-math: NaN and Inf keep their meaning. Where a kernel
cannot be built (no compiler, a failed build) or its switch is off, `load` returns None and the caller uses its
numpy or torch path, which is also the reference the tests compare the kernel with.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from visionbench.switches import switched_off

log = logging.getLogger("visionbench")
FLAGS = ["-O3", "-shared", "-fPIC"]

Signature = tuple[list[Any], Any]  # (argtypes, restype) of one exported function


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "visionbench" / "kernels"


def _compile(name: str, source: str, compiler: str, flags: list[str], target: Path) -> bool:
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(prefix="vb-kernel-") as tmp:
        src = Path(tmp) / f"{name}.c"
        src.write_text(source)
        built = Path(tmp) / f"{name}.so"
        res = subprocess.run([compiler, *flags, "-o", str(built), str(src)], capture_output=True, text=True)
        if res.returncode != 0:
            log.debug("%s kernel: %s %s failed: %s", name, compiler, " ".join(flags), res.stderr.strip())
            return False
        os.replace(built, target)  # atomic: a concurrent process never loads half a file
    return True


def load(name: str, source: str, signatures: dict[str, Signature], env_switch: str,
         variants: Sequence[tuple[str, ...]] = (("-march=native",), ()),
         accept: Callable[[ctypes.CDLL], bool] | None = None) -> ctypes.CDLL | None:  # fmt: skip
    """The compiled kernel `name` with its functions' signatures set, or None where it cannot be had.

    `variants` are extra flag sets tried in order (by default the host's SIMD width first, then none); a
    variant that does not build, does not load, or that `accept` turns down gives way to the next."""
    if switched_off(env_switch):
        return None
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        return None
    for extra in variants:
        flags = FLAGS + list(extra)
        digest = hashlib.sha256((source + compiler + " ".join(flags)).encode()).hexdigest()[:16]
        target = cache_dir() / f"{name}-{digest}.so"
        try:
            if not target.exists() and not _compile(name, source, compiler, flags, target):
                continue
            lib = ctypes.CDLL(str(target))
        except OSError as exc:
            log.debug("%s kernel: cannot build or load %s: %s", name, target, exc)
            continue
        if accept is not None and not accept(lib):
            log.debug("%s kernel: %s turned down", name, " ".join(extra))
            continue
        for function, (argtypes, restype) in signatures.items():
            getattr(lib, function).argtypes = argtypes
            getattr(lib, function).restype = restype
        return lib
    return None


def loaded_libraries(pattern: str) -> set[str]:
    """Paths of the shared libraries mapped into this process whose file name matches `pattern` (Linux;
    empty elsewhere)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return set()
    return {line.split()[-1] for line in maps.splitlines() if re.search(pattern, line.rsplit("/", 1)[-1])}
