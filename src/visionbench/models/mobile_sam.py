"""MobileSAM (ultralytics `build_mobile_sam`): TinyViT image encoder + SAM prompt encoder and mask decoder.

`SAMModel` has no forward (its predictor calls the parts), so `PromptedSam` joins them, adding no
parameters: image + point prompts -> mask logits. Default prompt: one point at the image centre.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from visionbench.models.base import Batch, Prediction, VisionModel
from visionbench.models.card import ModelCard
from visionbench.models.registry import BuildSpec, register
from visionbench.models.ultralytics_common import load_ultralytics_weights

PIXEL_MEAN = (123.675, 116.28, 103.53)  # SAM normalises 0-255 pixels
PIXEL_STD = (58.395, 57.12, 57.375)


class PromptedSam(nn.Module):
    """image [B,3,S,S] + points [B,P,2] (input pixels) + labels [B,P] -> (mask logits [B,1,h,w], iou [B,1])."""

    def __init__(self, sam: nn.Module) -> None:
        super().__init__()
        self.image_encoder = sam.image_encoder
        self.prompt_encoder = sam.prompt_encoder
        self.mask_decoder = sam.mask_decoder

    def forward(
        self, images: torch.Tensor, point_coords: torch.Tensor, point_labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        embeddings = self.image_encoder(images)
        masks, scores = [], []
        for i in range(images.shape[0]):  # the decoder pairs one image with its own prompts
            sparse, dense = self.prompt_encoder(
                points=(point_coords[i : i + 1], point_labels[i : i + 1]), boxes=None, masks=None
            )
            m, s = self.mask_decoder(
                image_embeddings=embeddings[i : i + 1],
                image_pe=self.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=False,
            )
            masks.append(m)
            scores.append(s)
        return torch.cat(masks), torch.cat(scores)


class MobileSamModel(VisionModel):
    """As ultralytics' SAM predictor: its letterbox (long side to the input size, padded bottom-right
    with grey 114), then normalised; prompts scaled by the same ratio; default point at the centre."""

    def preprocess(self, images: list[Image.Image], points: list[tuple[float, float]] | None = None) -> Batch:
        from ultralytics.data.augment import LetterBox

        s = self.input_size
        letterbox = LetterBox((s, s), auto=False, center=False)
        mean = torch.tensor(PIXEL_MEAN).view(3, 1, 1)
        std = torch.tensor(PIXEL_STD).view(3, 1, 1)
        batch, coords, scales = [], [], []
        for i, im in enumerate(images):
            scale = min(s / im.width, s / im.height)
            nw, nh = int(round(im.width * scale)), int(round(im.height * scale))
            bgr = np.ascontiguousarray(np.asarray(im.convert("RGB"))[..., ::-1])
            rgb = np.ascontiguousarray(letterbox(image=bgr)[..., ::-1])
            x = (torch.from_numpy(rgb).permute(2, 0, 1).float() - mean) / std
            batch.append(x)
            px, py = points[i] if points else (im.width / 2, im.height / 2)
            coords.append([[px * scale, py * scale]])
            scales.append((nh, nw))
        inputs = {
            "images": torch.stack(batch).to(self.device, self.dtype),
            "point_coords": torch.tensor(coords, device=self.device, dtype=self.dtype),
            "point_labels": torch.ones(len(images), 1, device=self.device, dtype=torch.int64),
        }
        return Batch(inputs, [(im.height, im.width) for im in images], {"resized": scales})

    def postprocess(self, outputs: Any, batch: Batch) -> list[Prediction]:
        logits, scores = outputs
        s = self.input_size
        preds = []
        for i, (h, w) in enumerate(batch.sizes):
            nh, nw = batch.extras.get("resized", [(s, s)] * batch.batch_size)[i]
            up = F.interpolate(logits[i : i + 1].float(), (s, s), mode="bilinear", align_corners=False)
            up = F.interpolate(up[..., :nh, :nw], (h, w), mode="bilinear", align_corners=False)
            preds.append(
                Prediction(task=self.card.task, masks=(up[0] > 0).cpu().numpy(), scores=scores[i].float().cpu().numpy())
            )
        return preds

    def example_batch(self, batch_size: int = 1, device: torch.device | str | None = None) -> Batch:
        s, dev = self.input_size, device or self.device
        inputs = {
            "images": torch.randn(batch_size, 3, s, s, device=dev, dtype=self.dtype),
            "point_coords": torch.full((batch_size, 1, 2), s / 2, device=dev, dtype=self.dtype),
            "point_labels": torch.ones(batch_size, 1, device=dev, dtype=torch.int64),
        }
        return Batch(inputs, [(s, s)] * batch_size)


def _build(spec: BuildSpec) -> VisionModel:
    from ultralytics.models.sam.build import build_mobile_sam

    def make() -> nn.Module:
        return PromptedSam(build_mobile_sam(checkpoint=None)).eval()

    module, info = load_ultralytics_weights(spec, make, "mobile_sam.pt")
    return MobileSamModel.from_spec(spec, module.to(device=spec.device, dtype=spec.dtype), info)


register(
    ModelCard(
        name="mobile-sam",
        task="promptable-segment",
        library="ultralytics",
        architecture="build_mobile_sam",
        params=10_130_092,
        input_size=1024,
        mean=tuple(m / 255 for m in PIXEL_MEAN),
        std=tuple(s / 255 for s in PIXEL_STD),
        license="Apache-2.0",
        paper="https://arxiv.org/abs/2306.14289",
        weights_source="mobile_sam.pt",
        description="MobileSAM: promptable masks, TinyViT encoder + SAM decoder",
    )  # fmt: skip
)(_build)
