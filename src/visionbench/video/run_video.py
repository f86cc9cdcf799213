"""The `visionbench video` pipeline: frames -> depth model -> per-frame files, a depth video, temporal metrics.

Streaming, so memory stays flat in the number of frames: a background thread decodes and
preprocesses the next batch (depth.loader.prefetch) while the main thread runs the model; a pool
writes each frame's files (npy, 16-bit PNG, sidecar last); one ordered thread colours and encodes the
video and updates the flicker (it keeps only the previous frame). At most a few batches are in flight.
What is finished stays when a run stops: the mp4 is closed properly and video.json says how far it got.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from visionbench.depth import intrinsics, io
from visionbench.depth.outputs import OutputPlan, depth_stats
from visionbench.depth.predict import depth_kind, forward_depth, has_fov_head, is_depth_pro
from visionbench.depth.progress import rate_bar
from visionbench.errors import BadInputError
from visionbench.files import check_output_dir, write_json
from visionbench.models.base import VisionModel
from visionbench.video import metrics as vm
from visionbench.video.encode import ColourScale, VideoWriter
from visionbench.video.groundtruth import GroundTruth, load_ground_truth
from visionbench.video.options import (
    DEPTH_VIDEO,
    FRAMES_DIR,
    SIDE_VIDEO,
    SUMMARY_FILE,
    VideoOptions,
    VideoSummary,
    check_options,
    check_out_not_in_input,
    check_resume,
)
from visionbench.video.source import Frame, FrameSource

log = logging.getLogger("visionbench")


def run_video(input_path: str | Path, opts: VideoOptions, *, show_progress: bool = True,
              model: VisionModel | None = None) -> VideoSummary:  # fmt: skip
    """Depth for every kept frame of a video or frame folder; files and video.json under `opts.out`.

    `model` reuses an already built model (then opts.model, weights, device, dtype, input_size are ignored).
    """
    from visionbench.models.registry import create_model, resolve_device

    check_options(opts)
    check_out_not_in_input(Path(input_path), opts.out)
    source = FrameSource(input_path, folder_fps=opts.fps)
    gt = load_ground_truth(opts.ground_truth) if opts.ground_truth is not None else None
    out = check_output_dir(opts.out)
    if model is None:
        model = create_model(opts.model, weights=opts.weights, device=str(resolve_device(opts.device)),
                             dtype=opts.dtype, input_size=opts.input_size, seed=opts.seed)  # fmt: skip
    kind = depth_kind(model.name, model.card.task, command="video")
    if opts.resume:
        check_resume(out, model.name)
    summary = VideoSummary(model=model.name, weights_mode=model.weights.mode, weights_warning=model.weights.warning,
                           depth_kind=kind, out=str(out), source=source.info.record())  # fmt: skip
    run = _Run(model, source, opts, out, kind, gt, summary)
    t0 = time.perf_counter()
    try:
        with rate_bar(show_progress, _expected_frames(source, opts), "video", unit="frames") as advance:
            run.go(advance)
        summary.complete = True
    except BaseException as exc:
        summary.error = str(exc) or type(exc).__name__
        raise
    finally:
        summary.seconds = time.perf_counter() - t0
        summary.frames_per_s = summary.frames / summary.seconds if summary.seconds > 0 else 0.0
        run.finish()
    return summary


def _expected_frames(source: FrameSource, opts: VideoOptions) -> int | None:
    n, fps = source.info.frames, source.info.fps
    if n is None or not fps:
        return None
    first = int(opts.start_s * fps)
    last = n if opts.end_s is None else min(n, int(np.ceil(opts.end_s * fps)))
    return max(0, -(-(last - first) // opts.every))


class _Run:
    """The state of one run: the writers, the per-frame records and the streaming metrics."""

    def __init__(self, model: VisionModel, source: FrameSource, opts: VideoOptions, out: Path, kind: str,
                 gt: GroundTruth | None, summary: VideoSummary) -> None:  # fmt: skip
        self.model, self.source, self.opts, self.out, self.kind, self.gt = model, source, opts, out, kind, gt
        self.summary = summary
        self.records: list[dict[str, Any]] = []
        self.colour = ColourScale(kind, opts.cmap)
        info = source.info
        self.video = VideoWriter(out / DEPTH_VIDEO, info.width, info.height, info.time_base, info.fps)
        self.side = (VideoWriter(out / SIDE_VIDEO, 2 * info.width, info.height, info.time_base, info.fps)
                     if opts.side_by_side else None)  # fmt: skip
        self.prev: tuple[np.ndarray, np.ndarray] | None = None  # previous (photo, depth) for the flicker
        self.flicker: list[float] = []
        self.fit = vm.DisparityFit()
        self.model_seconds = 0.0
        self.model_frames = 0

    # --- files of one frame -------------------------------------------------------------------------
    def plan(self, index: int) -> dict[str, Path]:
        plan = OutputPlan(Path(f"{self.source.info.path}#{index}"), self.out / FRAMES_DIR / f"frame_{index:06d}")
        files = plan.files(kind=self.kind, side_by_side=False, ply=False, raw=True)
        files.pop("picture")  # the depth video shows the colours
        return files

    def resumed(self, frame: Frame) -> tuple[np.ndarray, dict[str, Any]] | None:
        if not self.opts.resume:
            return None
        files = self.plan(frame.index)
        if not all(p.exists() for p in files.values()):
            return None
        try:
            record = json.loads(files["sidecar"].read_text())
            depth = np.load(files["npy"], allow_pickle=False)
        except (OSError, ValueError):
            return None  # unreadable leftovers: computed again
        if record.get("model") != self.model.name:
            made_by = record.get("model")
            raise BadInputError(
                f"--resume: {files['sidecar']} was made by {made_by}, not {self.model.name}; use another --out"
            )
        return depth, record

    # --- the loop -------------------------------------------------------------------------------------
    def go(self, advance: Any) -> None:
        from visionbench.depth.loader import prefetch

        opts = self.opts
        frames = self.source.frames(opts.start_s, opts.end_s, opts.every)
        cpu = self.model.device.type == "cpu"
        pending: list[Future[None]] = []
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="vb-vwrite") as files, \
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="vb-vencode") as ordered:  # fmt: skip
            for batch_frames, done, batch in prefetch(_batches(frames, opts.batch_size), self._prepare, depth=2,
                                                      torch_threads=1 if cpu else None):  # fmt: skip
                depths, extra = self._predict(batch_frames, done, batch)
                for frame, depth, facts in zip(batch_frames, depths, extra, strict=True):
                    record = self._record(frame, depth, facts)
                    if not facts.get("resumed"):
                        pending.append(files.submit(self._write_files, frame, depth, record))
                    pending.append(ordered.submit(self._sequence, frame, depth))
                    self.records.append(record)
                pending = _drain(pending, limit=4 * opts.batch_size + 4)
                self.summary.frames = len(self.records)
                advance(len(batch_frames))
            _drain(pending, limit=0)

    def _prepare(self, frames: list[Frame]) -> tuple[list[Frame], list[Any], Any]:
        done = [self.resumed(f) for f in frames]
        todo = [f.image for f, d in zip(frames, done, strict=True) if d is None]
        return frames, done, self.model.preprocess(todo) if todo else None

    def _predict(
        self, frames: list[Frame], done: list[Any], batch: Any
    ) -> tuple[list[np.ndarray], list[dict[str, Any]]]:
        preds: list[Any] = []
        predicted: list[float | None] = []
        if batch is not None:
            t = time.perf_counter()
            preds, predicted = forward_depth(self.model, batch, [self.opts.focal_px] * batch.batch_size)
            self.model_seconds += time.perf_counter() - t
            self.model_frames += batch.batch_size
        depths, facts = [], []
        it = iter(zip(preds, predicted, strict=True))
        for frame, old in zip(frames, done, strict=True):
            if old is not None:
                depth, record = old
                depths.append(depth)
                facts.append({"resumed": True, "record": record})
                self.summary.frames_resumed += 1
            else:
                pred, f_pred = next(it)
                depths.append(np.asarray(pred.depth, np.float32))
                facts.append({"resumed": False, "focal": self._focal(frame, f_pred),
                              "runtime_ms": self.model_seconds * 1e3 / max(self.model_frames, 1)})  # fmt: skip
        return depths, facts

    def _focal(self, frame: Frame, predicted_px: float | None) -> dict[str, Any]:
        w, h = frame.image.size
        focal, source = intrinsics.choose_focal(cli_px=self.opts.focal_px, exif_35mm=None, model_px=predicted_px,
                                                width=w, height=h)  # fmt: skip
        if is_depth_pro(self.model) and focal is None and not has_fov_head(self.model):
            focal, source = float(w), "assumed"  # transformers makes DepthPro's depth with f = W then
        return {"focal_px": focal, "focal_source": source,
                "fov_deg": intrinsics.fov_deg_from_focal(focal, w) if focal else None,
                "focal_px_predicted": predicted_px}  # fmt: skip

    def _record(self, frame: Frame, depth: np.ndarray, facts: dict[str, Any]) -> dict[str, Any]:
        if facts["resumed"]:
            record = facts["record"]
            record["resumed"] = True
        else:
            record = {"index": frame.index, "time_s": frame.time_s, "pts": frame.pts, "model": self.model.name,
                      "depth_kind": self.kind, "depth": depth_stats(depth), **facts["focal"],
                      "runtime_ms": facts["runtime_ms"]}  # fmt: skip
        if self.gt is not None:
            gt = self.gt.depth(frame.index)
            if gt.shape != depth.shape:
                found, want = f"{gt.shape[1]}x{gt.shape[0]}", f"{depth.shape[1]}x{depth.shape[0]}"
                raise BadInputError(f"{self.gt.root}: ground truth of frame {frame.index} is {found}, the frame {want}")
            record["scores"] = vm.frame_scores(depth, self.kind, gt)
            self.fit.add(depth, self.kind, gt)
        return record

    def _write_files(self, frame: Frame, depth: np.ndarray, record: dict[str, Any]) -> None:
        files = self.plan(frame.index)
        io.save_npy(files["npy"], depth)
        if "png16_mm" in files:
            io.save_png16_mm(files["png16_mm"], depth)
        side = {k: v for k, v in record.items() if k != "resumed"}
        side["files"] = {k: p.name for k, p in files.items() if k != "sidecar"}
        write_json(files["sidecar"], side)  # last: its presence is what --resume trusts

    def _sequence(self, frame: Frame, depth: np.ndarray) -> None:
        """In frame order: the video frames and the flicker against the previous frame."""
        picture = self.colour(depth)
        self.video.write(picture, frame.pts)
        if self.side is not None:
            self.side.write(io.side_by_side(frame.image, picture), frame.pts)
        if not self.opts.flicker:
            return
        photo = np.asarray(frame.image.convert("RGB"))
        if self.prev is not None:
            value = vm.opw(self.prev[1], depth, self.prev[0], photo, method=self.opts.flow)
            if value is not None:
                self.flicker.append(value)
        self.prev = (photo, depth)

    # --- the end, also after an error -------------------------------------------------------------------
    def finish(self) -> None:
        s = self.summary
        for writer in (self.video, self.side):
            if writer is not None:
                writer.close()
        s.files = {"video": str(self.out / DEPTH_VIDEO), "frames": str(self.out / FRAMES_DIR),
                   "summary": str(self.out / SUMMARY_FILE)}  # fmt: skip
        if self.side is not None:
            s.files["side_by_side"] = str(self.out / SIDE_VIDEO)
        if self.model_seconds > 0:
            s.model_frames_per_s = self.model_frames / self.model_seconds
        try:
            s.metrics = self._metrics()
        except Exception as exc:  # noqa: BLE001 - the record of what was done is written regardless
            s.metrics = {"error": f"metrics failed ({type(exc).__name__}: {exc})"}
        write_json(self.out / SUMMARY_FILE, {"summary": s.model_dump(mode="json"), "frames": _json_safe(self.records),
                                             "options": self.opts.model_dump(mode="json")})  # fmt: skip

    def _metrics(self) -> dict[str, Any]:
        medians = [r["depth"]["median"] for r in self.records]
        focals = [r.get("focal_px_predicted") for r in self.records] if is_depth_pro(self.model) else None
        out: dict[str, Any] = {"frames": len(self.records), "scale_drift": vm.scale_drift(medians, self.kind, focals)}
        f = self.flicker
        out["flicker_opw"] = {"mean": float(np.mean(f)) if f else None, "max": float(np.max(f)) if f else None,
                              "pairs": len(f), "flow": self.opts.flow} if self.opts.flicker else None  # fmt: skip
        if self.gt is not None and self.records:
            out["ground_truth"] = self._gt_metrics()
        return _json_safe(out)

    def _gt_metrics(self) -> dict[str, Any]:
        """Second pass over the written depth files: one alignment for the sequence, TAE, video-level scores."""
        assert self.gt is not None
        per_frame = [r.get("scores", {}) for r in self.records]
        keys = ("abs_rel_aligned", "delta1_aligned", "abs_rel", "delta1")
        res: dict[str, Any] = {"per_frame_mean": {k: _mean([p.get(k) for p in per_frame]) for k in keys}}
        st = self.fit.solve()
        if st is None:
            res["error"] = "no alignment: fewer than 2 valid pixels, or a constant prediction"
            return res
        res["alignment"] = {"scale": st[0], "shift": st[1], "space": "disparity (1/depth)"}
        max_depth = max(
            float(np.max(d[np.isfinite(d)], initial=0.0)) for d in (self.gt.depth(r["index"]) for r in self.records)
        )
        pooled, terms, prev = vm.PooledScores(), [], None
        for r in self.records:
            gt = self.gt.depth(r["index"])
            pred = np.load(self.plan(r["index"])["npy"])
            aligned = vm.aligned_depth(pred, self.kind, st[0], st[1], max_depth)
            pooled.add(aligned, gt)
            if prev is not None and self.gt.has_geometry:
                i0, d0, g0 = prev
                terms += vm.tae_pair(d0, aligned, self.gt.k, self.gt.poses[i0], self.gt.poses[r["index"]],  # type: ignore[index,arg-type]
                                     np.isfinite(g0), np.isfinite(gt))  # fmt: skip
            prev = (r["index"], aligned, gt)
        res["video_level"] = pooled.result()
        res["tae"] = vm.tae(terms) if self.gt.has_geometry else None
        if not self.gt.has_geometry:
            res["tae_note"] = "no poses.npy or intrinsics.json: TAE needs both"
        return res


def _mean(vals: list[Any]) -> float | None:
    v = [float(x) for x in vals if x is not None and np.isfinite(x)]
    return float(np.mean(v)) if v else None


def _json_safe(x: Any) -> Any:
    """NaN and infinity become null (JSON has neither)."""
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


def _batches(frames: Any, size: int) -> Any:
    batch: list[Frame] = []
    for f in frames:
        batch.append(f)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _drain(pending: list[Future[None]], limit: int) -> list[Future[None]]:
    """Wait for the oldest jobs until at most `limit` remain (bounded memory); their errors end the run."""
    while len(pending) > limit or (pending and pending[0].done()):
        pending.pop(0).result()
    return pending
