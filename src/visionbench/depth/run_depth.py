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

import json
import logging
import os
import secrets
import sys
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from visionbench.depth import intrinsics
from visionbench.depth.io import colour_table, write_bytes, write_json
from visionbench.depth.loader import LoadedImage, group_batches, prefetch, stream_images
from visionbench.depth.options import ModelRunOptions
from visionbench.depth.outputs import (
    OutputPlan,
    OutputWriteError,
    depth_stats,
    no_images_message,
    scan_inputs,
    weights_record,
    write_image_outputs,
)
from visionbench.depth.predict import forward_depth, has_fov_head, is_depth_pro
from visionbench.errors import BadInputError, UnsupportedOptionError
from visionbench.files import check_output_dir
from visionbench.models.base import Batch, Prediction, VisionModel

log = logging.getLogger("visionbench")
FAILURES_FILE = "failures-{run_id}.txt"  # one file per run: a later run never overwrites an earlier one's list
SUMMARY_FILE = "depth_run.json"


class DepthOptions(ModelRunOptions):
    """How `visionbench depth` runs; field descriptions are the CLI's help."""

    out: Path = Field(Path("depth_out"), description="Output folder; the inputs' relative paths are kept.")
    cmap: str = Field("inferno", description="Matplotlib colour map of the depth picture (near = top of the map).")
    side_by_side: bool = Field(False, description="Also write photo | depth side by side.")
    raw: bool = Field(True, description="Write raw .npy (and 16-bit mm PNG for metric models).")
    ply: bool = Field(False, description="Write a coloured point cloud (.ply) for metric models.")
    ply_stride: int = Field(1, ge=1, description="Keep every n-th pixel in rows and columns of the point cloud.")
    ignore_exif: bool = Field(False, description="Do not use the EXIF 35 mm focal length.")
    resume: bool = Field(False, description="Skip images whose outputs all exist already.")
    workers: int | None = Field(None, ge=1, description="Decoding threads (default: min(4, CPUs - 1)).")


class Failure(BaseModel):
    path: str
    error: str


class DepthRunSummary(BaseModel):
    """What a run did: counts, failures (also in its failures-<run id>.txt), throughput, how it ended."""

    model: str
    weights_mode: str
    weights_warning: str | None = None
    weights: dict[str, Any] = Field(default_factory=dict, description="The weights record as the adapter gives it.")
    out: str
    run_id: str = Field(default_factory=lambda: new_run_id())
    started: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    status: str = Field("running", description="running, completed, stopped (a write failed), interrupted, failed.")
    error: str | None = Field(None, description="Why the run ended early (one line).")
    total: int
    done: int = 0
    skipped: int = 0
    failed: int = 0
    not_attempted: int = Field(0, description="Images left when the run ended early.")
    unreadable_paths: int = Field(0, description="Folders that could not be listed, symlink loops, dangling links.")
    excluded_in_out: int = 0
    failures: list[Failure] = Field(default_factory=list)
    failures_file: str | None = None
    seconds: float = 0.0
    images_per_s: float = 0.0


def new_run_id() -> str:
    """Sortable and unique enough for one output folder: UTC time plus 4 random hex digits."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def writer_threads() -> int:
    """PNG encoding (zlib) releases the GIL: one writer per two cores, up to 4, leaves the rest to the model."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def batch_key(model: VisionModel) -> Any:
    """DepthPro resizes every image to one square: any images stack. Others keep aspect: group by size."""
    return None if is_depth_pro(model) else (lambda im: im.size)


def known_focal_px(item: LoadedImage, opts: DepthOptions) -> float | None:
    """The focal length (px) from --focal-px or EXIF, or None when only a model could guess it."""
    w, h = item.image.size  # type: ignore[union-attr]
    exif = None if opts.ignore_exif else item.exif_focal_35mm
    focal, source = intrinsics.choose_focal(cli_px=opts.focal_px, exif_35mm=exif, model_px=None, width=w, height=h)
    return focal if source in {"cli", "exif"} else None


def focal_facts(
    model: VisionModel, item: LoadedImage, opts: DepthOptions, predicted_px: float | None
) -> dict[str, Any]:
    """The sidecar's focal-length fields: which focal length was used, where it came from, what the model said."""
    w, h = item.image.size  # type: ignore[union-attr]
    exif = None if opts.ignore_exif else item.exif_focal_35mm
    focal, source = intrinsics.choose_focal(
        cli_px=opts.focal_px, exif_35mm=exif, model_px=predicted_px, width=w, height=h
    )
    facts: dict[str, Any] = {}
    if is_depth_pro(model):
        if focal is None and has_fov_head(model):  # the head gave 0, a negative or a nan field of view
            facts["focal_warning"] = "the FOV head's field of view is degenerate: depth is not meaningful (--focal-px)"
        elif focal is None:  # no FOV head: transformers makes depth with f = W
            focal, source = float(w), "assumed"
        facts["depth_uses_focal_px"] = focal  # DepthPro's metric depth is computed with this focal length
    return {
        "focal_px": focal,
        "focal_source": source,
        "fov_deg": intrinsics.fov_deg_from_focal(focal, w) if focal else None,
        "focal_px_predicted": predicted_px,
        "fov_deg_predicted": intrinsics.fov_deg_from_focal(predicted_px, w) if predicted_px else None,
        "exif_focal_35mm": item.exif_focal_35mm,
        **facts,
    }


def run_depth(
    inputs: list[str | Path], opts: DepthOptions, *, show_progress: bool = True, model: VisionModel | None = None
) -> DepthRunSummary:
    """Run a depth model over images, folders and path lists; write outputs under `opts.out`.

    `model` reuses an already built model (then opts.model, weights, device, dtype, input_size are ignored).
    Raises OutputWriteError (after writing the summary) when the filesystem refuses a write midway.
    """
    from visionbench.models.registry import create_model

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
            opts.model, weights=opts.weights, device=_device(opts.device), dtype=opts.dtype,
            input_size=opts.input_size, seed=opts.seed,
        )  # fmt: skip
    kind = "metric" if model.card.task == "depth-metric" else "relative-inverse"
    if not model.card.task.startswith("depth"):
        raise UnsupportedOptionError(f"{model.name} is a {model.card.task} model; `depth` needs a depth model")
    if opts.ply and kind != "metric":
        raise UnsupportedOptionError(f"--ply needs metric depth; {model.name} predicts relative inverse depth")
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
        with _progress(show_progress, len(todo)) as advance:
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


def _device(name: str) -> str:
    from visionbench.models.registry import resolve_device

    return str(resolve_device(name))


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


def image_sidecar(model: VisionModel, item: LoadedImage, depth: Any, predicted_focal_px: float | None,
                  opts: DepthOptions, runtime_ms: float, source: str | None = None) -> dict[str, Any]:  # fmt: skip
    """One image's sidecar fields (every engine writes these): what made the depth, its units, the focal length."""
    kind = "metric" if model.card.task == "depth-metric" else "relative-inverse"
    photo = item.image
    assert photo is not None
    return {
        "source": str(item.path) if source is None else source,
        "model": model.name,
        "weights_mode": model.weights.mode,
        "weights_source": model.weights.source,
        "weights_warning": model.weights.warning,
        "weights": weights_record(model),
        "depth_kind": kind,
        "depth_unit": "metres" if kind == "metric" else "relative inverse depth (larger is nearer, no unit)",
        "input_width": photo.width,
        "input_height": photo.height,
        "model_input_size": model.input_size,
        "output_width": int(depth.shape[1]),
        "output_height": int(depth.shape[0]),
        "depth": depth_stats(depth),
        **focal_facts(model, item, opts, predicted_focal_px),
        "runtime_ms": runtime_ms,
        "decode_ms": item.decode_ms,
        "device": str(model.device),
        "dtype": str(model.dtype).removeprefix("torch."),
    }


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


def previous_runs(out: Path) -> list[dict[str, Any]]:
    """Earlier runs into `out`, newest last, read from its depth_run.json: each keeps a pointer to its failures."""
    try:
        record = json.loads((out / SUMMARY_FILE).read_text())
        last = record["summary"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    keys = ("run_id", "started", "status", "model", "total", "done", "skipped", "failed", "failures_file")
    earlier = [r for r in record.get("previous_runs", []) if isinstance(r, dict)]
    if last.get("failures_file") is None and last.get("failed") and (out / "failures.txt").exists():
        last["failures_file"] = str(out / "failures.txt")  # written by versions that used one name for every run
    return [*earlier, {k: last.get(k) for k in keys}]


def _one_line(text: str) -> str:
    """A file name may hold a newline or a tab: escaped, so the failures file keeps one line per file."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def write_run_summary(out: Path, summary: DepthRunSummary, opts: DepthOptions,
                      previous: list[dict[str, Any]] | None = None) -> str:  # fmt: skip
    """This run's failures-<run id>.txt and OUT/depth_run.json; returns where the summary went.

    When `out` refuses the write, the summary goes to the temporary folder instead, and as a last
    resort to stderr: a run never ends without saying what it did.
    """
    if summary.failures:
        text = "".join(f"{_one_line(f.path)}\t{_one_line(f.error)}\n" for f in summary.failures)
        try:
            summary.failures_file = str(write_bytes(out / FAILURES_FILE.format(run_id=summary.run_id), text.encode()))
        except OSError:
            summary.failures_file = None  # the list is in the summary too
    record = {"summary": summary.model_dump(), "options": opts.model_dump(mode="json"),
              "previous_runs": previous or []}  # fmt: skip
    fallback = Path(tempfile.gettempdir()) / f"visionbench-{SUMMARY_FILE.removesuffix('.json')}-{summary.run_id}.json"
    for target in (out / SUMMARY_FILE, fallback):
        try:
            return str(write_json(target, record))
        except OSError:
            continue
    sys.stderr.write(json.dumps(record, default=str) + "\n")
    return "stderr (no folder could be written)"


class _progress:
    """A rich progress bar on stderr with images/s and ETA; a no-op when hidden."""

    def __init__(self, show: bool, total: int) -> None:
        self.show, self.total = show, total

    def __enter__(self) -> Any:
        if not self.show:
            return lambda n: None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,  # fmt: skip
            TimeRemainingColumn,
        )

        self.bar = Progress(TextColumn("depth"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"),
                            TimeRemainingColumn(), console=Console(stderr=True))  # fmt: skip
        self.bar.__enter__()
        self.task = self.bar.add_task("depth", total=self.total, rate="")
        self.t0 = time.perf_counter()
        self.count = 0

        def advance(n: int) -> None:
            self.count += n
            dt = time.perf_counter() - self.t0
            self.bar.update(self.task, advance=n, rate=f"{self.count / dt:.1f} img/s" if dt > 0 else "")

        return advance

    def __exit__(self, *exc: Any) -> None:
        if self.show:
            self.bar.__exit__(*exc)
