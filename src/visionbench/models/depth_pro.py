"""Apple DepthPro (transformers `DepthProForDepthEstimation`): metric depth plus a field-of-view head.

Three DINOv2 ViT-L/16 encoders at 384 px (patch, image, FOV) see a 1536 px input as 35 overlapping
patches at three scales (1 + 3x3 + 5x5). Output: depth in metres, FOV in degrees, focal length in px.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import torch
from PIL import Image

from visionbench.errors import UnsupportedOptionError
from visionbench.models import depth_pro_checkpoint
from visionbench.models.base import Batch, Prediction, VisionModel
from visionbench.models.card import ModelCard
from visionbench.models.hf_common import adopt_folder_processor, build_transformers
from visionbench.models.registry import BuildSpec, register

IMAGENET_STANDARD = (0.5, 0.5, 0.5)
DINOV2_L16 = dict(
    model_type="dinov2", num_hidden_layers=24, patch_size=16, hidden_size=1024,
    num_attention_heads=16, image_size=384, use_mask_token=False,
)  # fmt: skip
# Tiny but complete: same 35-patch tiling (patch_size 64 of a 256 px input), two-layer encoders.
DINOV2_TINY = dict(
    model_type="dinov2", num_hidden_layers=2, patch_size=16, hidden_size=32,
    num_attention_heads=2, image_size=64, use_mask_token=False,
)  # fmt: skip


def depth_pro_config(tiny: bool = False, use_fov_model: bool = True) -> Any:
    from transformers import DepthProConfig

    enc = DINOV2_TINY if tiny else DINOV2_L16
    small = dict(
        patch_size=64, fusion_hidden_size=16, intermediate_hook_ids=[1, 0], intermediate_feature_dims=[16, 16],
        scaled_images_feature_dims=[32, 32, 16],
    )  # fmt: skip
    return DepthProConfig(
        patch_model_config=enc, image_model_config=enc, fov_model_config=enc, use_fov_model=use_fov_model,
        **(small if tiny else {}),
    )  # fmt: skip


def resize_bilinear(image: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    """[1, 3, H, W] float32 in 0..255: the processor's resize (bilinear, half-pixel, no antialiasing)."""
    hwc = torch.from_numpy(np.array(image, dtype=np.uint8, copy=True))
    nchw = hwc.permute(2, 0, 1).unsqueeze(0).float()
    out = torch.nn.functional.interpolate(nchw, size=size, mode="bilinear", align_corners=False, antialias=False)
    return out.contiguous()


class DepthProModel(VisionModel):
    """DepthPro with the transformers image processor (normalise, then resize to the input size)."""

    @cached_property
    def processor(self) -> Any:
        from transformers import DepthProImageProcessor

        s = self.input_size
        return DepthProImageProcessor(size={"height": s, "width": s})

    def preprocess(self, images: list[Image.Image]) -> Batch:
        """The processor's numbers at half its cost: bilinear weights sum to one, so normalising commutes
        with the resize, and resizing the uint8 photo first touches the full-size image once."""
        s = self.input_size
        resized = [resize_bilinear(im, (s, s)) for im in images]
        mean = torch.tensor(self.processor.image_mean).view(1, 3, 1, 1)
        std = torch.tensor(self.processor.image_std).view(1, 3, 1, 1)
        pixels = torch.cat(resized).mul_(self.processor.rescale_factor).sub_(mean).div_(std)
        sizes = [(im.height, im.width) for im in images]
        return Batch({"pixel_values": pixels.to(self.device, self.dtype)}, sizes)

    def postprocess(self, outputs: Any, batch: Batch) -> list[Prediction]:
        outputs.predicted_depth = outputs.predicted_depth.float()
        if outputs.field_of_view is not None:
            outputs.field_of_view = outputs.field_of_view.float()
        results = self.processor.post_process_depth_estimation(outputs, target_sizes=batch.sizes)
        preds = []
        for r in results:
            fov, focal = r.get("field_of_view"), r.get("focal_length")
            preds.append(
                Prediction(
                    task=self.card.task,
                    depth=r["predicted_depth"].detach().float().cpu().numpy(),
                    depth_kind="metric",
                    fov_deg=None if fov is None else float(fov),
                    focal_px=None if focal is None else float(focal),
                )
            )
        return preds

    def components(self) -> dict[str, list[str]]:
        parts = {
            "patch encoder": ["depth_pro.encoder.patch_encoder"],
            "image encoder": ["depth_pro.encoder.image_encoder"],
            "neck": ["depth_pro.neck"],
            "fusion": ["fusion_stage"],
            "head": ["head"],
        }
        if getattr(self.module, "fov_model", None) is not None:
            parts["fov"] = ["fov_model"]
        return parts

    def token_layout(self, batch: Batch | None = None) -> dict[str, Any] | None:
        enc = self.module.config.patch_model_config
        side = enc.image_size // enc.patch_size
        return {
            "prefix_tokens": 1,
            "grid": (side, side),
            "module_prefixes": [
                "depth_pro.encoder.patch_encoder",
                "depth_pro.encoder.image_encoder",
                "fov_model.fov_encoder",
            ],
            # the patch encoder's batch axis holds 35 patches per image: 1 + 3x3 + 5x5 by scale
            "patch_scales": _patch_scales(self.module.config),
        }


def _patch_scales(config: Any) -> list[str]:
    """Label of each patch, e.g. 'scale 0.25 (1x1) #0', in batch order (transformers puts high resolution first)."""
    groups: list[list[str]] = []
    size = config.patch_size / min(config.scaled_images_ratios)  # full input size in px
    for ratio, overlap in zip(config.scaled_images_ratios, config.scaled_images_overlap_ratios, strict=True):
        side_px = size * ratio
        stride = config.patch_size * (1 - overlap)
        n = max(1, int(round((side_px - config.patch_size) / stride)) + 1) if side_px > config.patch_size else 1
        groups.append([f"scale {ratio:g} ({n}x{n}) #{i}" for i in range(n * n)])
    return [label for group in reversed(groups) for label in group]


def _apple_layout(state: dict[str, torch.Tensor], file: Any) -> tuple[dict[str, torch.Tensor], str]:
    """Apple's depth_pro.pt (ml-depth-pro names) mapped onto transformers' names; other files as they are."""
    if not depth_pro_checkpoint.is_original(state):
        return state, ""
    return depth_pro_checkpoint.original_to_hf(state, str(file)), " (Apple's ml-depth-pro layout, names mapped)"


def _builder(tiny: bool, use_fov: bool = True) -> Any:
    def build(spec: BuildSpec) -> VisionModel:
        from transformers import DepthProForDepthEstimation

        config = depth_pro_config(tiny=tiny, use_fov_model=spec.overrides.get("use_fov_model", use_fov))
        smallest = int(config.patch_size / min(config.scaled_images_ratios))
        if spec.input_size < smallest:
            raise UnsupportedOptionError(
                f"--input-size {spec.input_size}: {spec.card.name} needs at least {smallest} px (its smallest scale, "
                f"{min(config.scaled_images_ratios):g}x, must still fill one {config.patch_size} px encoder patch)"
            )
        module, info, folder = build_transformers(
            spec, DepthProForDepthEstimation, config, None if tiny else spec.card.weights_source, _apple_layout
        )
        model = DepthProModel.from_spec(spec, module, info)
        if folder is not None:
            from transformers import DepthProImageProcessor

            adopt_folder_processor(model, folder, DepthProImageProcessor, spec)
        return model

    return build


_COMMON = dict(
    task="depth-metric", library="transformers", architecture="DepthProForDepthEstimation",
    mean=IMAGENET_STANDARD, std=IMAGENET_STANDARD, license="apple-amlr",
    paper="https://arxiv.org/abs/2410.02073",
)  # fmt: skip

register(
    ModelCard(
        name="depthpro",
        params=951_991_330,
        input_size=1536,
        weights_source="apple/DepthPro-hf",
        description="Apple DepthPro: metric depth + field of view, 3x DINOv2 ViT-L/16",
        **_COMMON,
    )  # fmt: skip
)(_builder(tiny=False))
register(
    ModelCard(
        name="depthpro-tiny",
        params=None,
        input_size=256,
        hidden=True,
        description="DepthPro architecture at test size (2-layer, width-32 encoders)",
        **_COMMON,
    )  # fmt: skip
)(_builder(tiny=True))
