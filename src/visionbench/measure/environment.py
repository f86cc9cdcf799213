"""Where a run happened: OS, CPU, cores, threads, GPU, driver, CUDA, library versions, git revision.

Everything here is read, never assumed; a fact that cannot be read is None rather than a guess.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import torch

from visionbench.measure import allocator
from visionbench.results import Environment, GpuInfo
from visionbench.switches import switched_off

LIBRARIES = ("torch", "torchvision", "transformers", "ultralytics", "visionbench", "numpy", "pillow", "pydantic")


def cpu_model() -> str:
    """The CPU's marketing name (/proc/cpuinfo, sysctl on macOS), else platform.processor()."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        out = _run(["sysctl", "-n", "machdep.cpu.brand_string"])
        if out:
            return out
    return platform.processor() or platform.machine()


def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_revision() -> str | None:
    """Commit of the visionbench checkout this code runs from (+ '-dirty'); None for an installed wheel."""
    root = Path(__file__).resolve().parents[3]
    if not (root / ".git").exists():
        return None
    rev = _run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"])
    if not rev:
        return None
    dirty = _run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", "src"])
    return rev + ("-dirty" if dirty else "")


def gpu_driver() -> str | None:
    out = _run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
    return out.splitlines()[0].strip() if out else None


def capture_environment(device: str = "cpu", seed: int = 0, weights_modes: dict[str, str] | None = None) -> Environment:
    """A snapshot of this process's machine and software; `device` is the run's resolved device."""
    gpus: list[GpuInfo] = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            gpus.append(GpuInfo(name=p.name, total_memory_bytes=int(p.total_memory), capability=f"{p.major}.{p.minor}"))
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        load = None
    cudnn = torch.backends.cudnn.version() if torch.cuda.is_available() else None
    return Environment(
        os=f"{platform.system()} {platform.release()} ({platform.platform()})",
        python=platform.python_version(),
        hostname=socket.gethostname(),
        cpu_model=cpu_model(),
        cpu_cores_physical=psutil.cpu_count(logical=False),
        cpu_cores_logical=psutil.cpu_count(logical=True),
        memory_total_bytes=int(psutil.virtual_memory().total),
        torch_threads=torch.get_num_threads(),
        torch_interop_threads=torch.get_num_interop_threads(),
        device=device,
        gpus=gpus,
        cuda_version=torch.version.cuda if torch.cuda.is_available() else None,
        cudnn_version=cudnn,
        gpu_driver=gpu_driver() if gpus else None,
        versions=library_versions(),
        git_revision=git_revision(),
        seed=seed,
        weights_modes=dict(weights_modes or {}),
        load_average=load,
        malloc=worker_malloc(),
    )


def worker_malloc() -> str:
    """What each bench worker's allocator runs with, read without tuning this process (the suite's own)."""
    if allocator.malloc_setting() != "system default":  # this process already runs models: it applied it
        return allocator.malloc_setting()
    applies = not switched_off(allocator.ENV_SWITCH) and platform.system() == "Linux"
    return allocator.DESCRIPTION if applies and platform.libc_ver()[0] == "glibc" else "system default"


def _run(cmd: list[str]) -> str | None:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() if res.returncode == 0 else None
