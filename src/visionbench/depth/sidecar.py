"""One image's sidecar (every engine writes the same): what made the depth, its units, the focal length."""

from __future__ import annotations

from typing import Any

from visionbench.depth import intrinsics
from visionbench.depth.loader import LoadedImage
from visionbench.depth.options import DepthOptions
from visionbench.depth.outputs import depth_stats, weights_record
from visionbench.depth.predict import has_fov_head, is_depth_pro
from visionbench.models.base import VisionModel


def _choose_focal(item: LoadedImage, opts: DepthOptions, predicted_px: float | None) -> tuple[float | None, str]:
    w, h = item.image.size  # type: ignore[union-attr]
    exif = None if opts.ignore_exif else item.exif_focal_35mm
    return intrinsics.choose_focal(cli_px=opts.focal_px, exif_35mm=exif, model_px=predicted_px, width=w, height=h)


def known_focal_px(item: LoadedImage, opts: DepthOptions) -> float | None:
    """The focal length (px) from --focal-px or EXIF, or None when only a model could guess it."""
    focal, source = _choose_focal(item, opts, None)
    return focal if source in {"cli", "exif"} else None


def focal_facts(
    model: VisionModel, item: LoadedImage, opts: DepthOptions, predicted_px: float | None
) -> dict[str, Any]:
    """The sidecar's focal-length fields: which focal length was used, where it came from, what the model said."""
    w = item.image.width  # type: ignore[union-attr]
    focal, source = _choose_focal(item, opts, predicted_px)
    facts: dict[str, Any] = {}
    if is_depth_pro(model):
        if focal is None and has_fov_head(model):  # the head gave 0, a negative or a nan field of view
            facts["focal_warning"] = "the FOV head's field of view is degenerate: depth is not meaningful (--focal-px)"
        elif focal is None:  # no FOV head: transformers makes depth with f = W
            focal, source = float(w), "assumed"
        facts["depth_uses_focal_px"] = focal  # DepthPro's metric depth is computed with this focal length
    return {
        "focal_px": focal,
        "focal_source": source,
        "fov_deg": intrinsics.fov_deg_from_focal(focal, w) if focal else None,
        "focal_px_predicted": predicted_px,
        "fov_deg_predicted": intrinsics.fov_deg_from_focal(predicted_px, w) if predicted_px else None,
        "exif_focal_35mm": item.exif_focal_35mm,
        **facts,
    }


def image_sidecar(model: VisionModel, item: LoadedImage, depth: Any, predicted_focal_px: float | None,
                  opts: DepthOptions, runtime_ms: float, source: str | None = None) -> dict[str, Any]:  # fmt: skip
    """One image's sidecar fields (every engine writes these): what made the depth, its units, the focal length."""
    kind = "metric" if model.card.task == "depth-metric" else "relative-inverse"
    photo = item.image
    assert photo is not None
    return {
        "source": str(item.path) if source is None else source,
        "model": model.name,
        "weights_mode": model.weights.mode,
        "weights_source": model.weights.source,
        "weights_warning": model.weights.warning,
        "weights": weights_record(model),
        "depth_kind": kind,
        "depth_unit": "metres" if kind == "metric" else "relative inverse depth (larger is nearer, no unit)",
        "input_width": photo.width,
        "input_height": photo.height,
        "model_input_size": model.input_size,
        "output_width": int(depth.shape[1]),
        "output_height": int(depth.shape[0]),
        "depth": depth_stats(depth),
        **focal_facts(model, item, opts, predicted_focal_px),
        "runtime_ms": runtime_ms,
        "decode_ms": item.decode_ms,
        "device": str(model.device),
        "dtype": str(model.dtype).removeprefix("torch."),
    }
