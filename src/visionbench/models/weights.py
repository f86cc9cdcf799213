"""Where weights come from: `auto` (cache or hub, else random and say so), `random`, or a local path.

The hub must never hang a run: `HF_HUB_OFFLINE=1` is honoured, and otherwise a 2-second TCP probe
decides whether a download is even tried. Checkpoints are read as safetensors or with
`torch.load(weights_only=True)`: no pickled code runs unless the user asked for it.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from visionbench.errors import BadInputError, WeightsError
from visionbench.models.checkpoints import torch_load
from visionbench.switches import switched_on

log = logging.getLogger("visionbench")

HUB_HOST = "huggingface.co"
SAFE_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")


@dataclass(frozen=True)
class WeightsRequest:
    """The parsed `--weights` option."""

    kind: Literal["auto", "random", "path"]
    path: Path | None = None


def parse_weights(value: str | Path | None) -> WeightsRequest:
    """`auto` | `random` | a file or folder that exists; anything else is a clear error."""
    if value is None or str(value) == "auto":
        return WeightsRequest("auto")
    if str(value) == "random":
        return WeightsRequest("random")
    path = Path(value).expanduser()
    if not path.exists():
        raise WeightsError(f"--weights: no such file or folder: {path} (use auto, random or a path)")
    if path.is_file() and not os.access(path, os.R_OK):
        raise WeightsError(f"--weights: cannot read {path}")
    return WeightsRequest("path", path)


def offline() -> bool:
    """The hub's own switch (`HF_HUB_OFFLINE`), read the one way every switch is read."""
    return switched_on("HF_HUB_OFFLINE")


def offline_hint() -> str:
    """How to skip the network probe next time, unless the user already did."""
    return "" if offline() else "; set HF_HUB_OFFLINE=1 to skip the network probe"


@lru_cache(maxsize=1)
def hub_reachable(timeout_s: float = 2.0) -> bool:
    """A TCP connect to the hub with a short timeout; never a long hang on a closed network."""
    if offline():
        return False
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def cached_hf_snapshot(repo_id: str, revision: str | None = None) -> Path | None:
    """The local snapshot folder of a hub repo if its config and weights are already cached."""
    folder, _ = find_hf_snapshot(repo_id, revision, download=False)
    return folder


def find_hf_snapshot(repo_id: str, revision: str | None = None, *, download: bool = True) -> tuple[Path | None, str]:
    """(snapshot folder, "") or (None, why not): cached first, then a download when allowed and reachable.

    A cached snapshot without its config or weights is reported as such, not as "not cached".
    """
    from huggingface_hub import snapshot_download

    what = f"{repo_id}@{revision}" if revision else repo_id
    try:
        folder: Path | None = Path(snapshot_download(repo_id, revision=revision, local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure means "not cached"
        folder = None
    if folder is not None:
        missing = snapshot_missing(folder)
        if not missing:
            return folder, ""
        why = f"the cached snapshot {folder} has no {missing}"
    else:
        why = f"{what} is not in the local Hugging Face cache"
    if not download:
        return None, why
    if offline():
        return None, f"{why}, and HF_HUB_OFFLINE is set (no download)"
    if not hub_reachable():
        return None, f"{why}, and the hub is unreachable"
    try:
        patterns = ["*.json", "*.safetensors", "*.txt"]
        got = Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns, etag_timeout=5))
    except Exception as exc:  # noqa: BLE001 - a missing repo or revision, a timeout: one line
        name = type(exc).__name__
        if "Revision" in name:
            return None, f"revision {revision!r} of {repo_id} does not exist on the hub"
        if "RepositoryNotFound" in name:
            return None, f"{repo_id} does not exist on the hub (or needs a login)"
        return None, f"{why}; the download failed ({name}: {_first_line(exc)})"
    missing = snapshot_missing(got)
    return (got, "") if not missing else (None, f"the downloaded snapshot {got} has no {missing}")


def snapshot_missing(folder: Path) -> str:
    """What a model folder lacks to be loaded ("" when it has a config and a weights file)."""
    if not (folder / "config.json").is_file():
        return "config.json"
    if not (any(folder.glob("*.safetensors")) or any(folder.glob("*.bin"))):
        return "weights file (*.safetensors or *.bin)"
    return ""


def read_state_dict(path: Path, *, allow_pickle: bool = False) -> dict[str, torch.Tensor]:
    """A state dict from safetensors (memory-mapped) or a torch file read with weights_only=True."""
    if path.suffix not in SAFE_SUFFIXES:
        raise WeightsError(f"{path}: unsupported weights format {path.suffix!r} (use {', '.join(SAFE_SUFFIXES)})")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        obj = torch_load(path, trust_remote_code=allow_pickle)
    except WeightsError:
        raise
    except Exception as exc:  # noqa: BLE001
        hint = "" if allow_pickle else " (read with weights_only=True: pickled code is not executed)"
        raise WeightsError(f"{path}: cannot read weights: {_first_line(exc)}{hint}") from exc
    if isinstance(obj, nn.Module):
        return obj.state_dict()
    if isinstance(obj, dict):
        for key in ("state_dict", "ema", "model"):  # ultralytics prefers ema, as here
            inner = obj.get(key)
            if isinstance(inner, nn.Module):
                return inner.float().state_dict()
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return inner
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
    raise WeightsError(f"{path}: no state dict of tensors inside (found {type(obj).__name__})")


def load_into(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load a state dict strictly, assigning tensors (no second copy); name what does not fit."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [k for k in own.keys() & state.keys() if tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
        if mismatched:
            k = mismatched[0]
            parts.append(
                f"{len(mismatched)} shape mismatches (e.g. {k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)})"
            )
        raise WeightsError(f"{source} does not fit this architecture: {'; '.join(parts)}")
    module.load_state_dict(state, strict=True, assign=True)


def random_fallback_warning(name: str, where: str) -> str:
    return (
        f"NO PRETRAINED WEIGHTS for {name}: {where}. Using RANDOM weights: timing, memory, FLOPs and "
        "structure are valid; outputs and activation statistics are not those of the trained model."
    )


def resolve_file_in_folder(folder: Path) -> Path:
    """A weights folder without config.json: its single weights file."""
    files = [p for p in sorted(folder.iterdir()) if p.suffix in SAFE_SUFFIXES]
    if len(files) != 1:
        raise BadInputError(f"{folder}: expected one weights file or a config.json, found {len(files)} weights files")
    return files[0]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
