"""Pictures of one model's output on the run's first image: a reader of a depth benchmark wants to see the depth.

Drawn from the predictions the end-to-end loop already made (no extra forward) and written as PNGs into the
model's folder of the run, each atomically (`visionbench.files`):

- depth: `output-depth.png`, the map colourised as `visionbench depth` draws it (`depth.io.colourise`:
  inferno, near = the map's bright yellow end, far = its dark purple end, unknown black), with a scale in
  metres below a metric map and one in relative inverse depth (no unit) below a relative map; and
  `output-depth-side.png`, the photo beside it;
- detect / segment / pose: `output-<task>.png`, boxes with class names and scores, masks, keypoints and
  skeleton drawn on the photo by ultralytics' own `Results.plot()`, fed our `Prediction`;
- masks without boxes (MobileSAM): `output-mask.png`, the masks overlaid the same way.

`output-pictures.json` beside them holds what each picture shows (the colour range, how many detections
were drawn) and any drawing error: a picture that cannot be drawn is logged and recorded there, and the
model's figures stay.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from visionbench.depth import io as depth_io
from visionbench.files import write_bytes, write_json
from visionbench.images import load_image
from visionbench.models.base import Prediction

log = logging.getLogger("visionbench")

PICTURES_FILE = "output-pictures.json"
LONG_SIDE = 768  # px, the most a picture's long side has: readable in the report, small on disk
MAX_BOXES = 50  # the highest-scoring detections drawn: random weights can give hundreds, which hide the photo
CMAP = "inferno"  # the depth command's default colour map


def write_output_pictures(model: Any, image: Path, preds: list[Prediction], model_dir: Path) -> list[str]:
    """The pictures of `preds[0]` (the prediction for `image`) in `model_dir`; paths relative to the run folder.

    Never raises: a picture that fails is logged and recorded in PICTURES_FILE, the others are still drawn.
    Nothing is written for a prediction with nothing to draw (no depth, boxes or masks).
    """
    drawn: list[dict[str, Any]] = []
    errors: list[str] = []
    if not preds or not _drawings(preds[0]):
        return []
    pred = preds[0]
    try:
        source = load_image(image)  # as the model saw it (EXIF orientation applied): its pixels are pred's
    except Exception as exc:  # noqa: BLE001 - e.g. the photo removed since the loop read it
        source = None
        errors.append(f"photo: {_one_line(exc)}")
    if source is not None:
        photo = _fit(source)
        scale = (photo.width / source.width, photo.height / source.height)
        for shows, draw in _drawings(pred):
            try:
                for p in draw(pred, photo, scale, model):
                    write_bytes(model_dir / p.name, png_bytes(p.image, photo=p.photo))
                    facts = {k: _json_value(v) for k, v in p.facts.items()}
                    drawn.append({"file": f"{model_dir.name}/{p.name}", "shows": p.shows, "width": p.image.width,
                                  "height": p.image.height, **facts})  # fmt: skip
            except Exception as exc:  # noqa: BLE001 - a picture is never a reason to fail the model
                errors.append(f"{shows}: {_one_line(exc)}")
    for error in errors:
        log.warning("%s: an output picture was not drawn: %s", model_dir.name, error)
    try:
        write_json(model_dir / PICTURES_FILE, {"image": str(image), "pictures": drawn, "errors": errors})
    except Exception as exc:  # noqa: BLE001 - the folder full or gone: the log has it
        log.warning("%s: %s not written: %s", model_dir.name, PICTURES_FILE, _one_line(exc))
    return [d["file"] for d in drawn]


class Picture(NamedTuple):
    name: str  # file name in the model's folder
    shows: str  # depth, depth-side, detect, segment, pose, mask
    image: Image.Image
    facts: dict[str, Any]  # what it shows, for the report's caption
    photo: bool  # the photo is in it (its colours are dithered to a palette on disk)


Drawing = Callable[[Prediction, Image.Image, tuple[float, float], Any], list[Picture]]


def _drawings(pred: Prediction) -> list[tuple[str, Drawing]]:
    out: list[tuple[str, Drawing]] = []
    if pred.depth is not None:
        out.append(("depth", _depth_pictures))
    if pred.boxes is not None:
        out.append((pred.task, _detection_picture))
    elif pred.masks is not None:
        out.append(("mask", _detection_picture))
    return out


def _fit(photo: Image.Image) -> Image.Image:
    """The photo with its long side at most LONG_SIDE (never enlarged)."""
    scale = min(1.0, LONG_SIDE / max(photo.size))
    size = (max(1, round(photo.width * scale)), max(1, round(photo.height * scale)))
    return photo.convert("RGB") if size == photo.size else photo.convert("RGB").resize(size, Image.Resampling.LANCZOS)


def _depth_pictures(pred: Prediction, photo: Image.Image, scale: tuple[float, float], model: Any) -> list[Picture]:
    """The depth map at the photo's picture size, colourised with its scale, alone and beside the photo."""
    assert pred.depth is not None
    kind = pred.depth_kind or "relative-inverse"
    depth = _resize_depth(pred.depth, photo.size)
    lo, hi = depth_io.colour_range(depth_io.nearness(depth, kind))  # what colourise spans: 2nd-98th percentile
    if kind == "metric":
        picture = depth_io.colourise(depth, kind, CMAP)  # its scale in metres below
    else:
        picture = _with_relative_bar(depth_io.colourise(depth, kind, CMAP, scale_bar=False), lo, hi)
    facts: dict[str, Any] = {
        "depth_kind": kind, "cmap": CMAP, "near": "bright end of the colour map", "colour_lo": lo, "colour_hi": hi,
        "fov_deg": pred.fov_deg, "focal_px": pred.focal_px,
    }  # fmt: skip
    if kind == "metric" and lo > 0:
        facts["far_m"], facts["near_m"] = 1.0 / lo, 1.0 / hi
    side = depth_io.side_by_side(photo, picture)
    return [Picture("output-depth.png", "depth", picture, facts, False),
            Picture("output-depth-side.png", "depth-side", side, facts, True)]  # fmt: skip


def _resize_depth(depth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Depth (unknown pixels NaN) at `size` (width, height), area-averaged: an unknown pixel stays unknown."""
    d = np.where(np.isfinite(depth), depth, np.nan).astype(np.float32)
    if (d.shape[1], d.shape[0]) == size:
        return d
    return np.asarray(Image.fromarray(d, "F").resize(size, Image.Resampling.BOX), dtype=np.float32)


def _with_relative_bar(picture: Image.Image, lo: float, hi: float) -> Image.Image:
    """A strip under a relative map: the colour gradient (far left, near right) with its relative values.

    As `depth.io`'s metre scale, with the unit a relative model has: none (inverse depth up to scale and shift).
    """
    w, h = picture.size
    font_px = max(9, min(24, w // 40))
    bar_h, text_h = max(6, font_px), font_px + 4
    strip = Image.new("RGB", (w, bar_h + 2 * text_h + 4), (0, 0, 0))
    ramp = np.linspace(depth_io.FAR_INDEX, 255, w).round().astype(np.uint8)
    strip.paste(Image.fromarray(np.repeat(depth_io.colour_table(CMAP)[ramp][None], bar_h, axis=0), "RGB"), (0, 2))
    draw = ImageDraw.Draw(strip)
    font = _font(font_px)
    ticks = 5 if w >= 320 else 3 if w >= 120 else 2
    for i in range(ticks):
        frac = i / (ticks - 1)
        label = f"{lo + frac * (hi - lo):.3g}"
        x = int(frac * (w - 1))
        tw = draw.textlength(label, font=font)
        draw.line([(x, 2), (x, bar_h + 2)], fill=(255, 255, 255))
        draw.text((min(max(0, x - tw / 2), w - tw), bar_h + 3), label, fill=(255, 255, 255), font=font)
    title = "relative inverse depth (no unit): far left, near right"
    tw = draw.textlength(title, font=font)
    draw.text((max(0, (w - tw) / 2), bar_h + text_h + 3), title, fill=(255, 255, 255), font=font)
    out = Image.new("RGB", (w, h + strip.height))
    out.paste(picture, (0, 0))
    out.paste(strip, (0, h))
    return out


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed bitmap font
        return ImageFont.load_default()


def _detection_picture(pred: Prediction, photo: Image.Image, scale: tuple[float, float], model: Any) -> list[Picture]:
    """Boxes, masks and keypoints drawn on the photo by ultralytics' `Results.plot()` (cv2 drawing, no font file)."""
    import torch
    from ultralytics.engine.results import Results

    sx, sy = scale
    found = len(pred.boxes) if pred.boxes is not None else len(pred.masks) if pred.masks is not None else 0
    scores = pred.scores if pred.scores is not None and len(pred.scores) == found else np.ones(found, np.float32)
    keep = np.argsort(-scores, kind="stable")[:MAX_BOXES]
    names = dict(getattr(model.module, "names", None) or {})
    kw: dict[str, Any] = {}
    if pred.boxes is not None:
        boxes = pred.boxes[keep].astype(np.float32) * np.array([sx, sy, sx, sy], np.float32)
        classes = pred.classes[keep] if pred.classes is not None else np.zeros(len(keep), int)
        names = {int(c): str(names.get(int(c), int(c))) for c in range(int(classes.max(initial=0)) + 1)} | names
        kw["boxes"] = torch.from_numpy(np.column_stack([boxes, scores[keep], classes]).astype(np.float32))
    if pred.masks is not None and len(pred.masks):
        masks = torch.from_numpy(pred.masks[keep].astype(np.uint8))[None].float()
        kw["masks"] = torch.nn.functional.interpolate(masks, (photo.height, photo.width), mode="nearest")[0]
    if pred.keypoints is not None and len(pred.keypoints):
        kpts = pred.keypoints[keep].astype(np.float32).copy()
        kpts[..., 0] *= sx
        kpts[..., 1] *= sy
        kw["keypoints"] = torch.from_numpy(kpts)
    bgr = np.ascontiguousarray(np.asarray(photo)[..., ::-1])
    result = Results(bgr, path="", names=names or {0: "mask"}, **kw)
    drawn = result.plot(conf=True, pil=False, labels=True)  # BGR array, drawn with cv2
    picture = Image.fromarray(np.ascontiguousarray(drawn[..., ::-1]), "RGB")
    facts = {"found": int(found), "drawn": int(len(keep)), "masks": "masks" in kw, "keypoints": "keypoints" in kw}
    shows = "mask" if pred.boxes is None else _task_file(pred.task)
    return [Picture(f"output-{shows}.png", shows, picture, facts, True)]


def _task_file(task: str) -> str:
    return "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in task) or "output"


def png_bytes(picture: Image.Image, photo: bool) -> bytes:
    """A PNG small on disk. A picture with the photo in it gets a 256-colour palette (Pillow's fast octree,
    dithered): bus.jpg at 576x768 is 238 KiB against 746 KiB as RGB, a mean error of 3.7 in 255, in
    milliseconds (median cut: 280 KiB, error 3.1, about a second here). A depth map alone stays exact RGB."""
    buf = io.BytesIO()
    if photo:
        picture = picture.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.FLOYDSTEINBERG)
    picture.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _json_value(value: Any) -> Any:
    """Numbers as JSON can hold them: a NaN or infinite figure (a FOV head gone wrong) becomes null."""
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def _one_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
