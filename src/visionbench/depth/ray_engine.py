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
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import Field

from visionbench.depth.io import colour_table
from visionbench.depth.locations import ImageJob, is_url, local_path, outputs_whole, plan_jobs
from visionbench.depth.options import DepthOptions
from visionbench.depth.predict import depth_kind
from visionbench.depth.progress import rate_bar
from visionbench.depth.ray_stages import build_dataset, rows_of
from visionbench.depth.summary import DepthRunSummary, Failure, previous_runs, write_run_summary
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
    kind = depth_kind(opts.model, get_card(opts.model).task, ply=opts.ply)
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
        with rate_bar(show_progress, len(todo), "depth (ray)") as advance, _quiet("ray.data"):
            try:
                for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                    for row in rows_of(batch):
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


def write_summary(out: str, summary: RayRunSummary, opts: DepthOptions) -> None:
    """OUT/depth_run.json and OUT/failures-<run id>.txt, as the local engine writes them (URLs through fsspec)."""
    write_run_summary(out, summary, opts, None if is_url(out) else previous_runs(Path(out)))


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Ray Data's start and finish notes (and its warning that its own bars are off) hidden while the run's bar
    shows the same; its errors still print."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


__all__ = ["RayRunSummary", "run_depth_ray", "start_ray", "pool_plan", "check_address", "INSTALL_HINT"]
