"""The fused one-pass statistics kernel: built once, cached, switchable off, exact counts against numpy."""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from visionbench.dissect.fused_stats import ENV_SWITCH, FLAGS, build_key, fused_stats, host_cpu, load_kernel

kernel = load_kernel()
needs_kernel = pytest.mark.skipif(kernel is None, reason="no C compiler: stats fall back to torch kernels")


@needs_kernel
@pytest.mark.parametrize("n", [1, 15, 16, 17, 4095, 4097, (1 << 21) + 3])  # lanes and blocks
def test_matches_numpy(n: int) -> None:
    rng = np.random.default_rng(n)
    x = (rng.standard_normal(n) * 3).astype(np.float32)
    x[::7] = 0.0
    x[1::11] = -4e-7
    mn, mx, shift, s, ss, zeros, near = fused_stats(torch.from_numpy(x), 1e-6, kernel)  # type: ignore[arg-type]
    assert shift == float(x[0])
    d = (x - x[0]).astype(np.float64)  # float32 subtraction, as in the kernel
    assert (mn, mx) == (float(x.min()), float(x.max()))
    # float32 within 4096-value blocks: the error scales with the sum of magnitudes, not with a cancelling total
    assert s == pytest.approx(d.sum(), abs=1e-6 * np.abs(d).sum() + 1e-6)
    assert ss == pytest.approx((d * d).sum(), rel=1e-5)
    assert zeros == (x == 0).sum() and near == (np.abs(x) < np.float32(1e-6)).sum()


@needs_kernel
def test_shifted_sums_keep_the_spread_of_an_offset_tensor() -> None:
    """A mean 10^4 times the spread: raw float32 sums of squares lose every digit of the variance, sums of
    x - x[0] keep them, so no second centred pass is needed."""
    rng = np.random.default_rng(0)
    x = (1000.0 + 0.1 * rng.standard_normal(1 << 18)).astype(np.float32)
    _, _, shift, s, ss, _, _ = fused_stats(torch.from_numpy(x), 1e-6, kernel)  # type: ignore[arg-type]
    n = x.size
    mean, var = shift + s / n, ss / n - (s / n) ** 2
    assert mean == pytest.approx(x.astype(np.float64).mean(), rel=1e-9)
    assert var == pytest.approx(x.astype(np.float64).var(), rel=1e-4)


@needs_kernel
def test_non_finite_values_reach_the_caller() -> None:
    x = torch.tensor([1.0, float("nan"), 2.0] * 10)
    s = fused_stats(x, 1e-6, kernel)[3]  # type: ignore[arg-type]
    assert s != s  # NaN sum: StatsEngine then takes the exact masked path
    y = torch.tensor([1.0, float("inf")] * 10)
    assert fused_stats(y, 1e-6, kernel)[3] == float("inf")  # type: ignore[arg-type]
    z = torch.tensor([float("inf"), 1.0] * 10)
    assert not math.isfinite(fused_stats(z, 1e-6, kernel)[2])  # type: ignore[arg-type]  # an inf shift
    assert fused_stats(z, 1e-6, kernel)[3] != fused_stats(z, 1e-6, kernel)[3]  # type: ignore[arg-type]  # inf - inf  # type: ignore[arg-type]


def test_switched_off_by_environment() -> None:
    code = "from visionbench.dissect.fused_stats import load_kernel; print(load_kernel())"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, ENV_SWITCH: "0"}, capture_output=True,
                         text=True, check=True)  # fmt: skip
    assert out.stdout.strip() == "None"


def test_the_build_key_changes_with_the_cpu_compiler_and_flags() -> None:
    """A home folder shared between hosts: a build for one CPU's flags is never the file another CPU loads."""
    cc = shutil.which("cc") or "cc"
    base = build_key(cc, FLAGS, "model name: EPYC\nflags: sse2 avx2")
    assert base == build_key(cc, FLAGS, "model name: EPYC\nflags: sse2 avx2")
    assert base != build_key(cc, FLAGS, "model name: EPYC\nflags: sse2 avx2 avx512f")
    assert base != build_key(cc, FLAGS, "model name: Xeon\nflags: sse2 avx2")
    assert base != build_key(cc, (*FLAGS, "-march=native"), "model name: EPYC\nflags: sse2 avx2")
    assert base != build_key("/nonexistent/cc", FLAGS, "model name: EPYC\nflags: sse2 avx2")


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="reads /proc/cpuinfo")
def test_host_cpu_names_the_feature_flags() -> None:
    assert re.search(r"^(flags|features)\s*:", host_cpu(), re.M | re.I)


@needs_kernel
def test_another_cpu_builds_its_own_kernel(tmp_path: Path) -> None:
    code = (
        "import sys, visionbench.dissect.fused_stats as f\n"
        "f.host_cpu = lambda: sys.argv[1]\n"
        "k = f.load_kernel()\n"
        "print(k is not None)\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    for cpu in ("flags: avx2", "flags: avx2 avx512f"):
        out = subprocess.run([sys.executable, "-c", code, cpu], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "True"
    built = sorted(p.name for p in (tmp_path / "visionbench" / "kernels").glob("stats-*.so"))
    assert len(built) == 2  # one build per CPU (the first variant of each), none shared
