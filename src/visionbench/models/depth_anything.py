"""Depth Anything V2 (transformers `DepthAnythingForDepthEstimation`, DINOv2 backbone, patch 14).

Relative models predict inverse depth up to an unknown scale and shift. `max_depth` stays at the
config default: setting it to None crashes the forward.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from visionbench.models.base import Batch, VisionModel
from visionbench.models.card import ModelCard
from visionbench.models.hf_common import HFDepthModel, adopt_folder_processor, build_transformers
from visionbench.models.registry import BuildSpec, register

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# name: (hidden, layers, heads, out_indices, fusion, neck, hub repo, license, exact params)
_V2 = "Depth-Anything-V2"
VARIANTS: dict[str, tuple[Any, ...]] = {
    "small": (384, 12, 6, [3, 6, 9, 12], 64, [48, 96, 192, 384], f"{_V2}-Small-hf", "apache-2.0", 24_785_089),
    "base": (768, 12, 12, [3, 6, 9, 12], 128, [96, 192, 384, 768], f"{_V2}-Base-hf", "cc-by-nc-4.0", 97_470_785),
    "large": (
        1024, 24, 16, [5, 12, 18, 24], 256, [256, 512, 1024, 1024], f"{_V2}-Large-hf", "cc-by-nc-4.0", 335_315_649
    ),
    "tiny": (32, 4, 2, [1, 2, 3, 4], 16, [8, 16, 32, 32], None, "apache-2.0", None),
}  # fmt: skip


def depth_anything_config(variant: str) -> Any:
    from transformers import DepthAnythingConfig, Dinov2Config

    hidden, layers, heads, out_indices, fusion, neck, *_ = VARIANTS[variant]
    backbone = Dinov2Config(
        hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, out_indices=out_indices,
        patch_size=14, image_size=518, reshape_hidden_states=False,
    )  # fmt: skip
    return DepthAnythingConfig(
        backbone_config=backbone, fusion_hidden_size=fusion, neck_hidden_sizes=neck,
        reassemble_hidden_size=hidden, head_hidden_size=32 if variant != "tiny" else 8,
    )  # fmt: skip


class DepthAnythingModel(HFDepthModel):
    """Depth Anything with the DPT processor its model cards use: keep aspect, multiple of 14, bicubic."""

    @cached_property
    def processor(self) -> Any:
        from transformers import DPTImageProcessor

        s = self.input_size
        return DPTImageProcessor(
            do_resize=True, size={"height": s, "width": s}, keep_aspect_ratio=True, ensure_multiple_of=14,
            resample=3, do_pad=False, image_mean=list(IMAGENET_MEAN), image_std=list(IMAGENET_STD),
        )  # fmt: skip

    def preprocess(self, images: list[Image.Image]) -> Batch:
        tensors = [self.processor(images=im, return_tensors="pt")["pixel_values"] for im in images]
        h = max(t.shape[-2] for t in tensors)
        w = max(t.shape[-1] for t in tensors)
        # images of other aspect ratios are resized to the batch's common shape (still multiples of 14)
        tensors = [t if t.shape[-2:] == (h, w) else F.interpolate(t, (h, w), mode="bicubic") for t in tensors]
        pixels = torch.cat(tensors).to(self.device, self.dtype)
        return Batch({"pixel_values": pixels}, [(im.height, im.width) for im in images])

    def example_batch(self, batch_size: int = 1, device: torch.device | str | None = None) -> Batch:
        return super().example_batch(batch_size, device, side=self.input_size - self.input_size % 14)

    def components(self) -> dict[str, list[str]]:
        return {"backbone": ["backbone"], "neck": ["neck"], "head": ["head"]}

    def token_layout(self, batch: Batch | None = None) -> dict[str, Any] | None:
        if batch is not None:
            h, w = batch.inputs["pixel_values"].shape[-2:]
        else:
            h = w = self.input_size - self.input_size % 14
        return {"prefix_tokens": 1, "grid": (h // 14, w // 14), "module_prefixes": ["backbone"]}


def _builder(variant: str) -> Any:
    def build(spec: BuildSpec) -> VisionModel:
        from transformers import DepthAnythingForDepthEstimation

        config = depth_anything_config(variant)
        module, info, folder = build_transformers(
            spec, DepthAnythingForDepthEstimation, config, spec.card.weights_source
        )
        model = DepthAnythingModel.from_spec(spec, module, info)
        if folder is not None:
            from transformers import DPTImageProcessor

            adopt_folder_processor(model, folder, DPTImageProcessor, spec)
        return model

    return build


for _variant, (*_, _repo, _license, _params) in VARIANTS.items():
    _tiny = _variant == "tiny"
    register(
        ModelCard(
            name=f"depth-anything-v2-{_variant}",
            task="depth-relative",
            library="transformers",
            architecture="DepthAnythingForDepthEstimation",
            params=_params,
            input_size=98 if _tiny else 518,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            license=_license,
            paper="https://arxiv.org/abs/2406.09414",
            weights_source=f"depth-anything/{_repo}" if _repo else None,
            hidden=_tiny,
            description=f"Depth Anything V2 {_variant.capitalize()}: relative inverse depth, DINOv2 + DPT",
        )  # fmt: skip
    )(_builder(_variant))
