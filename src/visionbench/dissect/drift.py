"""Precision drift: the same input and weights in float32 and in bfloat16/float16, compared layer by layer.

The model's float32 weights are restored afterwards. How the comparison works is METHOD (layers.json
records it).
"""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from visionbench.dissect.hooks import attached, flatten
from visionbench.dissect.records import DissectOptions
from visionbench.measure.accuracy import mask_iou, match_boxes
from visionbench.models.base import Batch, VisionModel
from visionbench.models.registry import resolve_dtype

METHOD = (
    "Memory stays bounded: the float32 pass keeps, per selected output, only its full norm, its largest |value| "
    "and a fixed random sample of `drift_sample` elements (all of them when the output is smaller); the "
    "low-precision pass then compares against those. Norms and overflow checks use the full tensors; relative "
    "error, max |difference| and cosine similarity use the sample (exact for outputs up to the sample size)."
)
JUMP_FACTOR = 3.0  # an error this many times the median of the layers before it ...
JUMP_MIN_ERROR = 1e-2  # ... and above 1 % is a jump


def sample_indices(n: int, k: int, seed: int, position: int, device: torch.device) -> torch.Tensor | None:
    """The same k element indices for output `position` in both passes (None: compare every element)."""
    if n <= k:
        return None
    gen = torch.Generator().manual_seed(seed * 1_000_003 + position)
    return torch.randint(0, n, (k,), generator=gen).to(device)


class DriftReference:
    """Float32 pass observer: per floating output, its norm, largest |value| and a fixed sample (on the device)."""

    def __init__(self, sample: int, seed: int) -> None:
        self.sample, self.seed = sample, seed
        self.items: list[dict[str, Any]] = []

    def observe(self, _pos: int, name: str, key: str, tensor: torch.Tensor) -> None:
        if not tensor.is_floating_point():
            return
        x = tensor.detach().float().reshape(-1)
        idx = sample_indices(x.numel(), self.sample, self.seed, len(self.items), x.device)
        self.items.append({
            "name": name, "output": key, "shape": list(tensor.shape), "numel": x.numel(),
            "norm": torch.linalg.vector_norm(x), "absmax": x.abs().amax() if x.numel() else x.new_zeros(()),
            "sample": (x if idx is None else x[idx]).clone(),
        })  # fmt: skip


def compare_precision(
    model: VisionModel, batch: Batch, selected: list[tuple[str, nn.Module]], reference: DriftReference,
    out32: Any, dtype_name: str, folder: Path, options: DissectOptions,
) -> dict[str, Any]:  # fmt: skip
    """Run once more in `dtype_name`; per layer and final-output drift; writes drift.png; returns the JSON part."""
    from visionbench.dissect.plots import drift_plot

    dtype = resolve_dtype(dtype_name)
    low_batch = Batch({k: v.to(dtype) if v.is_floating_point() else v for k, v in batch.inputs.items()},
                      batch.sizes, batch.extras)  # fmt: skip
    items, pending, counter = reference.items, [], [0]

    def hook(name: str, _module: nn.Module, _inputs: Any, output: Any) -> None:
        for _key, value in flatten(output):
            if not isinstance(value, torch.Tensor) or not value.is_floating_point():
                continue
            i = counter[0]
            counter[0] += 1
            if i >= len(items) or items[i]["name"] != name or items[i]["shape"] != list(value.shape):
                pending.append(None)  # the low-precision run took another path: not comparable
                continue
            ref = items[i]
            x = value.detach().float().reshape(-1)
            idx = sample_indices(x.numel(), reference.sample, reference.seed, i, x.device)
            s, r = (x if idx is None else x[idx]), ref["sample"]
            d = s - r
            finite = torch.isfinite(d)
            d0 = torch.where(finite, d, torch.zeros_like(d))
            s0, norm = torch.nan_to_num(s), torch.linalg.vector_norm
            pending.append(torch.stack([
                norm(d0), norm(r), d0.abs().amax() if d.numel() else d.new_zeros(()), torch.dot(s0, r), norm(s0),
                norm(torch.nan_to_num(x)), torch.isnan(x).sum().float(), torch.isinf(x).sum().float(),
                ref["norm"], ref["absmax"], (~finite).sum().float(),
            ]))  # fmt: skip

    with _weights_in(model.module, dtype), attached(selected, hook), torch.inference_mode():
        out_low = model.forward(low_batch)
    dmax = torch.finfo(dtype).max
    rows = []
    fetched = torch.stack([p for p in pending if p is not None]).cpu().double().tolist() if any(
        p is not None for p in pending) else []  # fmt: skip
    it = iter(fetched)
    for i, p in enumerate(pending):
        ref = items[i] if i < len(items) else {"name": "?", "output": "", "shape": None, "numel": 0}
        row: dict[str, Any] = {"position": i, "name": ref["name"], "output": ref["output"], "shape": ref["shape"]}
        if p is None:
            empty = dict.fromkeys(("relative_error", "max_abs_diff", "cosine", "norm_ratio"))
            rows.append({**row, **empty, "overflow": False, "nonfinite": False, "note": "not comparable (other path)"})
            continue
        dn, rn, mad, dot, sn, full_low, nan, inf, full32, absmax32, bad = next(it)
        row.update(
            relative_error=dn / rn if rn > 0 else (0.0 if dn == 0 else None),
            max_abs_diff=mad,
            cosine=dot / (sn * rn) if sn > 0 and rn > 0 else None,
            norm_ratio=full_low / full32 if full32 > 0 else None,
            fp32_max_abs=absmax32,
            overflow=bool(absmax32 > dmax or inf > 0),
            nonfinite=bool(nan + inf > 0),
            nan_count=int(nan),
            inf_count=int(inf),
            exact=ref["numel"] <= reference.sample,
        )
        rows.append(row)
    jump = first_jump(rows)
    plot = drift_plot(
        rows, folder / "drift.png", f"{model.name}: float32 vs {dtype_name}", jump["position"] if jump else None
    )
    final = final_drift(model, batch, out32, out_low)
    errors = [r["relative_error"] for r in rows if r["relative_error"] is not None]
    return {
        "dtype": dtype_name,
        "dtype_max": dmax,
        "sample": reference.sample,
        "method": METHOD,
        "first_jump": jump,
        "max_relative_error": max(errors) if errors else None,
        "median_relative_error": statistics.median(errors) if errors else None,
        "final_relative_error": final.get("relative_error"),
        "final": final,
        "plot": plot.name if plot else None,
        "layers": rows,
    }


def first_jump(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """First layer with overflow/NaN/Inf, else the first whose error is a jump (see JUMP_FACTOR, JUMP_MIN_ERROR)."""
    for r in rows:
        if r["overflow"] or r["nonfinite"]:
            reason = "overflow beyond the dtype's range" if r["overflow"] else "NaN/Inf in the output"
            return {"position": r["position"], "name": r["name"], "reason": reason}
    seen: list[float] = []
    for r in rows:
        e = r["relative_error"]
        if e is None:
            continue
        if seen and e > JUMP_MIN_ERROR and e > JUMP_FACTOR * statistics.median(seen):
            reason = f"relative error {e:.3g} > {JUMP_FACTOR:g}x the median before it ({statistics.median(seen):.3g})"
            return {"position": r["position"], "name": r["name"], "reason": reason}
        seen.append(e)
    return None


def _tensor_drift(a: torch.Tensor, b: torch.Tensor) -> dict[str, Any]:
    a, b = a.detach().double().reshape(-1).cpu(), b.detach().double().reshape(-1).cpu()
    d = torch.nan_to_num(b - a, nan=0.0, posinf=0.0, neginf=0.0)
    na, nb = torch.linalg.vector_norm(a).item(), torch.linalg.vector_norm(torch.nan_to_num(b)).item()
    return {
        "relative_error": torch.linalg.vector_norm(d).item() / na if na > 0 else None,
        "max_abs_diff": d.abs().max().item() if d.numel() else 0.0,
        "cosine": (torch.dot(a, torch.nan_to_num(b)).item() / (na * nb)) if na > 0 and nb > 0 else None,
        "nonfinite": int((~torch.isfinite(b)).sum()),
    }


def final_drift(model: VisionModel, batch: Batch, out32: Any, out_low: Any) -> dict[str, Any]:
    """Raw outputs compared in full, then the task's predictions (depth, boxes, masks) side by side."""
    a = {k: v for k, v in flatten(out32) if isinstance(v, torch.Tensor) and v.is_floating_point()}
    b = {k: v for k, v in flatten(out_low) if isinstance(v, torch.Tensor) and v.is_floating_point()}
    outputs = {k or "output": _tensor_drift(a[k], b[k]) for k in a if k in b and a[k].shape == b[k].shape}
    result: dict[str, Any] = {"outputs": outputs}
    first = next(iter(outputs.values()), None)
    result["relative_error"] = first["relative_error"] if first else None
    try:
        p32, plow = model.postprocess(out32, batch)[0], model.postprocess(out_low, batch)[0]
    except Exception as exc:  # noqa: BLE001 - a postprocess that cannot take the low-precision output is a finding
        result["predictions"] = {"error": f"{type(exc).__name__}: {exc}"}
        return result
    result["predictions"] = compare_predictions(p32, plow)
    return result


def compare_predictions(p32: Any, plow: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"float32": p32.summary(), "low": plow.summary()}
    if p32.depth is not None and plow.depth is not None:
        d32, dl = p32.depth.astype(np.float64), plow.depth.astype(np.float64)
        ok = np.isfinite(d32) & np.isfinite(dl) & (np.abs(d32) > 1e-9)
        out["depth_relative_error"] = float(np.linalg.norm((dl - d32)[ok]) / max(np.linalg.norm(d32[ok]), 1e-30))
        out["depth_abs_rel"] = float(np.mean(np.abs(dl - d32)[ok] / np.abs(d32[ok]))) if ok.any() else None
        if p32.fov_deg is not None and plow.fov_deg is not None:
            out["fov_deg_diff"] = plow.fov_deg - p32.fov_deg
    if p32.boxes is not None and plow.boxes is not None:
        ious, pairs = match_boxes(p32.boxes, plow.boxes)
        out.update(detections_float32=len(p32.boxes), detections_low=len(plow.boxes), matched=len(pairs),
                   mean_box_iou=float(np.mean(ious)) if ious else None)  # fmt: skip
        if p32.masks is not None and plow.masks is not None and pairs:
            m = [mask_iou(p32.masks[i], plow.masks[j]) for i, j in pairs if i < len(p32.masks) and j < len(plow.masks)]
            out["mean_mask_iou"] = float(np.mean(m)) if m else None
    return out


@contextlib.contextmanager
def _weights_in(module: nn.Module, dtype: torch.dtype) -> Iterator[None]:
    """Floating parameters and buffers in `dtype` for the block, then the very same float32 tensors again."""
    params = {id(p): (p, p.data) for p in module.parameters() if p.is_floating_point()}
    buffers = [
        (m, k, b) for m in module.modules() for k, b in m._buffers.items() if b is not None and b.is_floating_point()
    ]
    try:
        for p, data in params.values():
            p.data = data.to(dtype)
        for m, k, b in buffers:
            m._buffers[k] = b.to(dtype)
        yield
    finally:
        for p, data in params.values():
            p.data = data
        for m, k, b in buffers:
            m._buffers[k] = b
