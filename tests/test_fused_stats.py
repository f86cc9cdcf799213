"""The fused one-pass statistics kernel: built once, cached, switchable off, exact counts against numpy."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from visionbench.dissect.fused_stats import ENV_SWITCH, fused_stats, load_kernel

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


@needs_kernel
def test_split_across_threads_gives_the_same_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    x = torch.randn(100_003)
    x[::13] = 0.0
    monkeypatch.setattr("visionbench.dissect.fused_stats.PARALLEL_AT", 1 << 40)
    whole = fused_stats(x, 1e-6, kernel)  # type: ignore[arg-type]
    monkeypatch.setattr("visionbench.dissect.fused_stats.PARALLEL_AT", 1000)  # split on any team size
    split = fused_stats(x, 1e-6, kernel)  # type: ignore[arg-type]
    assert split[:3] == whole[:3] and split[5:] == whole[5:]
    assert split[3] == pytest.approx(whole[3], abs=1e-3) and split[4] == pytest.approx(whole[4], rel=1e-6)
    x[50_000] = float("nan")  # a NaN inside one part reaches the caller through the sum
    s = fused_stats(x, 1e-6, kernel)[3]  # type: ignore[arg-type]
    assert s != s
    x[0] = float("nan")  # and a NaN that opens a part, which min/max carry: never lost in combining the parts
    mn, mx = fused_stats(x, 1e-6, kernel)[:2]  # type: ignore[arg-type]
    assert mn != mn and mx != mx


@needs_kernel
def test_the_kernel_shares_torchs_openmp_runtime() -> None:
    from visionbench.dissect.ckernels import loaded_libraries
    from visionbench.dissect.fused_stats import OPENMP_RUNTIME

    assert len(loaded_libraries(OPENMP_RUNTIME)) <= 1  # never a second runtime with its own spinning threads
