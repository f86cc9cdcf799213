"""Reading a run folder for the report: run.json plus each model's profile and dissection files.

The report reads only files of the run folder (never re-measures): `run.json` (results.load_run),
each model's component profile (`ModelResult.profile`, or `<model folder>/profile.json`), and its
dissection (`<DissectionRef.path>/layers.json` with the pictures it names).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from visionbench.errors import BadInputError
from visionbench.measure.profile import ProfileResult
from visionbench.results import BatchResult, ModelResult, RunResult, load_run

log = logging.getLogger("visionbench")
PROFILE_FILE = "profile.json"
LAYERS_FILE = "layers.json"


@dataclass
class Dissection:
    """layers.json of one model: its tensor records in execution order and the folder its pictures are in."""

    folder: Path
    meta: dict[str, Any]
    layers: list[dict[str, Any]]
    error: str | None = None

    @property
    def tensors(self) -> list[dict[str, Any]]:
        return [r for r in self.layers if r.get("kind", "tensor") == "tensor" and r.get("std") is not None]

    def picture(self, record: dict[str, Any]) -> bytes | None:
        rel = record.get("picture")
        if not rel:
            return None
        path = (self.folder / rel).resolve()
        if not path.is_relative_to(self.folder.resolve()) or not path.is_file():
            return None  # a path outside the run folder is never read
        return path.read_bytes()


@dataclass
class ModelView:
    """One model of the run with everything the report needs, loaded once."""

    result: ModelResult
    profile: ProfileResult | None = None
    dissection: Dissection | None = None
    notes: list[str] = field(default_factory=list)  # files that were present but unreadable

    @property
    def name(self) -> str:
        return self.result.name

    @property
    def ok(self) -> bool:
        return self.result.status == "ok" and self.primary is not None

    @property
    def primary(self) -> BatchResult | None:
        return self.result.primary

    @property
    def task(self) -> str:
        return str(self.result.card.get("task", "?"))


@dataclass
class RunView:
    run_dir: Path
    run: RunResult
    models: list[ModelView]

    @property
    def ok_models(self) -> list[ModelView]:
        return [m for m in self.models if m.ok]

    @property
    def failed_models(self) -> list[ModelView]:
        return [m for m in self.models if not m.ok]


def load_run_view(run_dir: str | Path) -> RunView:
    """The run and each model's extra files; a missing or broken extra file is noted, never fatal."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise BadInputError(f"{run_dir}: no such run folder")
    if run_dir.is_file():
        run_dir = run_dir.parent
    run = load_run(run_dir)
    views = []
    for result in run.models:
        view = ModelView(result)
        view.profile = _profile(run_dir, result, view.notes)
        view.dissection = _dissection(run_dir, result, view.notes)
        views.append(view)
    return RunView(run_dir, run, views)


def _profile(run_dir: Path, result: ModelResult, notes: list[str]) -> ProfileResult | None:
    data: Any = result.profile
    path = run_dir / (result.folder or result.name) / PROFILE_FILE
    if data is None and path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            notes.append(f"{path.name}: unreadable ({exc})")
            return None
    if data is None:
        return None
    try:
        return ProfileResult.model_validate(data)
    except ValidationError as exc:
        notes.append(f"component profile does not match the profile schema: {exc.errors()[0]['msg']}")
        return None


def find_layers_file(folder: Path) -> Path | None:
    """layers.json in `folder`, or in its one model subfolder (`dissect_model` writes `<out>/<model>/`)."""
    direct = folder / LAYERS_FILE
    if direct.is_file():
        return direct
    nested = sorted(folder.glob(f"*/{LAYERS_FILE}"))
    return nested[0] if nested else None


def _dissection(run_dir: Path, result: ModelResult, notes: list[str]) -> Dissection | None:
    ref = result.dissection
    if ref is None:
        return None
    folder = (run_dir / ref.path).resolve()
    if not folder.is_relative_to(run_dir.resolve()):
        notes.append(f"dissection path {ref.path!r} is outside the run folder: ignored")
        return None
    if ref.error:
        return Dissection(folder, {}, [], error=ref.error)
    path = find_layers_file(folder)
    if path is None:
        return Dissection(folder, {}, [], error=f"{LAYERS_FILE} missing in {ref.path}")
    folder = path.parent  # pictures are relative to the folder of layers.json
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return Dissection(folder, {}, [], error=f"{LAYERS_FILE} unreadable ({exc})")
    if isinstance(data, list):
        return Dissection(folder, {}, [r for r in data if isinstance(r, dict)])
    layers = data.get("layers") or data.get("records") or []
    meta = {k: v for k, v in data.items() if k not in {"layers", "records"}}
    return Dissection(folder, meta, [r for r in layers if isinstance(r, dict)])
