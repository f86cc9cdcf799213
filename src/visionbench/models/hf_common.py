"""Building transformers models under every weights mode, shared by DepthPro, Depth Anything and `hf:`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from visionbench.errors import WeightsError
from visionbench.models.base import (
    META_WEIGHTS,
    Batch,
    Prediction,
    VisionModel,
    WeightsInfo,
    file_digests,
    file_info,
    first_line,
)
from visionbench.models.materialize import build_with_random_weights, parameters_on_meta
from visionbench.models.registry import BuildSpec
from visionbench.models.weights import find_hf_snapshot, load_into, random_info, read_state_dict, resolve_file_in_folder

WEIGHT_SUFFIXES = (".safetensors", ".bin")


class HFDepthModel(VisionModel):
    """A transformers depth model: its image processor in, its depth resized to each image out."""

    processor: Any = None

    def preprocess(self, images: list[Image.Image]) -> Batch:
        pixels = self.processor(images=images, return_tensors="pt")["pixel_values"]
        return Batch({"pixel_values": pixels.to(self.device, self.dtype)}, [(im.height, im.width) for im in images])

    def postprocess(self, outputs: Any, batch: Batch) -> list[Prediction]:
        depth = outputs.predicted_depth.float().unsqueeze(1)
        kind = "metric" if self.card.task == "depth-metric" else "relative-inverse"
        return [
            Prediction(
                task=self.card.task,
                depth=F.interpolate(depth[i : i + 1], size=hw, mode="bicubic")[0, 0].cpu().numpy(),
                depth_kind=kind,
            )
            for i, hw in enumerate(batch.sizes)
        ]


def build_transformers(
    spec: BuildSpec,
    model_cls: Any,
    config: Any,
    repo_id: str | None,
    convert: Callable[[dict[str, torch.Tensor], Path], tuple[dict[str, torch.Tensor], str]] | None = None,
) -> tuple[nn.Module, WeightsInfo, Path | None]:
    """The module, its weights record, and the pretrained folder (for its processor config).

    `convert` maps one file's state dict from another layout (Apple's depth_pro.pt) and says so.
    """
    req = spec.weights
    if spec.device.type == "meta":
        with torch.device("meta"):  # parameters and buffers: shapes and FLOPs without memory
            return _make(model_cls, config, spec), META_WEIGHTS, None
    if req.kind == "random":
        return _random(spec, model_cls, config), random_info(spec), None
    if req.kind == "path":
        assert req.path is not None
        folder = req.path if req.path.is_dir() and (req.path / "config.json").exists() else None
        if folder is not None:
            return _from_folder(spec, model_cls, folder), folder_info(f"folder {folder}", folder), folder
        file = resolve_file_in_folder(req.path)
        module, note = _from_file(spec, model_cls, config, file, convert)
        return module, file_info(file, note), None
    # auto: cache or hub, else random with a loud warning
    folder, where = find_hf_snapshot(repo_id) if repo_id else (None, "no hub repository is known for it")
    if folder is not None:
        return _from_folder(spec, model_cls, folder), folder_info(f"hub {repo_id} ({folder})", folder), folder
    return _random(spec, model_cls, config), random_info(spec, where), None


def adopt_folder_processor(model: Any, folder: Path, processor_cls: Any, spec: BuildSpec) -> None:
    """A folder's own preprocessor (and, without `--input-size`, its size) replaces the built-in one."""
    if not (folder / "preprocessor_config.json").is_file():
        return
    try:
        processor = processor_cls.from_pretrained(str(folder))
    except Exception as exc:  # noqa: BLE001 - a broken processor file: one clear line
        raise WeightsError(f"{folder}/preprocessor_config.json: cannot read it ({first_line(exc)})") from exc
    model.__dict__["processor"] = processor  # replaces the cached built-in processor
    size = getattr(processor, "size", None) or {}
    if not spec.input_size_given and size.get("height") and size.get("height") == size.get("width"):
        model.input_size = int(size["height"])
    model.weights = dataclasses.replace(
        model.weights, source=f"{model.weights.source}; config and preprocessor settings from that folder"
    )


def folder_info(source: str, folder: Path) -> WeightsInfo:
    """A pretrained folder's record: its hub commit (a cache snapshot's name) and each file's SHA-256."""
    revision = folder.name if folder.parent.name == "snapshots" else None
    names = ("config.json", "preprocessor_config.json")
    files = [folder / n for n in names if (folder / n).is_file()]
    files += sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    return WeightsInfo("pretrained", source, revision=revision, files=file_digests(files))


def _make(model_cls: Any, config: Any, spec: BuildSpec) -> nn.Module:
    """`cls(config)`, or `from_config` for an Auto class (the `hf:` door)."""
    if hasattr(model_cls, "from_config"):
        return model_cls.from_config(config, trust_remote_code=spec.trust_remote_code)
    return model_cls(config)


def _random(spec: BuildSpec, model_cls: Any, config: Any) -> nn.Module:
    factory: Callable[[], nn.Module] = lambda: _make(model_cls, config, spec)  # noqa: E731
    return build_with_random_weights(factory, device=spec.device, dtype=spec.dtype, seed=spec.seed)


def _from_folder(spec: BuildSpec, model_cls: Any, folder: Path) -> nn.Module:
    try:
        module = model_cls.from_pretrained(
            str(folder), dtype=spec.dtype, local_files_only=True, trust_remote_code=spec.trust_remote_code
        )
    except Exception as exc:  # noqa: BLE001 - wrong architecture, broken files: one clear line
        raise WeightsError(f"{folder}: cannot load as {spec.card.architecture}: {first_line(exc)}") from exc
    return module.to(spec.device).eval()


def _from_file(spec: BuildSpec, model_cls: Any, config: Any, file: Path, convert: Any = None) -> tuple[nn.Module, str]:
    """Architecture on meta, then the file's tensors assigned in place: one copy of the weights."""
    state = read_state_dict(file, allow_pickle=spec.trust_remote_code)
    note = ""
    if convert is not None:
        state, note = convert(state, file)
    with parameters_on_meta():
        module = _make(model_cls, config, spec)
    load_into(module, state, str(file))
    return module.to(device=spec.device, dtype=spec.dtype).eval(), note
