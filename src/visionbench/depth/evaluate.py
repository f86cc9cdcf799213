"""`visionbench eval`: a depth model against ground truth, per image and in summary, as records.

Metric models are scored as they predict. Relative models (inverse depth up to scale and shift) are
first aligned per image by least squares in inverse depth; the result says so in `alignment`.
The prediction is resized (bilinear) to the ground truth's size; only valid pixels count.
"""

from __future__ import annotations

import csv
import io
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, model_validator

from visionbench.depth.boundary import si_boundary_f1
from visionbench.depth.datasets import Dataset, load_dataset
from visionbench.depth.io import write_bytes, write_json
from visionbench.depth.metrics import (
    METRIC_NAMES,
    align_inverse_depth,
    depth_metrics,
    focal_error_pct,
    resize_to,
    summarise,
    valid_mask,
)
from visionbench.depth.outputs import OutputWriteError, weights_record
from visionbench.depth.predict import depth_kind, forward_depth
from visionbench.depth.summary import ModelFacts
from visionbench.errors import BadInputError, VisionbenchError
from visionbench.models.base import VisionModel

ALIGN_NONE = "none: metric depth scored as predicted"
ALIGN_LSQ = "least-squares scale and shift in inverse depth, per image (relative model)"
SUMMARY_KEYS = [*METRIC_NAMES, "boundary_f1", "focal_error_pct"]


class EvalOptions(BaseModel):
    model: str = Field("depthpro", description="Depth model to evaluate.")
    dataset: str = Field("middlebury-motorcycle", description="Built-in name or a folder (images/, depth/).")
    weights: str = "auto"
    device: str = "auto"
    dtype: str = "float32"
    input_size: int | None = None
    seed: int = 0
    depth_scale: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="Ground truth metres per stored unit (npy 1, png 0.001)."
    )
    min_depth: float = Field(1e-3, gt=0, allow_inf_nan=False, description="Ground truth below this (m) is not scored.")
    max_depth: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="Ground truth above this (m) is not scored."
    )
    use_known_focal: bool = Field(False, description="DepthPro: make depth with the dataset's focal length.")

    @model_validator(mode="after")
    def _range(self) -> EvalOptions:
        if self.max_depth is not None and self.max_depth <= self.min_depth:
            raise ValueError(f"--max-depth {self.max_depth} must be above --min-depth {self.min_depth}")
        return self


class EvalRow(BaseModel):
    """One image: the metrics, or the error that kept it out of the summary."""

    name: str
    error: str | None = None
    image_width: int | None = None
    image_height: int | None = None
    gt_width: int | None = None
    gt_height: int | None = None
    valid_pixels: int | None = None
    abs_rel: float | None = None
    sq_rel: float | None = None
    rmse: float | None = None
    rmse_log: float | None = None
    log10: float | None = None
    silog_eigen: float | None = None
    silog_kitti: float | None = None
    delta1: float | None = None
    delta2: float | None = None
    delta3: float | None = None
    boundary_f1: float | None = None
    focal_px_pred: float | None = None
    focal_px_true: float | None = None
    focal_error_pct: float | None = None
    align_scale: float | None = None
    align_shift: float | None = None
    runtime_ms: float | None = None


class EvalResult(ModelFacts):
    """What `eval` scored: the model, the dataset, one row per image and the summary over them."""

    dataset: str
    depth_kind: str
    alignment: str
    min_depth: float
    max_depth: float | None
    images: int
    failed: int
    interrupted: bool = Field(False, description="Ctrl-C ended the run: the rows scored before it are all here.")
    not_attempted: int = Field(0, description="Images of the dataset not reached (after Ctrl-C).")
    skipped_without_gt: list[str] = Field(default_factory=list)
    summary: dict[str, float | None]
    rows: list[EvalRow]


def score_prediction(
    pred_depth: np.ndarray,
    gt: np.ndarray,
    kind: str,
    *,
    min_depth: float = 1e-3,
    max_depth: float | None = None,
) -> dict[str, Any]:
    """Metrics of one prediction (metres, or relative inverse depth) against ground truth (metres, inf unknown)."""
    pred = resize_to(pred_depth, gt.shape)
    out: dict[str, Any] = {}
    if kind != "metric":
        mask = valid_mask(gt, None, min_depth, max_depth) & np.isfinite(pred)
        pred, out["align_scale"], out["align_shift"] = align_inverse_depth(pred, gt, mask, max_depth)
    mask = valid_mask(gt, pred, min_depth, max_depth)
    if not mask.any():
        raise BadInputError("no valid ground-truth pixel (finite, positive, inside the depth range) to score")
    out.update(depth_metrics(pred, gt, mask))
    out["boundary_f1"] = si_boundary_f1(pred, gt, mask)
    out["valid_pixels"] = int(mask.sum())
    return out


def evaluate_model(model: VisionModel, dataset: Dataset, opts: EvalOptions, progress: Any = None) -> EvalResult:
    """Score `model` on every sample of `dataset`; a sample that fails is a row with `error`, never the end."""
    kind = depth_kind(model.name, model.card.task, command="eval")
    rows: list[EvalRow] = []
    interrupted = False
    try:
        for ref in dataset:
            row = EvalRow(name=ref.name)
            try:
                sample = ref.load()
                row.image_width, row.image_height = sample.image.size
                row.gt_height, row.gt_width = sample.depth_m.shape
                t = time.perf_counter()
                known = [sample.focal_px] if opts.use_known_focal and sample.focal_px else None
                preds, predicted = forward_depth(model, model.preprocess([sample.image]), known)
                row.runtime_ms = (time.perf_counter() - t) * 1e3
                depth = preds[0].depth
                assert depth is not None
                row.focal_px_pred, row.focal_px_true = predicted[0], sample.focal_px
                row.focal_error_pct = focal_error_pct(predicted[0], sample.focal_px)
                for k, v in score_prediction(depth, sample.depth_m, kind, min_depth=opts.min_depth,
                                             max_depth=opts.max_depth).items():  # fmt: skip
                    setattr(row, k, v)
            except VisionbenchError as exc:
                row.error = str(exc)
            except (OSError, ValueError) as exc:
                row.error = f"{type(exc).__name__}: {exc}"
            rows.append(row)
            if progress:
                progress(1)
    except KeyboardInterrupt:  # Ctrl-C: the rows scored so far are the result, marked as such
        interrupted = True
    ok = [r.model_dump() for r in rows if r.error is None]
    return EvalResult(
        model=model.name, weights_mode=model.weights.mode, weights_warning=model.weights.warning,
        weights=weights_record(model),
        dataset=dataset.name, depth_kind=kind, alignment=ALIGN_NONE if kind == "metric" else ALIGN_LSQ,
        min_depth=opts.min_depth, max_depth=opts.max_depth, images=len(rows), failed=len(rows) - len(ok),
        interrupted=interrupted, not_attempted=len(dataset) - len(rows),
        skipped_without_gt=dataset.skipped or [], summary=summarise(ok, SUMMARY_KEYS), rows=rows,
    )  # fmt: skip


def evaluate(opts: EvalOptions, progress: Any = None) -> EvalResult:
    """Build the model, load the dataset, score (the library entry point behind `visionbench eval`)."""
    from visionbench.models.registry import create_model, resolve_device

    dataset = load_dataset(opts.dataset, opts.depth_scale)
    model = create_model(opts.model, weights=opts.weights, device=str(resolve_device(opts.device)), dtype=opts.dtype,
                         input_size=opts.input_size, seed=opts.seed)  # fmt: skip
    return evaluate_model(model, dataset, opts, progress)


def rows_csv(result: EvalResult) -> str:
    """Per-image rows then a `MEAN` row, one header; empty cells for unknown values."""
    buf = io.StringIO()
    fields = list(EvalRow.model_fields)
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for r in result.rows:
        w.writerow({k: _cell(v) for k, v in r.model_dump().items()})
    w.writerow({"name": "MEAN", **{k: _cell(v) for k, v in result.summary.items()}})
    return buf.getvalue()


def _cell(v: Any) -> Any:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return f"{v:.6g}" if isinstance(v, float) else v


def write_eval(result: EvalResult, out: Path) -> dict[str, Path]:
    """eval.json (everything) and eval.csv (rows + mean) under `out`, written atomically.

    OutputWriteError when the filesystem refuses: the caller has the result and shows it first.
    """
    out = Path(out)
    try:
        return {
            "json": write_json(out / "eval.json", result.model_dump(mode="json")),
            "csv": write_bytes(out / "eval.csv", rows_csv(result).encode()),
        }
    except OSError as exc:
        where = exc.filename or out
        raise OutputWriteError(
            f"writing the eval results failed: {where}: {exc.strerror or type(exc).__name__} "
            "(the scores are printed above)"
        ) from None
