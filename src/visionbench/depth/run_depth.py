"""The `visionbench depth` pipeline: images -> depth model -> pictures, raw depth, point clouds, sidecars.

Stages overlap so the model stays busy: worker threads decode (loader.stream_images), batches of one
shape are formed (loader.group_batches), a background thread runs the model's preprocessing
(loader.prefetch), the main thread runs forward + postprocess (predict.forward_depth, which gives DepthPro
the known focal lengths), and a writer thread encodes and writes
files. A file that fails anywhere is recorded and skipped; the run goes on, except when the filesystem
refuses a write (disk full, read-only, no permission): then the run stops at once, keeps what it wrote
and says where its summary went. The summary (OUT/depth_run.json) is written when the run starts, and
again when it ends however it ends (done, Ctrl-C, an error); each run's failures go to their own file.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from visionbench.depth.io import colour_table
from visionbench.depth.loader import LoadedImage, group_batches, prefetch, stream_images
from visionbench.depth.options import DepthOptions
from visionbench.depth.outputs import (
    OutputPlan,
    OutputWriteError,
    no_images_message,
    scan_inputs,
    weights_record,
    write_image_outputs,
)
from visionbench.depth.predict import batch_key, depth_kind, forward_depth
from visionbench.depth.progress import rate_bar
from visionbench.depth.sidecar import image_sidecar, known_focal_px
from visionbench.depth.summary import DepthRunSummary, Failure, previous_runs, write_run_summary
from visionbench.errors import BadInputError
from visionbench.files import check_output_dir
from visionbench.models.base import Batch, Prediction, VisionModel

log = logging.getLogger("visionbench")


def writer_threads() -> int:
    """PNG encoding (zlib) releases the GIL: one writer per two cores, up to 4, leaves the rest to the model."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def run_depth(
    inputs: list[str | Path], opts: DepthOptions, *, show_progress: bool = True, model: VisionModel | None = None
) -> DepthRunSummary:
    """Run a depth model over images, folders and path lists; write outputs under `opts.out`.

    `model` reuses an already built model (then opts.model, weights, device, dtype, input_size are ignored).
    Raises OutputWriteError (after writing the summary) when the filesystem refuses a write midway.
    """
    from visionbench.models.registry import create_model, resolve_device

    if not inputs:
        raise BadInputError("no input given: pass images, folders or a .txt list of paths")
    colour_table(opts.cmap)  # an unknown colour map fails before any work
    scan = scan_inputs(inputs, opts.out)
    if not scan.plans:
        raise BadInputError(no_images_message(inputs, scan, opts.out))
    if scan.excluded:
        log.info("left out %d file(s) inside the output folder %s", len(scan.excluded), opts.out)
    out = check_output_dir(opts.out)
    previous = previous_runs(out)
    if model is None:
        model = create_model(
            opts.model, weights=opts.weights, device=str(resolve_device(opts.device)), dtype=opts.dtype,
            input_size=opts.input_size, seed=opts.seed,
        )  # fmt: skip
    kind = depth_kind(model.name, model.card.task, ply=opts.ply)
    summary = DepthRunSummary(model=model.name, weights_mode=model.weights.mode, out=str(out),
                              weights_warning=model.weights.warning, weights=weights_record(model),
                              total=len(scan.plans), excluded_in_out=len(scan.excluded),
                              unreadable_paths=len(scan.problems),
                              failures=[Failure(path=str(p), error=f"{p}: {why}")
                                        for p, why in scan.problems])  # fmt: skip
    write_run_summary(out, summary, opts, previous)  # a run killed outright still leaves a record that says running
    file_kw = dict(kind=kind, side_by_side=opts.side_by_side, ply=opts.ply, raw=opts.raw)
    todo = [p for p in scan.plans if not (opts.resume and p.complete(**file_kw))]
    summary.skipped = len(scan.plans) - len(todo)
    t0 = time.perf_counter()
    try:
        with rate_bar(show_progress, len(todo), "depth") as advance:
            _pipeline(model, todo, opts, kind, summary, advance)
    except BaseException as exc:
        summary.status = {OutputWriteError: "stopped", KeyboardInterrupt: "interrupted"}.get(type(exc), "failed")
        summary.error = str(exc) or type(exc).__name__
        where = _finish_run(out, summary, opts, previous, t0)
        if isinstance(exc, OutputWriteError):
            written = f"{summary.done} of {summary.total - summary.skipped} image(s) written"
            raise OutputWriteError(f"{exc}; stopped: {written}, kept; run summary in {where}") from None
        raise
    summary.status = "completed"
    _finish_run(out, summary, opts, previous, t0)
    return summary


def _finish_run(out: Path, summary: DepthRunSummary, opts: DepthOptions, previous: list[dict[str, Any]],
                t0: float) -> str:  # fmt: skip
    summary.seconds = time.perf_counter() - t0
    summary.images_per_s = summary.done / summary.seconds if summary.seconds > 0 else 0.0
    summary.not_attempted = max(0, summary.total - summary.skipped - summary.done - summary.failed)
    return write_run_summary(out, summary, opts, previous)


def _pipeline(
    model: VisionModel, todo: list[OutputPlan], opts: DepthOptions, kind: str, summary: DepthRunSummary, advance: Any
) -> None:
    plan_of = {i: p for i, p in enumerate(todo)}
    stream = stream_images([p.source for p in todo], workers=opts.workers, read_exif=not opts.ignore_exif)
    batches = group_batches(stream, opts.batch_size, key=batch_key(model))

    def fail(item: LoadedImage, error: str) -> None:
        summary.failed += 1
        summary.failures.append(Failure(path=str(item.path), error=error))
        log.warning("skipped %s", error)
        advance(1)

    def prepare(items: list[LoadedImage]) -> tuple[list[LoadedImage], Batch | None, str | None]:
        if items[0].error is not None:
            return items, None, items[0].error
        try:
            return items, model.preprocess([it.image for it in items]), None  # type: ignore[misc]
        except Exception as exc:  # noqa: BLE001 - one odd image must not end the run
            return items, None, f"preprocessing failed ({type(exc).__name__}: {exc})"

    pending: list[Future[None]] = []
    with ThreadPoolExecutor(max_workers=writer_threads(), thread_name_prefix="vb-write") as writer:
        cpu = model.device.type == "cpu"
        try:
            for items, batch, error in prefetch(batches, prepare, depth=2, torch_threads=1 if cpu else None):
                if batch is None:
                    for it in items:
                        fail(it, error if it.error else f"{it.path}: {error}")  # type: ignore[arg-type]
                    continue
                t = time.perf_counter()
                preds, predicted = forward_depth(model, batch, [known_focal_px(it, opts) for it in items])
                per_image_ms = (time.perf_counter() - t) * 1e3 / len(items)
                for it, pred, f in zip(items, preds, predicted, strict=True):
                    plan = plan_of[it.index]
                    pending.append(writer.submit(write_prediction, model, it, pred, f, plan, opts, kind, per_image_ms))
                pending = _collect(pending, summary, fail, limit=2 * opts.batch_size + 4, advance=advance)
            _collect(pending, summary, fail, limit=0, advance=advance)
        except BaseException:
            _drain(pending, summary, fail, advance)  # writes already under way are counted before the summary
            raise


def _count(fut: Future[None], summary: DepthRunSummary, fail: Any, advance: Any) -> ImageWriteError | None:
    exc = fut.exception()
    if exc is None:
        summary.done += 1
        advance(1)
        return None
    assert isinstance(exc, ImageWriteError)  # write_prediction wraps every failure
    fail(exc.item, str(exc))
    return exc


def _collect(pending: list[Future[None]], summary: DepthRunSummary, fail: Any, limit: int,
             advance: Any) -> list[Future[None]]:  # fmt: skip
    """Wait for the oldest writes until at most `limit` remain (bounded memory); count their outcome.

    The first write the filesystem refused ends the run: it raises OutputWriteError (the caller drains
    the rest), since every later image would fail the same way after its decode and forward.
    """
    while len(pending) > limit or (pending and pending[0].done()):
        exc = _count(pending.pop(0), summary, fail, advance)
        if exc is not None and exc.fatal:
            raise OutputWriteError(str(exc))
    return pending


def _drain(pending: list[Future[None]], summary: DepthRunSummary, fail: Any, advance: Any) -> None:
    """Cancel writes not started; wait for and count those running."""
    for fut in pending:
        if not fut.cancel():
            _count(fut, summary, fail, advance)
    pending.clear()


class ImageWriteError(Exception):
    """Writing one image's outputs failed; `fatal` when the filesystem refused (OSError), not the data."""

    def __init__(self, item: LoadedImage, message: str, fatal: bool = False) -> None:
        super().__init__(message)
        self.item, self.fatal = item, fatal


def write_prediction(model: VisionModel, item: LoadedImage, pred: Prediction, predicted_focal_px: float | None,
                     plan: OutputPlan, opts: DepthOptions, kind: str, runtime_ms: float) -> None:  # fmt: skip
    """Every output file of one image's prediction (the code each engine calls); ImageWriteError on failure."""
    try:
        depth, photo = pred.depth, item.image
        assert photo is not None and depth is not None
        sidecar = image_sidecar(model, item, depth, predicted_focal_px, opts, runtime_ms)
        write_image_outputs(plan, photo, depth, kind=kind, focal_px=sidecar.get("focal_px"),
                            cmap=opts.cmap, side_by_side=opts.side_by_side, ply=opts.ply, ply_stride=opts.ply_stride,
                            sidecar=sidecar, raw=opts.raw)  # fmt: skip
    except OSError as exc:  # disk full, read-only, no permission, a file where a folder should be
        where = exc.filename or plan.base.parent
        message = f"{item.path}: writing outputs failed: {where}: {exc.strerror or type(exc).__name__}"
        raise ImageWriteError(item, message, fatal=True) from exc
    except Exception as exc:  # noqa: BLE001 - reported as this image's failure
        raise ImageWriteError(item, f"{item.path}: writing outputs failed ({type(exc).__name__}: {exc})") from exc
    finally:
        item.image = None  # free the decoded photo as soon as its files are written
