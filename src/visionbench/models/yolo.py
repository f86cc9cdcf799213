"""YOLO11 detect / segment / pose, run as ultralytics' predictor runs it: Conv+BN fused (`fuse=False`
keeps the trained module), its letterbox (rectangular when a batch shares one shape) and its NMS.
The card's parameter count is the published (unfused) one. Ultralytics' constructor runs a forward
pass (to find strides), so parameters cannot start on `meta`; these models are small.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from visionbench.errors import BadInputError
from visionbench.models.base import Batch, Prediction, VisionModel, WeightsInfo, first_line
from visionbench.models.card import ModelCard
from visionbench.models.registry import BuildSpec, register
from visionbench.models.ultralytics_common import load_ultralytics_weights
from visionbench.models.ultralytics_yaml import load_model_yaml

CONF_THRESHOLD = 0.25  # ultralytics' predict default
IOU_THRESHOLD = 0.7


class YoloModel(VisionModel):
    """Any ultralytics detection-family model: Detect, Segment or Pose head."""

    @property
    def variant(self) -> str:
        """`fused` (Conv+BN folded, as ultralytics' predictor runs it) or `unfused` (the trained module)."""
        is_fused = getattr(self.module, "is_fused", None)
        return "fused" if callable(is_fused) and is_fused() else "unfused"

    def preprocess(self, images: list[Image.Image]) -> Batch:
        from ultralytics.data.augment import LetterBox

        s = self.input_size
        # the predictor's rule: minimum rectangle when every image has one shape, else the full square
        same_shape = len({(im.width, im.height) for im in images}) == 1
        letterbox = LetterBox((s, s), auto=same_shape, stride=32)
        arrays = [letterbox(image=np.ascontiguousarray(np.asarray(im.convert("RGB"))[..., ::-1])) for im in images]
        stacked = np.stack(arrays)[..., ::-1].transpose(0, 3, 1, 2)  # BGR->RGB, BHWC->BCHW
        pixels = torch.from_numpy(np.ascontiguousarray(stacked)).to(self.device).to(self.dtype) / 255.0
        return Batch({"x": pixels}, [(im.height, im.width) for im in images])

    def forward(self, batch: Batch) -> Any:
        return self.module(batch.inputs["x"])

    def postprocess(self, outputs: Any, batch: Batch) -> list[Prediction]:
        from ultralytics.utils import ops
        from ultralytics.utils.nms import non_max_suppression

        head = self.module.model[-1]
        preds = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
        proto = None
        if isinstance(preds, (list, tuple)):  # segment: (detections, prototypes)
            preds, proto = preds[0], preds[1]
        dets = non_max_suppression(preds.float(), CONF_THRESHOLD, IOU_THRESHOLD, nc=len(self.module.names), max_det=300)
        img_shape = tuple(batch.inputs["x"].shape[-2:])
        results = []
        for i, det in enumerate(dets):
            h, w = batch.sizes[i]
            pred = Prediction(task=self.card.task)
            masks = None
            if proto is not None and len(det):
                masks = ops.process_mask(proto[i].float(), det[:, 6:], det[:, :4], img_shape, upsample=True)
                masks = ops.scale_masks(masks[None].float(), (h, w))[0] > 0.5
            boxes = ops.scale_boxes(img_shape, det[:, :4].clone(), (h, w))
            pred.boxes = boxes.cpu().numpy()
            pred.scores = det[:, 4].cpu().numpy()
            pred.classes = det[:, 5].cpu().numpy().astype(int)
            if self.card.task == "segment":
                pred.masks = masks.cpu().numpy() if masks is not None else np.zeros((0, h, w), bool)
            if self.card.task == "pose":
                kpt_shape = tuple(getattr(head, "kpt_shape", (17, 3)))
                kpts = det[:, 6:].reshape(len(det), *kpt_shape)
                pred.keypoints = ops.scale_coords(img_shape, kpts.clone(), (h, w)).cpu().numpy()
            results.append(pred)
        return results

    def example_batch(self, batch_size: int = 1, device: torch.device | str | None = None) -> Batch:
        s = self.input_size
        x = torch.rand(batch_size, 3, s, s, device=device or self.device, dtype=self.dtype)
        return Batch({"x": x}, [(s, s)] * batch_size)

    def components(self) -> dict[str, list[str]]:
        """Backbone, neck, head from the yaml's own sections (layer indices under `model.`)."""
        yaml = getattr(self.module, "yaml", {}) or {}
        n_backbone = len(yaml.get("backbone", []))
        n_total = len(self.module.model)
        return {
            "backbone": [f"model.{i}" for i in range(n_backbone)],
            "neck": [f"model.{i}" for i in range(n_backbone, n_total - 1)],
            "head": [f"model.{n_total - 1}"],
        }


TASK_CLASSES = {"detect": "DetectionModel", "segment": "SegmentationModel", "pose": "PoseModel"}


def build_yolo_module(cfg: dict[str, Any], task: str) -> nn.Module:
    """The module from a model dict that `load_model_yaml` returned (checked, or trusted by the user)."""
    import copy

    import ultralytics.nn.tasks as tasks

    cls = getattr(tasks, TASK_CLASSES[task])
    try:
        return cls(copy.deepcopy(cfg), verbose=False).eval()
    except Exception as exc:  # noqa: BLE001 - a yaml of the right shape that ultralytics cannot build
        what = f"ultralytics:{cfg.get('yaml_file', 'yaml')}"
        raise BadInputError(f"{what}: ultralytics cannot build it ({first_line(exc)})") from exc


def fuse(module: nn.Module, spec: BuildSpec) -> nn.Module:
    """Conv+BN folded as ultralytics' AutoBackend does before predicting, unless `fuse=False` was asked for."""
    if spec.overrides.get("fuse", True) and hasattr(module, "fuse"):
        module = module.fuse(verbose=False)
    return module


def meta_copy(module: nn.Module) -> nn.Module:
    """Parameters and buffers on `meta`; the strides stay real (read as numbers while building anchors)."""
    saved = {id(m): m.stride for m in module.modules() if isinstance(getattr(m, "stride", None), torch.Tensor)}
    module = module.to("meta")
    for m in module.modules():
        if id(m) in saved:
            m.stride = saved[id(m)]
    return module


def build_yolo(spec: BuildSpec, make: Any, checkpoint: str | None) -> VisionModel:
    """A YOLO from `make()` with its weights as `spec` asks (`checkpoint`: the release file `auto` looks for)."""
    return yolo_model(spec, *load_ultralytics_weights(spec, make, checkpoint))


def yolo_model(spec: BuildSpec, module: nn.Module, info: WeightsInfo) -> VisionModel:
    """Fused unless asked not to, then on the spec's device (shape-only on `meta`)."""
    module = fuse(module, spec)
    module = meta_copy(module) if spec.device.type == "meta" else module.to(device=spec.device, dtype=spec.dtype)
    return YoloModel.from_spec(spec, module, info)


def yolo_builder(yaml: str, task: str, checkpoint: str) -> Any:
    def build(spec: BuildSpec) -> VisionModel:
        cfg = load_model_yaml(yaml, trust_remote_code=spec.trust_remote_code)
        return build_yolo(spec, lambda: build_yolo_module(cfg, task), checkpoint)

    return build


for _suffix, _task, _params, _what in [
    ("", "detect", 2_624_080, "boxes, 80 COCO classes"),
    ("-seg", "segment", 2_876_848, "boxes + instance masks"),
    ("-pose", "pose", 2_908_507, "boxes + 17 body keypoints"),
]:
    _name = f"yolo11n{_suffix}"
    register(
        ModelCard(
            name=_name,
            task=_task,
            library="ultralytics",
            architecture=f"{_name}.yaml",
            params=_params,
            input_size=640,
            mean=(0.0, 0.0, 0.0),
            std=(1.0, 1.0, 1.0),
            license="AGPL-3.0",
            paper="https://docs.ultralytics.com/models/yolo11/",
            weights_source=f"{_name}.pt",
            description=f"YOLO11 nano {_task}: {_what}",
        )  # fmt: skip
    )(yolo_builder(f"{_name}.yaml", _task, f"{_name}.pt"))
