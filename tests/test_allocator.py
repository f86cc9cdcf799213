"""The allocator setting: applied once on glibc, switchable off, recorded; measured in benchmarks/malloc_tuning.py."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from visionbench.measure.allocator import DESCRIPTION, ENV_SWITCH, malloc_setting, tune_malloc
from visionbench.measure.environment import capture_environment

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def _in_fresh_process(env_value: str | None) -> str:
    code = "from visionbench.measure.allocator import tune_malloc as t; print(t(), t())"
    env = {} if env_value is None else {ENV_SWITCH: env_value}
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.skipif(not GLIBC, reason="mallopt is a glibc call")
def test_applied_once_and_described() -> None:
    assert _in_fresh_process("1") == f"{DESCRIPTION} {DESCRIPTION}"


def test_switched_off_by_environment() -> None:
    assert _in_fresh_process("0") == "None None"


def test_planned_says_what_a_worker_applies_without_applying_it() -> None:
    code = (
        "from visionbench.measure.allocator import planned, malloc_setting\n"
        "import visionbench.dissect\n"  # importing the library changes nothing either
        "print(planned(), '|', malloc_setting())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, ENV_SWITCH: "1"}
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"{DESCRIPTION if GLIBC else None} | system default"


@pytest.mark.skipif(not GLIBC, reason="mallopt is a glibc call")
def test_recorded_in_the_environment() -> None:
    env = capture_environment()
    assert env.malloc == DESCRIPTION == tune_malloc() == malloc_setting()
