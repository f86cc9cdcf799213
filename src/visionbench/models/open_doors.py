"""The open doors: `hf:<repo id or folder>` (any transformers depth-estimation model) and
`ultralytics:<yaml or checkpoint>` (any ultralytics detect / segment / pose model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from visionbench.errors import UnknownModelError, UnsupportedOptionError, WeightsError
from visionbench.models.base import VisionModel, WeightsInfo, file_digests, first_line
from visionbench.models.card import ModelCard
from visionbench.models.depth_anything import IMAGENET_MEAN, IMAGENET_STD
from visionbench.models.hf_common import HFDepthModel, build_transformers, folder_info
from visionbench.models.registry import BuildSpec, register
from visionbench.models.ultralytics_yaml import load_model_yaml
from visionbench.models.weights import WeightsRequest, find_hf_snapshot, offline_hint, snapshot_missing, torch_load
from visionbench.models.yolo import TASK_CLASSES, build_yolo, build_yolo_module, yolo_model


def _door_card(name: str, **facts: Any) -> ModelCard:
    """A door's placeholder card; the built model's card says what it really is."""
    return ModelCard(name=name, hidden=True, license="see the model's own card", params=None, **facts)


def _hf_folder(target: str) -> Path:
    """A local model folder, or a hub snapshot (`hf:<repo>` or `hf:<repo>@<revision>`)."""
    local = Path(target).expanduser()
    if local.is_dir():
        missing = snapshot_missing(local)
        if missing:
            raise WeightsError(f"hf:{target}: folder has no {missing}")
        return local
    if local.exists():
        raise WeightsError(f"hf:{target}: is a file; hf: takes a model folder or a hub repo id")
    repo, _, revision = target.partition("@")
    folder, why = find_hf_snapshot(repo, revision or None)
    if folder is None:
        raise UnknownModelError(
            f"hf:{target}: not a local folder; {why} (download it once where the hub is reachable{offline_hint()})"
        )
    return folder


@register(
    _door_card(
        "hf:",
        task="depth-relative",
        library="transformers",
        architecture="AutoModelForDepthEstimation",
        input_size=518,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        description="any transformers depth model",
    )  # fmt: skip
)
def build_hf(spec: BuildSpec) -> VisionModel:
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation

    assert spec.target is not None
    folder = _hf_folder(spec.target)
    config = _hf_config(folder, spec)
    metric = getattr(config, "depth_estimation_type", "relative") == "metric" or config.model_type == "depth_pro"
    spec.card = spec.card.model_copy(
        update={
            "name": f"hf:{spec.target}",
            "task": "depth-metric" if metric else "depth-relative",
            "architecture": (config.architectures or ["AutoModelForDepthEstimation"])[0],
        }  # fmt: skip
    )
    if spec.weights.kind == "auto":
        spec.weights = WeightsRequest("path", folder)
    module, info, _ = build_transformers(spec, AutoModelForDepthEstimation, config, None)
    if spec.weights.path == folder and spec.device.type != "meta":
        info = folder_info(f"hf {spec.target} ({folder})", folder)
    model = HFDepthModel.from_spec(spec, module, info)
    try:
        model.processor = AutoImageProcessor.from_pretrained(str(folder), trust_remote_code=spec.trust_remote_code)
    except Exception:  # noqa: BLE001 - no processor saved: the DPT defaults most depth models use
        from transformers import DPTImageProcessor

        s = spec.input_size
        model.processor = DPTImageProcessor(
            size={"height": s, "width": s}, image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD
        )
    return model


def _hf_config(folder: Path, spec: BuildSpec) -> Any:
    """The folder's config, or one line saying why it cannot be used (corrupt, unknown type, remote code)."""
    import json

    from transformers import AutoConfig

    path = folder / "config.json"
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if text.strip() else {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{path}: not a readable JSON config ({type(exc).__name__}: {exc})") from exc
    if not isinstance(data, dict) or not data:
        raise WeightsError(f"{path}: empty config (no model_type)")
    if data.get("auto_map") and not spec.trust_remote_code:
        raise WeightsError(
            f"{path}: this model needs its own Python code (auto_map); pass --trust-remote-code only if you "
            "trust its source"
        )
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    model_type = data.get("model_type")
    if model_type is None or (model_type not in CONFIG_MAPPING_NAMES and not spec.trust_remote_code):
        raise WeightsError(
            f"{path}: model_type {model_type!r} is not one this transformers knows"
            + ("" if model_type is None else " (is transformers older than the model?)")
        )
    try:
        return AutoConfig.from_pretrained(str(folder), trust_remote_code=spec.trust_remote_code)
    except Exception as exc:  # noqa: BLE001 - unknown model_type, bad values: one line
        raise WeightsError(f"{path}: cannot use this config ({first_line(exc)})") from exc


@register(
    _door_card(
        "ultralytics:",
        task="detect",
        library="ultralytics",
        architecture="ultralytics yaml",
        input_size=640,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        description="any ultralytics detect/segment/pose model",
    )  # fmt: skip
)
def build_ultralytics(spec: BuildSpec) -> VisionModel:
    from ultralytics.nn.tasks import guess_model_task

    assert spec.target is not None
    target = spec.target
    path = Path(target).expanduser()
    if path.suffix in {".yaml", ".yml"}:
        cfg = load_model_yaml(target, trust_remote_code=spec.trust_remote_code)
        task, architecture = guess_model_task(cfg), target
    elif path.suffix == ".pt":
        if not path.is_file():
            raise WeightsError(f"ultralytics:{target}: no such file")
        module = _whole_checkpoint(path, spec)
        task, architecture = guess_model_task(module), path.name
    else:
        raise UnknownModelError(
            f"ultralytics:{target}: expected a model yaml (e.g. yolo11s.yaml) or an existing .pt file"
        )
    if task not in TASK_CLASSES:
        raise UnsupportedOptionError(f"ultralytics:{target}: task {task!r} is not supported (detect, segment, pose)")
    spec.card = spec.card.model_copy(
        update={"name": f"ultralytics:{target}", "task": task, "architecture": architecture}
    )
    if path.suffix == ".pt":
        return yolo_model(spec, module, WeightsInfo("pretrained", f"file {path}", files=file_digests([path])))
    return build_yolo(spec, lambda: build_yolo_module(cfg, task), None)


def _whole_checkpoint(path: Path, spec: BuildSpec) -> torch.nn.Module:
    """An ultralytics .pt pickles its model: read with the stock-class allow-list unless trusted."""
    ckpt = torch_load(path, trust_remote_code=spec.trust_remote_code)
    model = (ckpt.get("ema") or ckpt.get("model")) if isinstance(ckpt, dict) else ckpt
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "model"):
        raise WeightsError(
            f"{path}: holds no ultralytics model (only tensors?); use ultralytics:<model>.yaml --weights {path}"
        )
    return model.float()
