"""`visionbench depth --engine ray`: the same images, files and summary as the local engine, on Ray Data.

Three stages stream into each other (Ray Data's streaming executor), so no stage waits for a whole
dataset: decoding tasks (`map_batches` over the planned image list: one failed file is one failed row,
never a failed dataset), the model in a pool of actors (`ActorPoolStrategy`; one model load per actor,
one GPU per actor where the cluster has GPUs, else CPU actors that leave cores to decoding), and writing
tasks (the local engine's writers, off the actors' critical path). Ray retries tasks and restarts
actors lost with a worker or a node; every file is written atomically, so a retried image is harmless,
and the driver counts each image once. The driver only plans, shows progress and writes the summary.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from visionbench.depth.io import colour_table
from visionbench.depth.locations import ImageJob, is_url, local_path, outputs_whole, plan_jobs, read_image
from visionbench.depth.run_depth import (
    FAILURES_FILE,
    SUMMARY_FILE,
    DepthOptions,
    DepthRunSummary,
    Failure,
    image_sidecar,
)
from visionbench.errors import BadInputError, UnsupportedOptionError

log = logging.getLogger("visionbench")
INSTALL_HINT = "--engine ray needs Ray Data: pip install 'visionbench[ray]'"


class RayRunSummary(DepthRunSummary):
    """The local engine's summary plus what ran where."""

    engine: str = "ray"
    ray_address: str | None = Field(None, description="The cluster joined, or None for a local Ray started here.")
    actors: int = Field(0, description="Model actors in the pool (one model load each).")
    actor_resources: dict[str, float] = Field(default_factory=dict, description="Resources each actor holds.")
    cluster_resources: dict[str, float] = Field(default_factory=dict, description="CPU/GPU/memory Ray reported.")
    startup_seconds: float = Field(0.0, description="Time to start or join Ray (not in `seconds`).")
    first_image_seconds: float = Field(0.0, description="From the start of the run to the first image finished: "
                                       "actor start and model load, plus one image through every stage.")  # fmt: skip
    steady_images_per_s: float = Field(0.0, description="Images/s after the first image (the pool warmed up).")


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401 - the extra installs both
    except ImportError as exc:
        raise UnsupportedOptionError(INSTALL_HINT) from exc
    return ray


def check_address(address: str | None) -> None:
    """A host:port that nothing answers on fails here in a second, not after Ray's long connection retries."""
    if address is None or address == "auto" or address.startswith("ray://") and ":" not in address[6:]:
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise BadInputError(f"--ray-address {address!r}: expected HOST:PORT, ray://HOST:PORT or auto")
    try:
        with socket.create_connection((host, int(port)), timeout=3):
            pass
    except OSError as exc:
        raise BadInputError(f"--ray-address {address}: no Ray cluster reachable there ({exc})") from exc


def start_ray(address: str | None, num_cpus: int | None = None) -> tuple[bool, float]:
    """Join `address`, reuse a Ray this process already started, or start a local one; (started here, seconds)."""
    ray = import_ray()
    check_address(address)
    if ray.is_initialized():  # a library caller (or a test) already chose the cluster
        return False, 0.0
    t0 = time.perf_counter()
    try:
        if address is None:
            ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
        else:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise BadInputError(f"--ray-address {address}: cannot join a Ray cluster ({exc})") from exc
    return True, time.perf_counter() - t0


def pool_plan(resources: dict[str, float], device: str) -> tuple[int, dict[str, float], str]:
    """(actors, resources per actor, actor device): a GPU each where there are GPUs, else CPU actors that
    leave a quarter of the CPUs (at least one) to decoding and writing: actors holding every CPU starve
    the read tasks and the dataset stalls (ray#44687)."""
    gpus = int(resources.get("GPU", 0))
    if gpus and device in {"auto", "cuda"} | {f"cuda:{i}" for i in range(gpus)}:
        return gpus, {"num_gpus": 1.0, "num_cpus": 1.0}, "cuda"
    if device.startswith("cuda"):
        raise UnsupportedOptionError(f"--device {device}: the Ray cluster has no GPU")
    cpus = int(resources.get("CPU", 1))
    return max(1, cpus - max(1, cpus // 4)), {"num_cpus": 1.0}, "cpu" if device == "auto" else device


def run_depth_ray(
    inputs: list[str | Path],
    opts: DepthOptions,
    *,
    address: str | None = None,
    out: str | None = None,
    actors: int | None = None,
    show_progress: bool = True,
) -> RayRunSummary:
    """`run_depth` on Ray Data: same outputs per image, same summary files (plus actors and resources).

    `out` (a local folder or a URL such as s3://bucket/prefix) overrides `opts.out`, a Path, which cannot
    hold a URL (Path collapses "s3://" to "s3:/"). `actors` fixes the pool size (default: `pool_plan`).
    """
    from visionbench.models.registry import get_card

    import_ray()
    if not inputs:
        raise BadInputError("no input given: pass images, folders or a .txt list of paths")
    colour_table(opts.cmap)  # an unknown colour map fails before any work
    card = get_card(opts.model)
    if not card.task.startswith("depth"):
        raise UnsupportedOptionError(f"{opts.model} is a {card.task} model; `depth` needs a depth model")
    kind = "metric" if card.task == "depth-metric" else "relative-inverse"
    if opts.ply and kind != "metric":
        raise UnsupportedOptionError(f"--ply needs metric depth; {opts.model} predicts relative inverse depth")
    out = str(out if out is not None else opts.out)
    if not is_url(out):
        from visionbench.files import check_output_dir

        out = str(check_output_dir(local_path(out).expanduser()))
    jobs, excluded = plan_jobs(list(inputs), out)
    if not jobs:
        raise BadInputError(
            f"no images found in {', '.join(map(str, inputs))} (looked for jpg, jpeg, png, webp, bmp, tiff)"
        )
    file_kw = dict(kind=kind, side_by_side=opts.side_by_side, ply=opts.ply, raw=opts.raw)
    whole = outputs_whole(jobs, out, **file_kw) if opts.resume else set()
    todo = [j for j in jobs if j.index not in whole]
    started, startup_s = start_ray(address)
    try:
        return _run(jobs, todo, excluded, opts, kind, out, address, startup_s, show_progress, actors)
    finally:
        if started:
            import_ray().shutdown()


def _run(jobs: list[ImageJob], todo: list[ImageJob], excluded: int, opts: DepthOptions, kind: str, out: str,
         address: str | None, startup_s: float, show_progress: bool, pool: int | None) -> RayRunSummary:  # fmt: skip
    import ray

    resources = {k: float(v) for k, v in ray.cluster_resources().items() if k in {"CPU", "GPU", "memory"}}
    actors, per_actor, actor_device = pool_plan(resources, opts.device)
    actors = pool or actors
    summary = RayRunSummary(model=opts.model, weights_mode=opts.weights, out=out, total=len(jobs),
                            skipped=len(jobs) - len(todo), excluded_in_out=excluded, ray_address=address,
                            actors=actors, actor_resources=per_actor, cluster_resources=resources,
                            startup_seconds=startup_s)  # fmt: skip
    t0 = time.perf_counter()
    seen: dict[int, dict[str, Any]] = {}
    t_first = t_last = 0.0
    if todo:
        ds = build_dataset(todo, opts, kind, actors, per_actor, actor_device)
        with _progress(show_progress, len(todo)) as advance, _quiet("ray.data"):
            try:
                for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                    for row in _rows(batch):
                        if row["index"] not in seen:  # a retried task may report an image twice
                            seen[row["index"]] = row
                            advance(1)
                            t_last = time.perf_counter()
                            t_first = t_first or t_last
            except Exception as exc:  # noqa: BLE001 - what was done stays; the rest is failed with the reason
                log.error("the Ray run stopped: %s: %s", type(exc).__name__, exc)
                for job in todo:
                    if job.index not in seen:
                        seen[job.index] = {"index": job.index, "source": job.source, "meta": "",
                                           "error": f"{job.source}: not processed, the Ray run stopped "
                                                    f"({type(exc).__name__}: {str(exc)[:300]})"}  # fmt: skip
    for job in todo:  # in input order, like the local engine's failures list
        row = seen[job.index]
        if row["error"]:
            summary.failed += 1
            summary.failures.append(Failure(path=job.source, error=row["error"]))
            log.warning("skipped %s", row["error"])
        else:
            summary.done += 1
            meta = json.loads(row["meta"])
            summary.weights_mode, summary.weights_warning = meta["weights_mode"], meta["weights_warning"]
    summary.seconds = time.perf_counter() - t0
    summary.images_per_s = summary.done / summary.seconds if summary.seconds > 0 else 0.0
    if t_first:
        summary.first_image_seconds = t_first - t0
        summary.steady_images_per_s = (len(seen) - 1) / (t_last - t_first) if t_last > t_first else 0.0
    write_summary(out, summary, opts)
    return summary


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


def _rows(batch: dict[str, np.ndarray]) -> list[dict[str, Any]]:
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
        from visionbench.depth.run_depth import batch_key

        rows = _rows(batch)
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
        from visionbench.depth.run_depth import known_focal_px

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
    for row in _rows(batch):
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


def write_summary(out: str, summary: RayRunSummary, opts: DepthOptions) -> None:
    """OUT/depth_run.json and OUT/failures-<run id>.txt, as the local engine writes them (URLs through fsspec)."""
    from visionbench.depth.locations import write_text_to
    from visionbench.depth.run_depth import previous_runs, write_run_summary

    if not is_url(out):
        write_run_summary(Path(out), summary, opts, previous_runs(Path(out)))
        return
    failures = f"{out.rstrip('/')}/{FAILURES_FILE.format(run_id=summary.run_id)}"
    if summary.failures:
        write_text_to(failures, "".join(f"{f.path}\t{f.error}\n" for f in summary.failures))
        summary.failures_file = failures
    doc = {"summary": summary.model_dump(), "options": opts.model_dump(mode="json")}
    write_text_to(f"{out.rstrip('/')}/{SUMMARY_FILE}", json.dumps(doc, indent=2, default=str, allow_nan=False) + "\n")


class _quiet:
    """Ray Data's start and finish notes (and its warning that its own bars are off) hidden while the run's bar
    shows the same; its errors still print."""

    def __init__(self, name: str) -> None:
        self.logger = logging.getLogger(name)

    def __enter__(self) -> None:
        self.level = self.logger.level
        self.logger.setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        self.logger.setLevel(self.level)


class _progress:
    """A rich bar on stderr with images/s and ETA, as the local engine's; a no-op when hidden."""

    def __init__(self, show: bool, total: int) -> None:
        self.show, self.total = show, total

    def __enter__(self) -> Any:
        if not self.show:
            return lambda n: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("depth (ray)"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"), TextColumn("ETA"), TimeRemainingColumn(),
                            console=Console(stderr=True))  # fmt: skip
        self.bar.__enter__()
        self.task = self.bar.add_task("depth", total=self.total, rate="")
        self.t0, self.count = time.perf_counter(), 0

        def advance(n: int) -> None:
            self.count += n
            dt = time.perf_counter() - self.t0
            self.bar.update(self.task, advance=n, rate=f"{self.count / dt:.1f} img/s" if dt > 0 else "")

        return advance

    def __exit__(self, *exc: object) -> None:
        if self.show:
            self.bar.__exit__(None, None, None)


__all__ = ["RayRunSummary", "run_depth_ray", "start_ray", "pool_plan", "check_address", "INSTALL_HINT"]
