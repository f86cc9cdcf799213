"""The stages of `--engine ray`'s dataset, run in Ray's workers: decode tasks, model actors, write tasks.

Rows carry plain values only (ints, strings, raw bytes): Ray Data moves them between processes as
Arrow/numpy columns. One failed image is one row with an error, never a failed task.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from visionbench.depth.locations import ImageJob, is_url, read_image
from visionbench.depth.options import DepthOptions
from visionbench.depth.sidecar import image_sidecar


def build_dataset(todo: list[ImageJob], opts: DepthOptions, kind: str, actors: int, per_actor: dict[str, float],
                  actor_device: str) -> Any:  # fmt: skip
    """decode tasks -> model actors -> write tasks, as one lazy Ray dataset of (index, source, meta, error)."""
    import ray
    from ray.data import ActorPoolStrategy

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # the CLI shows its own bar with images/s and ETA
    ctx.print_on_execution_start = False
    rows = [{"index": j.index, "source": j.source, "base": j.base} for j in todo]
    blocks = max(1, min(len(rows), math.ceil(len(rows) / 4)))  # small blocks: a lost task redoes few images
    options = opts.model_dump(mode="json")
    ds = ray.data.from_items(rows, override_num_blocks=blocks)
    ds = ds.map_batches(decode_batch, batch_size=4, batch_format="numpy", num_cpus=0.5,
                        fn_kwargs={"read_exif": not opts.ignore_exif})  # fmt: skip
    ds = ds.map_batches(DepthActor, compute=ActorPoolStrategy(size=actors), batch_size=opts.batch_size,
                        batch_format="numpy", fn_constructor_kwargs={"options": options, "device": actor_device,
                        "threads": int(per_actor.get("num_cpus", 1))}, **per_actor)  # fmt: skip
    return ds.map_batches(write_batch, batch_size=4, batch_format="numpy", num_cpus=0.5,
                          fn_kwargs={"options": options, "kind": kind})  # fmt: skip


def rows_of(batch: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """A numpy batch as rows of plain Python values."""
    keys = list(batch)
    return [{k: _plain(batch[k][i]) for k in keys} for i in range(len(batch[keys[0]]))]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def decode_batch(batch: dict[str, np.ndarray], read_exif: bool) -> dict[str, list[Any]]:
    """Read tasks: file -> RGB pixels (raw bytes), EXIF focal length, decode time, or the reason it failed."""
    out: dict[str, list[Any]] = {k: [] for k in ("index", "source", "base", "pixels", "width", "height", "exif_f35",
                                                 "decode_ms", "error")}  # fmt: skip
    for index, source, base in zip(batch["index"], batch["source"], batch["base"], strict=True):
        t0 = time.perf_counter()
        image, f35, error = read_image(str(source))
        if not read_exif:
            f35 = None
        out["index"].append(int(index))
        out["source"].append(str(source))
        out["base"].append(str(base))
        out["pixels"].append(image.tobytes() if image is not None else b"")
        out["width"].append(image.width if image is not None else 0)
        out["height"].append(image.height if image is not None else 0)
        out["exif_f35"].append(math.nan if f35 is None else float(f35))
        out["decode_ms"].append((time.perf_counter() - t0) * 1e3)
        out["error"].append(error or "")
    return out


def _photo(row: dict[str, Any]) -> Any:
    from PIL import Image

    return Image.frombytes("RGB", (int(row["width"]), int(row["height"])), bytes(row["pixels"]))


class DepthActor:
    """One model load per actor; each call runs forward + postprocess over a batch and builds the sidecars."""

    def __init__(self, options: dict[str, Any], device: str, threads: int) -> None:
        import torch

        from visionbench.models.registry import create_model

        if device == "cpu":
            torch.set_num_threads(max(1, threads))  # the actor's CPUs, not every core of the node
        self.opts = DepthOptions(**options)
        o = self.opts
        self.model = create_model(o.model, weights=o.weights, device=device, dtype=o.dtype,
                                  input_size=o.input_size, seed=o.seed)  # fmt: skip

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        from visionbench.depth.loader import LoadedImage, group_batches
        from visionbench.depth.predict import batch_key

        rows = rows_of(batch)
        results: dict[int, dict[str, Any]] = {}
        items = []
        for row in rows:
            row["exif_f35"] = None if math.isnan(row["exif_f35"]) else row["exif_f35"]
            if row["error"]:
                results[row["index"]] = {**row, "error": row["error"]}
                continue
            items.append(LoadedImage(row["index"], Path(row["source"]), _photo(row), row["exif_f35"],
                                     decode_ms=row["decode_ms"]))  # fmt: skip
        by_index = {r["index"]: r for r in rows}
        self.sources = {r["index"]: r["source"] for r in rows}  # Path() would collapse "s3://" in the sidecar
        for group in group_batches(items, self.opts.batch_size, key=batch_key(self.model)):
            for index, result in self._predict(group).items():
                results[index] = {**by_index[index], **result}
        out: dict[str, list[Any]] = {k: [] for k in ("index", "source", "base", "pixels", "width", "height",
                                                     "depth", "meta", "error")}  # fmt: skip
        for row in rows:
            r = results[row["index"]]
            for k in out:
                out[k].append(r.get(k, b"" if k in {"pixels", "depth"} else ""))
        return out

    def _predict(self, items: list[Any]) -> dict[int, dict[str, Any]]:
        from visionbench.depth.predict import forward_depth
        from visionbench.depth.sidecar import known_focal_px

        try:
            batch = self.model.preprocess([it.image for it in items])
        except Exception as exc:  # noqa: BLE001 - one odd image must not end the run
            return {it.index: {"error": f"{self.sources[it.index]}: preprocessing failed ({type(exc).__name__}: {exc})"}
                    for it in items}  # fmt: skip
        t = time.perf_counter()
        try:
            preds, predicted = forward_depth(self.model, batch, [known_focal_px(it, self.opts) for it in items])
        except Exception as exc:  # noqa: BLE001 - reported as these images' failure
            return {it.index: {"error": f"{self.sources[it.index]}: the model failed ({type(exc).__name__}: {exc})"}
                    for it in items}  # fmt: skip
        per_image_ms = (time.perf_counter() - t) * 1e3 / len(items)
        out = {}
        for it, pred, f in zip(items, preds, predicted, strict=True):
            depth = np.ascontiguousarray(pred.depth, dtype=np.float32)
            meta = image_sidecar(self.model, it, depth, f, self.opts, per_image_ms, source=self.sources[it.index])
            out[it.index] = {"depth": depth.tobytes(), "meta": json.dumps(meta, allow_nan=False)}
        return out


def write_batch(batch: dict[str, np.ndarray], options: dict[str, Any], kind: str) -> dict[str, list[Any]]:
    """Write tasks: the local engine's writers for each predicted image (upload for URLs); one row per image."""
    opts = DepthOptions(**options)
    out: dict[str, list[Any]] = {"index": [], "source": [], "meta": [], "error": []}
    for row in rows_of(batch):
        error = row["error"] or _write_one(row, opts, kind)
        out["index"].append(int(row["index"]))
        out["source"].append(row["source"])
        meta = json.loads(row["meta"]) if row["meta"] else {}
        out["meta"].append(json.dumps({"weights_mode": meta.get("weights_mode"),
                                       "weights_warning": meta.get("weights_warning")}))  # fmt: skip
        out["error"].append(error)
    return out


def _write_one(row: dict[str, Any], opts: DepthOptions, kind: str) -> str:
    from visionbench.depth.locations import upload
    from visionbench.depth.outputs import OutputPlan, write_image_outputs

    job = ImageJob(int(row["index"]), row["source"], row["base"])
    sidecar = json.loads(row["meta"])
    depth = np.frombuffer(bytes(row["depth"]), dtype=np.float32).reshape(sidecar["output_height"],
                                                                         sidecar["output_width"])  # fmt: skip
    kw = dict(kind=kind, focal_px=sidecar.get("focal_px"), cmap=opts.cmap, side_by_side=opts.side_by_side,
              ply=opts.ply, ply_stride=opts.ply_stride, sidecar=sidecar, raw=opts.raw)  # fmt: skip
    try:
        photo = _photo(row)
        if not is_url(job.base):
            write_image_outputs(OutputPlan(Path(job.source), Path(job.base)), photo, depth, **kw)
            return ""
        with tempfile.TemporaryDirectory(prefix="vb-out-") as tmp:
            stem = Path(tmp) / job.base.rsplit("/", 1)[-1]
            files = write_image_outputs(OutputPlan(Path(job.source), stem), photo, depth, **kw)
            upload(files, job, kind=kind, side_by_side=opts.side_by_side, ply=opts.ply, raw=opts.raw)
        return ""
    except Exception as exc:  # noqa: BLE001 - reported as this image's failure
        return f"{job.source}: writing outputs failed ({type(exc).__name__}: {exc})"
