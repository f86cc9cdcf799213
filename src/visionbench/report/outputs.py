"""The report's "Outputs" section: each model's pictures of the run's first image, as the worker drew them
(bench/output_pictures.py). Read only through `files.inside`: a path that leaves the run folder is never
read, the section says so instead."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visionbench.errors import BadInputError
from visionbench.files import inside, safe_name
from visionbench.report import fmt
from visionbench.report.document import Block, Figure, Gallery, Heading, Note, Text
from visionbench.report.runview import ModelView, RunView

PICTURES_FILE = "output-pictures.json"  # written by bench/output_pictures.py in each model's folder
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DETECTION_SHOWS = ("detect", "segment", "pose", "mask")
SIDE_WIDTH = 768  # px on the page: the photo beside a depth map, each half as wide as a depth map in the row


@dataclass
class Shown:
    """One picture read back: the model, what it shows, its facts and its bytes."""

    model: ModelView
    shows: str
    facts: dict[str, Any]
    png: bytes


def output_picture_blocks(view: RunView) -> list[Block]:
    """Depth maps side by side across models, then detections, masks and keypoints drawn on the photo."""
    pictures, notes = _read_pictures(view)
    if not pictures and not notes:
        return []
    blocks: list[Block] = [Heading(2, "Outputs"), Text(_intro(pictures))]
    if random := sorted({p.model.name for p in pictures if p.model.random}):
        blocks.append(Note("warning", f"Random weights for {', '.join(random)}: these pictures show that the "
                                      "pipeline works end to end (decode, preprocess, forward, postprocess), "
                                      "not what the trained model sees."))  # fmt: skip
    depth = [p for p in pictures if p.shows == "depth"]
    side = next((p for p in pictures if p.shows == "depth-side"), None)
    if depth or side:
        blocks.append(Heading(3, "Depth maps"))
    if side is not None:
        caption = f"The photo beside {side.model.name}'s depth: {_depth_caption(side)}"
        blocks.append(Figure(_file(side), side.png, caption, width=SIDE_WIDTH))
    if depth:
        blocks.append(Gallery([Figure(_file(p), p.png, f"{p.model.name}: {_depth_caption(p)}") for p in depth]))
    if drawn := [p for p in pictures if p.shows in DETECTION_SHOWS]:
        blocks.append(Heading(3, "Detections, masks and keypoints"))
        blocks.append(Gallery([Figure(_file(p), p.png, _detection_caption(p)) for p in drawn], wide=True))
    return blocks + [Note("warning", n) for n in notes]


def _read_pictures(view: RunView) -> tuple[list[Shown], list[str]]:
    """The pictures that are PNG files inside the run folder, and a note for each that is not."""
    pictures: list[Shown] = []
    notes: list[str] = []
    for m in view.models:
        r = m.result
        if not r.output_pictures:
            continue
        facts, errors = _sidecar(view.run_dir, m, notes)
        notes += [f"{r.name}: a picture was not drawn ({e})" for e in errors]
        for rel in r.output_pictures:
            try:
                png = inside(view.run_dir, rel).read_bytes()  # a path outside the run folder is never read
            except BadInputError:
                notes.append(f"{r.name}: output picture {rel!r} lies outside the run folder: not read")
                continue
            except OSError as exc:
                notes.append(f"{r.name}: output picture {rel!r} unreadable ({exc.strerror or exc})")
                continue
            if not png.startswith(PNG_SIGNATURE):
                notes.append(f"{r.name}: output picture {rel!r} is not a PNG: not shown")
                continue
            f = facts.get(rel, {})
            pictures.append(Shown(m, str(f.get("shows") or _shows_from_name(rel)), f, png))
    return pictures, notes


def _sidecar(run_dir: Path, m: ModelView, notes: list[str]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """What each picture shows (by its path) and the drawing errors, from the model folder's PICTURES_FILE."""
    r = m.result
    try:
        path = inside(run_dir, Path(r.folder or safe_name(r.name)) / PICTURES_FILE)
        data = json.loads(path.read_bytes()) if path.is_file() else {}
    except BadInputError:
        notes.append(f"{r.name}: model folder {r.folder!r} lies outside the run folder: {PICTURES_FILE} not read")
        return {}, []
    except (OSError, ValueError) as exc:
        notes.append(f"{r.name}: {PICTURES_FILE} unreadable ({exc})")
        return {}, []
    if not isinstance(data, dict):
        return {}, []
    pictures = [p for p in data.get("pictures", []) if isinstance(p, dict) and isinstance(p.get("file"), str)]
    errors = [str(e) for e in data.get("errors", []) if isinstance(e, str)]
    return {p["file"]: p for p in pictures}, errors


def _shows_from_name(rel: str) -> str:
    stem = Path(rel).name.removeprefix("output-").removesuffix(".png")
    return stem if stem in {"depth", "depth-side", *DETECTION_SHOWS} else "other"


def _intro(pictures: list[Shown]) -> str:
    images = {p.model.result.images[0].rsplit("/", 1)[-1] for p in pictures if p.model.result.images}
    photo = ", ".join(sorted(images)) or "the run's first image"
    text = (f"Each model's output for {photo}: the predictions of the end-to-end loop's first call, through the "
            "model's own postprocessing, drawn after the timing (no extra forward).")  # fmt: skip
    if any(p.shows.startswith("depth") for p in pictures):
        text += (" Depth maps use the inferno colour map as visionbench depth does: near is its bright (yellow) "
                 "end, far its dark (purple) end, unknown black; colours span the 2nd to 98th percentile of "
                 "inverse depth; the scale below a metric map is in metres, below a relative map in relative "
                 "inverse depth (no unit).")  # fmt: skip
    if any(p.shows in DETECTION_SHOWS for p in pictures):
        text += (" Boxes with class and score, masks and keypoints are drawn by ultralytics' Results.plot() "
                 "at the library's default thresholds.")  # fmt: skip
    return text


def _depth_caption(p: Shown) -> str:
    s = p.model.summary
    kind = p.facts.get("depth_kind") or s.get("depth_kind")
    lo, hi = s.get("depth_min"), s.get("depth_max")
    if kind == "metric":
        text = f"metric depth {_metres(lo)} to {_metres(hi)} m"
        fov, focal = p.facts.get("fov_deg", s.get("fov_deg")), p.facts.get("focal_px", s.get("focal_px"))
        if fov is not None:
            text += f", field of view {fov:.3g}°"
        if focal is not None:
            text += f", focal length {fmt.num(focal, 0)} px"
        return text
    return f"relative inverse depth {fmt.sci(lo)} to {fmt.sci(hi)} (no unit)"


def _metres(value: float | None) -> str:
    return fmt.num(value, 2) if value is None or abs(value) < 100 else fmt.num(value, 0)


def _detection_caption(p: Shown) -> str:
    name, f = p.model.name, p.facts
    if p.shows == "mask":
        n = f.get("found", p.model.summary.get("masks"))
        return f"{name}: {n if n is not None else 'its'} mask(s) for one point prompt at the image centre"
    found, drawn = f.get("found"), f.get("drawn")
    if found is None:
        found = p.model.summary.get("detections")
    if found == 0:
        return f"{name} ({p.shows}): no detection above the library's default thresholds"
    what = {"segment": "boxes and masks", "pose": "boxes and keypoints"}.get(p.shows, "boxes")
    count = f"{drawn} of {found}" if drawn is not None and drawn != found else str(found)
    return f"{name} ({p.shows}): {what} of {count} detections, highest scores first"


def _file(p: Shown) -> str:
    """The figure's file name under report_files/ (Markdown): one per model folder and picture."""
    return f"output-{safe_name(p.model.result.folder or p.model.name)}-{p.shows}.png"
