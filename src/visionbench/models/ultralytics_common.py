"""Weights for ultralytics models: local checkpoint discovery and loading without running pickled code.

Ultralytics `.pt` files pickle whole model objects, so `torch.load(weights_only=True)` can only read
them when the objects are plain state dicts (MobileSAM's are). Other `.pt` files need the user's
explicit `--trust-remote-code`; safetensors files always load.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from torch import nn

from visionbench.errors import WeightsError
from visionbench.models.base import WeightsInfo
from visionbench.models.registry import BuildSpec
from visionbench.models.weights import load_into, random_fallback_warning, read_state_dict, resolve_file_in_folder

log = logging.getLogger("visionbench")


def weight_search_dirs() -> list[Path]:
    """Where `auto` looks for ultralytics checkpoints: cwd, ultralytics' weights_dir, our cache."""
    dirs = [Path.cwd(), Path.home() / ".cache" / "visionbench" / "weights"]
    try:
        from ultralytics.utils import SETTINGS

        dirs.insert(1, Path(SETTINGS["weights_dir"]))
    except Exception:  # noqa: BLE001
        pass
    return dirs


def find_local_checkpoint(filename: str) -> Path | None:
    for folder in weight_search_dirs():
        for candidate in (folder / filename, folder / Path(filename).with_suffix(".safetensors")):
            if candidate.is_file():
                return candidate
    return None


def load_ultralytics_weights(
    spec: BuildSpec, build_random: Callable[[], nn.Module], checkpoint_name: str | None
) -> tuple[nn.Module, WeightsInfo]:
    """Build the architecture, then fill it from the requested or discovered checkpoint."""
    req = spec.weights
    module = build_random()
    if req.kind == "random":
        return module, WeightsInfo("random", f"random init (seed {spec.seed})")
    if req.kind == "path":
        assert req.path is not None
        file = resolve_file_in_folder(req.path) if req.path.is_dir() else req.path
        load_into(module, _state(file, spec), str(file))
        return module, WeightsInfo("pretrained", f"file {file}")
    found = find_local_checkpoint(checkpoint_name) if checkpoint_name else None
    if found is not None:
        try:
            load_into(module, _state(found, spec), str(found))
            return module, WeightsInfo("pretrained", f"file {found}")
        except WeightsError as exc:
            where = f"found {found} but could not load it safely ({exc})"
    else:
        dirs = ", ".join(str(d) for d in weight_search_dirs())
        where = f"{checkpoint_name or 'no checkpoint'} not found in {dirs} (no downloads at run time)"
    warning = random_fallback_warning(spec.card.name, where)
    log.warning(warning)
    return module, WeightsInfo("random", f"random init (seed {spec.seed})", warning)


def _state(file: Path, spec: BuildSpec) -> dict:
    try:
        return read_state_dict(file, allow_pickle=spec.trust_remote_code)
    except WeightsError as exc:
        if file.suffix == ".pt" and not spec.trust_remote_code:
            raise WeightsError(
                f"{exc}. Ultralytics .pt files pickle whole models; convert to safetensors or pass "
                "--trust-remote-code to allow unpickling a file you trust"
            ) from exc
        raise
