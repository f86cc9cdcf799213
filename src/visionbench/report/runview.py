"""A run folder as the report reads it: run.json plus each model's profile and dissection files, read only
through `files.inside` (the report never re-measures, and never reads outside the run folder)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from visionbench.errors import BadInputError
from visionbench.files import inside, safe_name
from visionbench.layers_json import LAYERS_FILE, BlockRecord, LayerRecord, layers_path, load_layers
from visionbench.results import ModelResult, ProfileFailure, ProfileResult, RunResult

PROFILE_FILE = "profile.json"


@dataclass
class Dissection:
    """layers.json of one model, typed: its records in execution order and the folder its pictures are in."""

    folder: Path
    records: list[LayerRecord] = field(default_factory=list)
    error: str | None = None
    blocks: list[BlockRecord] = field(default_factory=list)  # transformer blocks captured (first/middle/last)
    input: dict[str, Any] = field(default_factory=dict)  # what the pass ran on (image size, tensor shapes)

    @property
    def tensors(self) -> list[LayerRecord]:
        return [r for r in self.records if r.is_tensor_with_stats]


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
        return self.result.status == "ok" and self.result.primary is not None

    @property
    def summary(self) -> dict[str, Any]:
        """What the model's output held for the run's first image."""
        return self.result.output_summary[0] if self.result.output_summary else {}

    @property
    def random(self) -> bool:
        return self.result.weights is not None and self.result.weights.mode == "random"


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


def view_of(run: RunResult, run_dir: Path) -> RunView:
    """A run held in memory (the suite's, between models) with each model's extra files from `run_dir`."""
    views = []
    for result in run.models:
        view = ModelView(result)
        view.profile = _profile(run_dir, result, view.notes)
        view.dissection = _dissection(run_dir, result, view.notes)
        views.append(view)
    return RunView(run_dir, run, views)


def _profile(run_dir: Path, result: ModelResult, notes: list[str]) -> ProfileResult | None:
    """The typed profile of run.json, else `<model folder>/profile.json` (`visionbench profile --json`)."""
    if isinstance(result.profile, ProfileFailure):
        notes.append(f"component profile failed: {result.profile.error}")
        return None
    if result.profile is not None:
        return result.profile
    try:
        path = inside(run_dir, Path(result.folder or safe_name(result.name)) / PROFILE_FILE)
    except BadInputError:
        notes.append(f"model folder {result.folder!r} is outside the run folder: not read")
        return None
    if not path.is_file():
        return None
    try:
        return ProfileResult.model_validate_json(path.read_bytes())
    except (OSError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        notes.append(f"{path.name}: unreadable or not a component profile ({str(exc).splitlines()[0]})")
        return None


def _dissection(run_dir: Path, result: ModelResult, notes: list[str]) -> Dissection | None:
    ref = result.dissection
    if ref is None:
        return None
    try:
        folder = inside(run_dir, ref.path)
    except BadInputError:
        notes.append(f"dissection path {ref.path!r} is outside the run folder: not read")
        return None
    if ref.error:
        return Dissection(folder, error=ref.error)
    try:
        path = layers_path(folder)
    except BadInputError:
        return Dissection(folder, error=f"{LAYERS_FILE} missing in {ref.path}")
    try:  # a subfolder may be a link out of the run folder
        path = inside(run_dir, path.resolve().relative_to(run_dir.resolve()))
    except (BadInputError, ValueError):
        notes.append(f"{LAYERS_FILE} under {ref.path!r} lies outside the run folder: not read")
        return None
    try:
        document = load_layers(path)
    except BadInputError as exc:
        return Dissection(path.parent, error=f"{LAYERS_FILE} unreadable ({exc})")
    # pictures are relative to the folder of layers.json
    return Dissection(path.parent, document.records, blocks=document.blocks, input=document.input)
