"""The forward hooks of one dissection pass: statistics of every output, host copies of only the saved channels.

Per call the hook queues the statistics on the device (`StatsEngine`), copies at most the channels to be
drawn or saved to the host, and hands them to the writers. It keeps no reference to any activation, so
memory stays near a plain forward's. Hooks are attached in a context manager and always removed, even when a
hook or the model raises.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from visionbench.dissect.pictures import write_maps, write_patches
from visionbench.dissect.records import DissectOptions
from visionbench.dissect.stats import StatsEngine
from visionbench.dissect.tokens import TokenLayout, patch_labels, tokens_to_grid, whole_image_patch
from visionbench.dissect.writer import BackgroundWriter

Observer = Callable[[int, str, str, torch.Tensor], None]  # (record position, name, output key, tensor)


def flatten(value: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """(key, leaf) for every tensor in tensors, tuples/lists, dicts and ModelOutputs; other leaves as they are."""
    if isinstance(value, torch.Tensor):
        yield key, value
    elif isinstance(value, dict):  # ModelOutput is an OrderedDict of its non-None fields
        for k, v in value.items():
            yield from flatten(v, f"{key}.{k}" if key else str(k))
    elif isinstance(value, (list, tuple)) and value:
        for i, v in enumerate(value):
            yield from flatten(v, f"{key}.{i}" if key else str(i))
    else:
        yield key, value


def component_of(name: str, components: dict[str, list[str]]) -> str:
    for label, prefixes in components.items():
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return label
    return "other"


def file_stem(index: int, name: str, key: str) -> str:
    return (f"{index:04d}_" + _safe_name(name, key))[:180]


@lru_cache(maxsize=4096)
def _safe_name(name: str, key: str) -> str:
    """The module name (and output key) made filesystem-safe; cached: modules called again reuse it."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", (name or "model") + (f"_{key}" if key else ""))


@contextlib.contextmanager
def attached(modules: list[tuple[str, nn.Module]], hook: Callable[..., None]) -> Iterator[None]:
    """Forward hooks `hook(name, module, inputs, output)` on `modules`, removed however the block ends."""
    handles = []
    try:
        for name, module in modules:
            handles.append(module.register_forward_hook(partial(hook, name)))
        yield
    finally:
        for h in handles:
            h.remove()


class Recorder:
    """Collects one record per output tensor of every selected call, in execution order."""

    def __init__(self, engine: StatsEngine, writer: BackgroundWriter | None, folder: Path, options: DissectOptions,
                 layout: TokenLayout | None, components: dict[str, list[str]], images: int,
                 observer: Observer | None = None) -> None:  # fmt: skip
        self.engine, self.writer, self.options = engine, writer, options
        self.layout, self.components, self.images, self.observer = layout, components, images, observer
        self.records: list[dict[str, Any]] = []
        self.slots: list[int | None] = []
        self.calls = 0
        self._modules: dict[str, list[Any]] = {}  # name -> [what every call of it shares, its calls so far]
        self._dtypes: dict[torch.dtype, str] = {}
        # the files' folders as strings: pathlib joins were a visible share of the hook's time per layer
        self._dirs = {sub: os.path.join(folder, sub, "") for sub in ("maps", "npy", "patches")}

    def _module(self, name: str, module: nn.Module) -> list[Any]:
        params = sum(p.numel() for p in module.parameters(recurse=False))
        component = component_of(name, self.components)
        info = {"name": name, "type": type(module).__name__, "component": component, "params": params}
        entry = self._modules[name] = [info, 0]
        return entry

    def hook(self, name: str, module: nn.Module, _inputs: Any, output: Any) -> None:
        """Runs after every call of a selected module: kept lean, it runs hundreds of times inside the pass."""
        index = self.calls
        self.calls = index + 1
        entry = self._modules.get(name) or self._module(name, module)
        call = entry[1]
        entry[1] = call + 1
        if isinstance(output, torch.Tensor):  # the common case, without flattening
            self._tensor(index, entry[0], call, name, "", output)
        else:
            for key, value in flatten(output):
                if isinstance(value, torch.Tensor):
                    self._tensor(index, entry[0], call, name, key, value)
                else:
                    kind = type(value).__name__
                    self.records.append({"index": index, **entry[0], "call": call, "output": key, "kind": kind})
                    self.slots.append(None)
        if self.options.progress is not None:
            self.options.progress(self.calls, name)

    def _tensor(self, index: int, info: dict[str, Any], call: int, name: str, key: str, value: torch.Tensor) -> None:
        dtype = self._dtypes.get(value.dtype)
        if dtype is None:
            dtype = self._dtypes[value.dtype] = str(value.dtype).removeprefix("torch.")
        n = value.numel()
        record = {"index": index, **info, "call": call, "output": key, "kind": "tensor", "shape": list(value.shape),
                  "dtype": dtype, "numel": n}  # fmt: skip
        slot = None if value.is_complex() else self.engine.add(value)
        if self.writer is not None and n:
            self._pictures(record, name, key, value)
        if self.observer is not None:
            self.observer(len(self.records), name, key, value)
        self.records.append(record)
        self.slots.append(slot)

    def _pictures(self, record: dict[str, Any], name: str, key: str, value: torch.Tensor) -> None:
        opts, writer = self.options, self.writer
        assert writer is not None
        maps, layout = None, None
        if value.dim() == 4:
            maps, layout = value, "maps"
        elif self.layout is not None and value.dim() == 3 and self.layout.covers(name):
            maps, layout = tokens_to_grid(value, self.layout), "tokens"
        if maps is None or maps.shape[1] == 0:
            return
        c = maps.shape[1]
        k_png = min(opts.channels, c)
        k_npy = c if opts.npy_channels == "all" else min(int(opts.npy_channels), c)
        k = max(k_png, k_npy)
        stem = file_stem(record["index"], name, key)
        record["layout"] = layout
        covered = self.layout is not None and self.layout.covers(name)
        labels = patch_labels(self.layout, maps.shape[0], self.images) if covered else None
        shown = whole_image_patch(self.layout) if labels else 0  # DepthPro: draw the patch that sees everything
        if k:
            arr = np.empty(tuple(maps[:, :k].shape), np.float32)
            torch.from_numpy(arr).copy_(maps[:, :k].detach())  # the only device->host copy: the saved channels
            png = f"{self._dirs['maps']}{stem}.png" if k_png else None
            npy = f"{self._dirs['npy']}{stem}.npy" if k_npy else None
            writer.put(write_maps, arr, shown, k_npy, png, npy, k_png, opts.png_level, nbytes=arr.nbytes)
            record["picture"] = f"maps/{stem}.png" if png else None
            record["npy"] = f"npy/{stem}.npy" if npy else None
            if png:
                what = "tokens->grid " if layout == "tokens" else ""
                seen = f" ({labels[shown]})" if labels else ""
                label = f"[{key}]" if key else ""
                record["caption"] = (f"#{record['index']} {name}{label} {record['type']} {record['shape']} {what}"
                                     f"ch 0-{k_png - 1} of {c}{seen}")  # fmt: skip
        if labels:
            norms = torch.linalg.vector_norm(maps.detach().float(), dim=1).cpu().numpy()  # [P, h, w]
            path = f"{self._dirs['patches']}{stem}.png"
            writer.put(write_patches, norms, labels, path, nbytes=norms.nbytes)
            record["patches"] = f"patches/{stem}.png"
