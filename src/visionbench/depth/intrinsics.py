"""Focal length: from EXIF, from the user, or from the model, and what a known focal length does to depth.

Conventions (also in docs/depth.md):
- focal lengths are in pixels of the image as the model sees it (after EXIF orientation);
- the EXIF 35 mm equivalent converts by the *diagonal*: f_px = f35 * hypot(W, H) / hypot(36, 24),
  as apple/ml-depth-pro does; the crop factor is defined on the diagonal, and for 3:2 images this equals
  f35 / 36 * long side. It is the same for a photo and its rotated copy;
- the field of view is horizontal: fov = 2 atan(W / (2 f)).
DepthPro predicts canonical inverse depth c and turns it into metres with a focal length: depth = f / (W * c);
a known focal length therefore sets the depth scale (see depth/predict.py).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from PIL import Image

FocalSource = Literal["cli", "exif", "model", "assumed", "none"]
EXIF_IFD = 0x8769
FOCAL_35MM_TAG = 0xA405  # FocalLengthIn35mmFilm
FILM_DIAGONAL_MM = math.hypot(36.0, 24.0)


def exif_focal_35mm(path: str | Path) -> float | None:
    """The 35 mm equivalent focal length (mm) from a file's EXIF, or None (absent, zero, unreadable)."""
    try:
        with Image.open(path) as im:
            value = im.getexif().get_ifd(EXIF_IFD).get(FOCAL_35MM_TAG)
    except Exception:  # noqa: BLE001 - EXIF is a bonus; a broken tag never fails an image
        return None
    try:
        f35 = float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    return f35 if f35 and f35 > 0 and math.isfinite(f35) else None


def focal_px_from_35mm(f35_mm: float, width: int, height: int) -> float:
    """35 mm equivalent (mm) -> pixels, diagonal convention (see module docstring)."""
    return f35_mm * math.hypot(width, height) / FILM_DIAGONAL_MM


def fov_deg_from_focal(focal_px: float, width: int) -> float:
    """Horizontal field of view in degrees."""
    return math.degrees(2.0 * math.atan(0.5 * width / focal_px))


def focal_from_fov_deg(fov_deg: float, width: int) -> float:
    return 0.5 * width / math.tan(math.radians(0.5 * fov_deg))


def choose_focal(
    *, cli_px: float | None, exif_35mm: float | None, model_px: float | None, width: int, height: int
) -> tuple[float | None, FocalSource]:
    """Known intrinsics beat guessed ones: --focal-px, then EXIF, then the model's FOV head."""
    if cli_px is not None:
        return float(cli_px), "cli"
    if exif_35mm is not None:
        return focal_px_from_35mm(exif_35mm, width, height), "exif"
    if model_px is not None:
        return float(model_px), "model"
    return None, "none"
