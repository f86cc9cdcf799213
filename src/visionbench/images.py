"""Reading images safely: one place that turns any file a user points at into an RGB PIL image or a
clear `BadInputError` (missing, empty, truncated, not an image, too many pixels).

EXIF orientation is applied first, so models see the photo the way a viewer shows it. Grayscale,
RGBA, palette and 16-bit images are converted to 8-bit RGB.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from visionbench.errors import BadInputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
# Pillow's error threshold (2x its 89.5 MP warning): the documented default, VISIONBENCH_MAX_PIXELS overrides.
DEFAULT_MAX_PIXELS = 2 * 89_478_485
_PILLOW_LIMIT = threading.Lock()  # Image.MAX_IMAGE_PIXELS is process-wide: one open at a time changes it


def max_pixels() -> int:
    """The pixel limit: `VISIONBENCH_MAX_PIXELS` or the default; commands call it first, so a typo fails at once."""
    raw = os.environ.get("VISIONBENCH_MAX_PIXELS", "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = 0
    if value <= 0:
        raise BadInputError(
            f"VISIONBENCH_MAX_PIXELS={raw!r}: must be a positive whole number of pixels "
            f"(default {DEFAULT_MAX_PIXELS:,})"
        )
    return value


def default_image_path() -> Path:
    """A real photo that ships with the installation (ultralytics' bus.jpg, 810x1080)."""
    import importlib.util

    spec = importlib.util.find_spec("ultralytics")
    if spec is None or spec.origin is None:
        raise BadInputError("no default image: ultralytics is not installed; pass --image PATH")
    return Path(spec.origin).parent / "assets" / "bus.jpg"


def sample_images() -> list[Path]:
    """Both photos shipped with ultralytics: bus.jpg (810x1080) and zidane.jpg (1280x720)."""
    folder = default_image_path().parent
    return [folder / "bus.jpg", folder / "zidane.jpg"]


def load_image(path: str | Path) -> Image.Image:
    """An 8-bit RGB image, EXIF-rotated, or a BadInputError naming the file and the reason.

    The limit is ours (`max_pixels()`), checked from the header before any pixel is decoded; Pillow's
    own bomb check is moved to twice that limit so its 89.5 MP warning never refuses an image first.
    """
    limit = max_pixels()
    path = Path(path)
    if not path.exists():
        raise BadInputError(f"{path}: no such file")
    if path.is_dir():
        raise BadInputError(f"{path}: is a folder, not an image")
    if path.stat().st_size == 0:
        raise BadInputError(f"{path}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with _open(path, limit) as im:
                if im.width * im.height > limit:
                    raise BadInputError(
                        f"{path}: {im.width}x{im.height} = {im.width * im.height:,} pixels is above the limit of "
                        f"{limit:,} (set VISIONBENCH_MAX_PIXELS to raise it)"
                    )
                im.load()
                return to_rgb(ImageOps.exif_transpose(im))
    except BadInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own text names its internal threshold (twice ours), not the limit the user set
        raise BadInputError(
            f"{path}: above the limit of {limit:,} pixels (set VISIONBENCH_MAX_PIXELS to raise it)"
        ) from exc
    except (UnidentifiedImageError, ImportError) as exc:  # ImportError: ultralytics' HEIF fallback, absent
        raise BadInputError(f"{path}: not an image Pillow can read") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadInputError(f"{path}: corrupt or truncated image ({exc})") from exc


def _open(path: Path, limit: int) -> Image.Image:
    """Open with Pillow's limit (it refuses at 2x) set to ours, so ours decides; only the header read is locked."""
    with _PILLOW_LIMIT:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = limit
        try:
            return Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def to_rgb(im: Image.Image) -> Image.Image:
    """Any mode to 8-bit RGB; 16-bit and float images are scaled by their own range, not clipped."""
    if im.mode == "RGB":
        return im
    if im.mode in {"I;16", "I;16B", "I;16L", "I", "F"}:
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        return Image.fromarray(arr.astype(np.uint8)).convert("RGB")
    if im.mode in {"RGBA", "LA", "PA"} or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")


def find_images(inputs: Iterable[str | Path]) -> list[Path]:
    """Image files from paths, folders (recursive) and text files listing paths, in a stable order."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item).expanduser()
        if not path.exists():
            raise BadInputError(f"{path}: no such file or folder")
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.suffix.lower() == ".txt":
            lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
            found += [(path.parent / ln) if not Path(ln).is_absolute() else Path(ln) for ln in lines]
        else:
            found.append(path)
    return found
