"""Activation statistics on the device, in float32, with as few passes over memory as possible.

On CPU a fused one-pass C kernel (fused_stats.py) does the work where a compiler is available; the torch
paths below are its fallback and its reference.

Why two torch paths: on CPU every pass over an activation costs about what the layer itself cost, and some
reductions are slow there (`std_mean` is one Welford pass 50x slower than `sum`, `count_nonzero` of
floats 100x). The CPU path therefore uses only fast vectorised kernels into one reused scratch buffer:
`aminmax`, `sum`, BLAS `dot` (sum of squares; and of signs, which counts non-zeros), `hardshrink`
(zeroes |x| <= 1e-6). A tensor with NaN/Inf, or whose variance would lose precision (var << mean^2),
falls back to the exact masked path; on CPU that decision is free (no device to wait for). On CUDA/MPS
the exact masked path always runs, queued without any synchronisation, each call's values stacked into
one small tensor and fetched with a single copy at the end of the pass.
"""

from __future__ import annotations

import math

import torch

from visionbench.dissect.fused_stats import fused_stats, load_kernel
from visionbench.layers_json import NEAR_ZERO

# order of the values of one output; counts are exact integers held in float64
FIELDS = ("numel", "min", "max", "mean", "std", "zeros", "near_zero", "nan", "inf")
COUNT_CHUNK = 1 << 24  # float32 counts integers exactly up to here: bigger outputs are counted in chunks
_F32 = torch.float32


class StatsEngine:
    """Computes one output's statistics now and hands all of them back at the end of the pass."""

    def __init__(self, device: torch.device, fused: bool = True) -> None:
        self.device = device
        self.fast_cpu = device.type == "cpu"
        self.kernel = load_kernel() if fused and self.fast_cpu else None
        self._scratch: torch.Tensor | None = None
        self._values: list[list[float] | torch.Tensor] = []

    def add(self, tensor: torch.Tensor) -> int:
        """Statistics of `tensor` (any dtype, any device); returns the slot to read after `fetch`."""
        n = tensor.numel()
        if self.kernel is not None and n and tensor.is_cpu and tensor.dtype is _F32 and tensor.is_contiguous():
            # the common case, with nothing in between: it runs once per recorded output inside the pass
            self._values.append(self._fused(tensor, n))
            return len(self._values) - 1
        x = tensor.detach()
        if x.dtype != torch.float32:
            x = x.float()
        x = x.reshape(-1)
        if self.fast_cpu and x.device.type == "cpu":
            values: list[float] | torch.Tensor = self._cpu(x)
        else:
            values = exact_stats(x)
        self._values.append(values)
        return len(self._values) - 1

    def fetch(self) -> list[dict[str, float]]:
        """Every slot's values as dicts; device values come back in one copy."""
        on_device = [i for i, v in enumerate(self._values) if isinstance(v, torch.Tensor)]
        rows: list[list[float]] = [v if isinstance(v, list) else [] for v in self._values]
        if on_device:
            stacked = torch.stack([self._values[i] for i in on_device]).cpu().tolist()  # type: ignore[misc]
            for i, row in zip(on_device, stacked, strict=True):
                rows[i] = row
        return [dict(zip(FIELDS, row, strict=True)) for row in rows]

    @property
    def method(self) -> str:
        """Which path computes the statistics, for layers.json."""
        if self.kernel is not None:
            return "fused one-pass C kernel (float32 lanes per 4096-value block, float64 across blocks)"
        if self.fast_cpu:
            return "torch CPU kernels: aminmax, sum, dot, sign/hardshrink counts"
        return "torch masked reductions on the device, fetched in one copy"

    def _buffer(self, n: int) -> torch.Tensor:
        if self._scratch is None or self._scratch.numel() < n:
            self._scratch = torch.empty(n, dtype=torch.float32)
        return self._scratch[:n]

    def _counts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Non-zeros and |x| > 1e-6 of at most COUNT_CHUNK elements: signs into the scratch buffer, then dot."""
        buf = self._buffer(x.numel())
        torch.sign(x, out=buf)
        nonzero = torch.dot(buf, buf)
        torch.hardshrink(x, NEAR_ZERO, out=buf)
        buf.sign_()
        return nonzero, torch.dot(buf, buf)

    def _cpu(self, x: torch.Tensor) -> list[float]:
        n = x.numel()
        if n == 0:
            return [0.0, math.nan, math.nan, math.nan, math.nan, 0.0, 0.0, 0.0, 0.0]
        if not x.is_contiguous():
            x = x.contiguous()
        if self.kernel is not None:
            return self._fused(x, n)
        lo, hi = torch.aminmax(x)
        mn, mx, s, ss = torch.stack([lo, hi, x.sum(), torch.dot(x, x)]).tolist()
        nz = fr = 0.0
        for start in range(0, n, COUNT_CHUNK):  # counts chunk by chunk: the scratch buffer bounded, every count exact
            a, b = torch.stack(self._counts(x[start : start + COUNT_CHUNK])).tolist()
            nz, fr = nz + a, fr + b
        return self._finish(x, n, mn, mx, 0.0, s, ss, nz, fr)

    def _fused(self, x: torch.Tensor, n: int) -> list[float]:
        """The C kernel's sums of a non-empty contiguous float32 CPU tensor (any shape), finished."""
        mn, mx, shift, s, ss, zeros, near_n = fused_stats(x, NEAR_ZERO, self.kernel)
        return self._finish(x, n, mn, mx, shift, s, ss, n - zeros, n - near_n)

    def _finish(self, x: torch.Tensor, n: int, mn: float, mx: float, shift: float, s: float, ss: float,
                nz: float, fr: float) -> list[float]:  # fmt: skip
        """Mean and std from sums of x - shift (exact path on NaN/Inf, centred pass on cancellation); `x` any
        shape."""
        if not math.isfinite(mn + mx + shift + s + ss):  # NaN/Inf in any (the counts are always finite)
            return exact_stats(x).tolist()
        offset = s / n  # the mean of x - shift
        var = ss / n - offset * offset
        mean = shift + offset
        if var < 1e-3 * offset * offset:  # cancellation would eat the digits: centre first (rare when shifted)
            x = x.reshape(-1)
            buf = self._buffer(min(n, COUNT_CHUNK))
            correction = squares2 = 0.0  # corrected two-pass: also removes the rounding error of `mean` itself
            for start in range(0, n, COUNT_CHUNK):
                part = buf[: min(COUNT_CHUNK, n - start)]
                torch.sub(x[start : start + COUNT_CHUNK], mean, out=part)
                correction += float(part.sum(dtype=torch.float64))
                squares2 += float(torch.dot(part, part))
            correction /= n
            var = squares2 / n - correction * correction
            mean += correction
        near = n - fr
        # hardshrink keeps |x| > 1e-6 (its threshold compares in float32); values exactly at the threshold are
        # counted as near zero here, as with numpy's |x| < float32(1e-6) up to that single representable value
        return [float(n), mn, mx, mean, math.sqrt(max(var, 0.0)), float(n - nz), float(near), 0.0, 0.0]


def exact_stats(x: torch.Tensor) -> torch.Tensor:
    """Masked statistics that stay meaningful with NaN/Inf (over finite values), queued without a sync."""
    n = x.numel()
    acc = torch.float64 if x.device.type != "mps" else torch.float32
    if n == 0:
        return torch.tensor(
            [0.0, math.nan, math.nan, math.nan, math.nan, 0.0, 0.0, 0.0, 0.0], dtype=acc, device=x.device
        )
    finite = torch.isfinite(x)
    n_finite = finite.sum().to(acc)
    nan = torch.isnan(x).sum().to(acc)
    inf = n - n_finite - nan
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    xf = torch.where(finite, x, zero)
    lo = torch.where(finite, x, torch.full_like(zero, math.inf)).amin().to(acc)
    hi = torch.where(finite, x, torch.full_like(zero, -math.inf)).amax().to(acc)
    mean = xf.sum(dtype=acc) / n_finite
    centred = torch.where(finite, x - mean.to(x.dtype), zero)
    var = (centred * centred).sum(dtype=acc) / n_finite
    zeros = (x == 0).sum().to(acc)
    near = (x.abs() < NEAR_ZERO).sum().to(acc)
    none = n_finite == 0
    nan_t = torch.full_like(mean, math.nan)
    lo, hi = torch.where(none, nan_t, lo), torch.where(none, nan_t, hi)
    mean = torch.where(none, nan_t, mean)
    var = torch.where(none, nan_t, var)
    numel = torch.full_like(mean, float(n))
    return torch.stack([numel, lo, hi, mean, var.sqrt(), zeros, near, nan, inf])
