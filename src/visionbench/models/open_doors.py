"""The open doors: `hf:<repo id or folder>` (any transformers depth-estimation model) and
`ultralytics:<yaml or checkpoint>` (any ultralytics detect / segment / pose model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from visionbench.errors import UnknownModelError, UnsupportedOptionError, WeightsError
from visionbench.models.base import Batch, Prediction, VisionModel, WeightsInfo, file_digests
from visionbench.models.card import ModelCard
from visionbench.models.checkpoints import torch_load
from visionbench.models.depth_anything import IMAGENET_MEAN, IMAGENET_STD
from visionbench.models.hf_common import build_transformers, folder_info
from visionbench.models.registry import BuildSpec, register
from visionbench.models.ultralytics_yaml import load_model_yaml
from visionbench.models.weights import find_hf_snapshot, offline_hint, snapshot_missing
from visionbench.models.yolo import TASK_CLASSES, YoloModel, build_yolo_module, fuse, meta_copy

_OPEN = dict(mean=IMAGENET_MEAN, std=IMAGENET_STD, license="see the model's own card", params=None)


class HFDepthModel(VisionModel):
    """Any transformers depth model, with the image processor saved next to its weights."""

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

    def example_batch(self, batch_size: int = 1, device: torch.device | str | None = None) -> Batch:
        s = self.input_size
        pixels = torch.randn(batch_size, 3, s, s, device=device or self.device, dtype=self.dtype)
        return Batch({"pixel_values": pixels}, [(s, s)] * batch_size)


def _hf_folder(target: str) -> tuple[Path, str | None]:
    """A local model folder, or a hub snapshot (`hf:<repo>` or `hf:<repo>@<revision>`), and its revision."""
    local = Path(target).expanduser()
    if local.is_dir():
        missing = snapshot_missing(local)
        if missing:
            raise WeightsError(f"hf:{target}: folder has no {missing}")
        return local, None
    if local.exists():
        raise WeightsError(f"hf:{target}: is a file; hf: takes a model folder or a hub repo id")
    repo, _, revision = target.partition("@")
    folder, why = find_hf_snapshot(repo, revision or None)
    if folder is None:
        raise UnknownModelError(
            f"hf:{target}: not a local folder; {why} (download it once where the hub is reachable{offline_hint()})"
        )
    return folder, revision or None


@register(
    ModelCard(
        name="hf:",
        task="depth-relative",
        library="transformers",
        architecture="AutoModelForDepthEstimation",
        input_size=518,
        hidden=True,
        description="any transformers depth model",
        **_OPEN,
    )  # fmt: skip
)
def build_hf(spec: BuildSpec) -> VisionModel:
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation

    assert spec.target is not None
    folder, _ = _hf_folder(spec.target)
    config = _hf_config(folder, spec)
    metric = getattr(config, "depth_estimation_type", "relative") == "metric" or config.model_type == "depth_pro"
    card = spec.card.model_copy(
        update={
            "name": f"hf:{spec.target}",
            "task": "depth-metric" if metric else "depth-relative",
            "architecture": (config.architectures or ["AutoModelForDepthEstimation"])[0],
        }  # fmt: skip
    )
    spec.card = card
    weights = spec.weights if spec.weights.kind != "auto" else type(spec.weights)("path", folder)
    model_cls = AutoModelForDepthEstimation
    if weights.kind == "random":
        model_cls = _FromConfig(AutoModelForDepthEstimation, spec.trust_remote_code)
    module, info, _ = build_transformers(BuildSpec(**{**spec.__dict__, "weights": weights}), model_cls, config, None)
    if weights.path == folder:
        info = folder_info(f"hf {spec.target} ({folder})", folder)
    model = HFDepthModel(card, module, info, input_size=spec.input_size, device=spec.device, dtype=spec.dtype)
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
        text = str(exc).strip().splitlines()
        reason = text[0] if text else type(exc).__name__
        raise WeightsError(f"{path}: cannot use this config ({reason})") from exc


class _FromConfig:
    """Adapter so `build_transformers` can call `cls(config)` on an Auto class."""

    def __init__(self, auto: Any, trust: bool) -> None:
        self.auto, self.trust = auto, trust

    def __call__(self, config: Any) -> Any:
        return self.auto.from_config(config, trust_remote_code=self.trust)


@register(
    ModelCard(
        name="ultralytics:",
        task="detect",
        library="ultralytics",
        architecture="ultralytics yaml",
        input_size=640,
        hidden=True,
        description="any ultralytics detect/segment/pose model",
        **{**_OPEN, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)},
    )  # fmt: skip
)
def build_ultralytics(spec: BuildSpec) -> VisionModel:
    from ultralytics.nn.tasks import guess_model_task

    assert spec.target is not None
    target = spec.target
    path = Path(target).expanduser()
    if path.suffix in {".yaml", ".yml"}:
        cfg = load_model_yaml(target, trust_remote_code=spec.trust_remote_code)
        task = guess_model_task(cfg)
        if task not in TASK_CLASSES:
            raise UnsupportedOptionError(
                f"ultralytics:{target}: task {task!r} is not supported (detect, segment, pose)"
            )
        make = lambda: build_yolo_module(cfg, task)  # noqa: E731
        spec.card = spec.card.model_copy(update={"name": f"ultralytics:{target}", "task": task, "architecture": target})
        if spec.device.type == "meta":
            module, info = meta_copy(fuse(make(), spec)), WeightsInfo("random", "meta (no weights)")
        else:
            from visionbench.models.ultralytics_common import load_ultralytics_weights

            module, info = load_ultralytics_weights(spec, make, None)
            module = fuse(module, spec).to(spec.device, spec.dtype).eval()
    elif path.suffix == ".pt":
        if not path.is_file():
            raise WeightsError(f"ultralytics:{target}: no such file")
        module = _whole_checkpoint(path, spec)
        task = guess_model_task(module)
        if task not in TASK_CLASSES:
            raise UnsupportedOptionError(
                f"ultralytics:{target}: task {task!r} is not supported (detect, segment, pose)"
            )
        spec.card = spec.card.model_copy(
            update={"name": f"ultralytics:{target}", "task": task, "architecture": path.name}
        )
        info = WeightsInfo("pretrained", f"file {path}", files=file_digests([path]))
        module = fuse(module, spec)
        module = (meta_copy(module) if spec.device.type == "meta" else module.to(spec.device, spec.dtype)).eval()
    else:
        raise UnknownModelError(
            f"ultralytics:{target}: expected a model yaml (e.g. yolo11s.yaml) or an existing .pt file"
        )
    return YoloModel(spec.card, module, info, input_size=spec.input_size, device=spec.device, dtype=spec.dtype)


def _whole_checkpoint(path: Path, spec: BuildSpec) -> torch.nn.Module:
    """An ultralytics .pt pickles its model: read with the stock-class allow-list unless trusted."""
    ckpt = torch_load(path, trust_remote_code=spec.trust_remote_code)
    model = (ckpt.get("ema") or ckpt.get("model")) if isinstance(ckpt, dict) else ckpt
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "model"):
        raise WeightsError(
            f"{path}: holds no ultralytics model (only tensors?); use ultralytics:<model>.yaml --weights {path}"
        )
    return model.float()
