"""`dissect_model`: one forward pass with hooks, statistics on the device, pictures written as the pass goes."""

from __future__ import annotations

import contextlib
import math
import resource
import sys
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from visionbench.dissect.hooks import Recorder, attached, component_of, flatten
from visionbench.dissect.pictures import NORMALISATION
from visionbench.dissect.records import DissectionResult, DissectOptions
from visionbench.dissect.select import parse_layers, select_layers
from visionbench.dissect.stats import StatsEngine
from visionbench.dissect.tokens import TokenLayout
from visionbench.dissect.writer import BackgroundWriter
from visionbench.errors import UnsupportedOptionError
from visionbench.files import safe_name, write_text
from visionbench.layers_json import LAYERS_FILE, LayerRecord, LayersDocument
from visionbench.models.base import Batch, VisionModel


def dissect_model(
    model: VisionModel, image: Image.Image | None, out_dir: Path, options: DissectOptions | None = None
) -> DissectionResult:
    """Dissect `model` on `image` (None: a seeded random input) in one forward pass; write out_dir/<model>/.

    Raises BadInputError (bad selection, bad --blocks) before anything runs or is written.
    """
    from visionbench.dissect.blocks import BlockCapture
    from visionbench.dissect.drift import DriftReference, compare_precision

    options = options or DissectOptions()
    start = time.perf_counter()
    selected = select_layers(model.module, options.layers, options.match)
    batch = _input_batch(model, image, options.seed)
    layout = TokenLayout.from_model(model, batch)
    folder = Path(out_dir) / safe_name(model.name)
    engine = StatsEngine(model.device)
    blocks = None
    if options.blocks:  # checked before anything is written
        blocks = BlockCapture.plan(model.module, layout, options.blocks, engine, folder, batch.batch_size)
    if options.drift and model.dtype != torch.float32:
        raise UnsupportedOptionError(f"--drift compares with float32: build the model in float32, not {model.dtype}")
    folder.mkdir(parents=True, exist_ok=True)
    if options.pictures:
        for sub in ("maps", "npy", "patches"):
            (folder / sub).mkdir(exist_ok=True)
    reference = DriftReference(options.drift_sample, options.seed) if options.drift else None
    cuda = model.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(model.device)
        torch.cuda.reset_peak_memory_stats(model.device)
    pass_start = time.perf_counter()
    pictures = BackgroundWriter(options.queue_size, max_bytes=options.queue_mib << 20) if options.pictures else None
    with pictures or contextlib.nullcontext() as writer:  # an error drops the queued jobs; else all are written
        recorder = Recorder(engine, writer, folder, options, layout, model.components(), batch.batch_size,
                            reference.observe if reference else None)  # fmt: skip
        block_hooks = attached(blocks.modules, blocks.hook) if blocks else contextlib.nullcontext()
        with attached(selected, recorder.hook), block_hooks, torch.inference_mode():
            output = model.forward(batch)
            if cuda:
                torch.cuda.synchronize(model.device)
    pass_seconds = time.perf_counter() - pass_start
    peak = torch.cuda.max_memory_allocated(model.device) if cuda else _peak_rss()
    stats = engine.fetch()
    records = [
        _record(r, None if s is None else stats[s]) for r, s in zip(recorder.records, recorder.slots, strict=True)
    ]
    block_records = blocks.finish(stats) if blocks else []
    drift = None
    if reference is not None and options.drift:
        drift = compare_precision(model, batch, selected, reference, output, options.drift, folder, options)
    components = _component_totals(model, records)
    summary = _summary(records, recorder.calls, pass_seconds, drift)
    doc = LayersDocument(
        model=model.describe(), input=_input_info(batch, image, options),
        weights=model.weights.record().model_dump(),
        device=str(model.device),
        selection={"layers": parse_layers(options.layers), "match": options.match, "modules": len(selected)},
        options=options.model_dump(mode="json"), stats_method=engine.method,
        writer=pictures.kind if pictures is not None else None, normalisation=NORMALISATION,
        pass_seconds=pass_seconds, peak_bytes=peak,
        outputs=[{"output": k, "shape": list(v.shape)} for k, v in flatten(output) if isinstance(v, torch.Tensor)],
        summary=summary, components=components, records=records, blocks=block_records, drift=drift,
    )  # fmt: skip
    path = folder / LAYERS_FILE
    write_text(path, doc.model_dump_json(indent=1))  # atomic: a reader never sees half a file
    if options.summary_plots:
        from visionbench.dissect.plots import component_plot, summary_plot

        summary_plot(records, folder / "summary.png", model.name)
        component_plot(components, folder / "components.png", model.name)
    return DissectionResult(
        path=path, folder=folder, layer_count=len(records), calls=recorder.calls, seconds=pass_seconds,
        total_seconds=time.perf_counter() - start, peak_bytes=peak, summary=summary,
    )  # fmt: skip


def _input_batch(model: VisionModel, image: Image.Image | None, seed: int) -> Batch:
    if image is not None:
        return model.preprocess([image])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return model.example_batch(1)


def _input_info(batch: Batch, image: Image.Image | None, options: DissectOptions) -> dict[str, Any]:
    source = options.input_label or ("image" if image is not None else f"random input (seed {options.seed})")
    return {
        "source": source,
        "image_size": [image.height, image.width] if image is not None else None,
        "tensors": {
            k: {"shape": list(v.shape), "dtype": str(v.dtype).removeprefix("torch.")} for k, v in batch.inputs.items()
        },
    }


def _record(raw: dict[str, Any], stats: dict[str, float] | None) -> LayerRecord:
    if stats is not None:
        n = stats["numel"] or 1.0
        raw = {
            **raw,
            **{k: _num(stats[k]) for k in ("min", "max", "mean", "std")},
            "sparsity": stats["zeros"] / n,
            "near_zero": stats["near_zero"] / n,
            "nan_count": int(stats["nan"]),
            "inf_count": int(stats["inf"]),
        }
    return LayerRecord(**raw)


def _num(value: float) -> float | None:
    return None if value is None or math.isnan(value) else value


def _component_totals(model: VisionModel, records: list[LayerRecord]) -> dict[str, dict[str, Any]]:
    """Per component: parameters, recorded calls, output elements and bytes, zeros, NaN/Inf."""
    out: dict[str, dict[str, Any]] = {}
    components = model.components()
    params: dict[str, int] = {}
    for n, p in model.module.named_parameters():  # one walk of the module tree, not one per component
        label = component_of(n, components)
        params[label] = params.get(label, 0) + p.numel()
    for label in [*components, "other"]:
        mine = [r for r in records if r.component == label and r.kind == "tensor"]
        if label == "other" and not mine:
            continue
        elements = sum(r.numel or 0 for r in mine)
        zeros = sum((r.sparsity or 0.0) * (r.numel or 0) for r in mine)
        out[label] = {
            "params": params.get(label, 0),
            "records": len(mine),
            "calls": len({r.index for r in mine}),
            "output_elements": elements,
            "zeros_fraction": zeros / elements if elements else None,
            "nan_count": sum(r.nan_count or 0 for r in mine),
            "inf_count": sum(r.inf_count or 0 for r in mine),
            "max_abs": max((max(abs(r.min or 0.0), abs(r.max or 0.0)) for r in mine), default=None),
        }
    return out


def _summary(records: list[LayerRecord], calls: int, seconds: float, drift: dict[str, Any] | None) -> dict[str, Any]:
    tensors = [r for r in records if r.kind == "tensor"]
    bad = [r.name for r in tensors if (r.nan_count or 0) + (r.inf_count or 0) > 0]
    out: dict[str, Any] = {
        "records": len(records),
        "calls": calls,
        "tensors": len(tensors),
        "non_tensor_outputs": len(records) - len(tensors),
        "pictures": sum(1 for r in records if r.picture),
        "npy_files": sum(1 for r in records if r.npy),
        "layers_with_nan_or_inf": len(bad),
        "first_nan_or_inf": bad[0] if bad else None,
        "max_abs": max((max(abs(r.min or 0.0), abs(r.max or 0.0)) for r in tensors), default=None),
        "most_sparse": max(tensors, key=lambda r: r.sparsity or 0.0).name if tensors else None,
        "pass_seconds": round(seconds, 4),
    }
    if drift:
        out["drift"] = {k: drift.get(k) for k in ("dtype", "first_jump", "max_relative_error", "final_relative_error")}
    return out


def _peak_rss() -> int:
    """This process's peak resident set size so far (Linux reports KiB, macOS bytes)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)
