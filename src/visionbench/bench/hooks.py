"""Extra steps a worker runs on the warm model after benchmarking: a dissection and a component profile.

A failure of either is recorded next to the figures and never turns a measured model into a failed one.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from visionbench.results import DissectionRef

log = logging.getLogger("visionbench")


def run_dissection(model: Any, image: Path, run_dir: Path, folder: str) -> DissectionRef | None:
    """Dissect `model` on `image` into `run_dir/<folder>/` (layers.json next to result.json).

    The same single hooked forward also captures each transformer encoder's first, middle and last block
    (token shapes, statistics, PCA-RGB token maps) for the report's transformer section; a model without
    one (a CNN) is dissected without them. `--blocks` is planned before the forward runs, so the retry
    costs no forward.
    """
    from visionbench.dissect import dissect_model
    from visionbench.dissect.records import DissectOptions
    from visionbench.errors import VisionbenchError
    from visionbench.images import load_image

    try:
        picture = load_image(image)
        blocks = transformer_blocks(model.module)
        try:
            result = dissect_model(model, picture, run_dir, DissectOptions(blocks=blocks) if blocks else None)
        except VisionbenchError as exc:  # no encoder to capture blocks from: raised before anything ran
            if not blocks:
                raise
            log.info("dissection of %s without transformer blocks (%s)", model.name, exc)
            result = dissect_model(model, picture, run_dir)
    except Exception as exc:  # noqa: BLE001 - recorded, never fatal
        log.warning("dissection of %s failed: %s", model.name, exc)
        text = str(exc).strip().splitlines()
        return DissectionRef(path=folder, error=f"{type(exc).__name__}: {text[0] if text else ''}")
    written = Path(result.folder)
    rel = written.relative_to(run_dir).as_posix() if written.is_relative_to(run_dir) else str(written)
    return DissectionRef(path=rel, summary=_summary(result))


def transformer_blocks(module: Any) -> list[int]:
    """First, middle and last index of the longest stack of transformer blocks (0/12/23 for a ViT-L); [] for none.

    A stack is a ModuleList whose entries' class names end in Layer or Block, as `dissect --blocks` finds them,
    and hold an attention module (a decoder's list of fusion layers is not a transformer's stack).
    """
    import re

    from torch import nn

    sizes = [len(m) for m in module.modules() if isinstance(m, nn.ModuleList) and len(m) > 1
             and re.search(r"(Layer|Block)$", type(m[0]).__name__)
             and any("Attention" in type(x).__name__ for x in m[0].modules())]  # fmt: skip
    if not sizes:
        return []
    n = max(sizes)
    return sorted({0, n // 2, n - 1})


def run_profile(
    model: Any,
    batch: Any,
    runs: int,
    flops: tuple[int, dict[str, int]] | None = None,
    plain_ms: list[float] | None = None,
    hooked: tuple[float, Any] | None = None,
) -> dict[str, Any] | None:
    """Component timing (visionbench.measure.profile) on the already warm model.

    `hooked` is (total ms, ComponentHooks) of a forward the benchmark already took with the hooks on (a
    slow model's counted warmup): the profile is built from it and no forward runs here. Otherwise `runs`
    hooked forwards, plus a plain one each unless `plain_ms` (the benchmark's samples) serves. FLOPs come
    from `flops` (a meta count) when given, else from a counting forward.
    """
    from visionbench.measure.profile import METHOD_TAKEN, build_profile, profile_model

    try:
        if hooked is not None:
            total_ms, hooks = hooked
            return build_profile(
                model, batch, plain=list(plain_ms or []), hooked=[total_ms], per_run=[hooks.ns], calls=hooks.calls,
                flops=flops, runs=1, warmup=0, method=METHOD_TAKEN,
            ).model_dump(mode="json")  # fmt: skip
        return profile_model(
            model, batch, runs=runs, warmup=0, flops=flops if flops is not None else True, plain_ms=plain_ms
        ).model_dump(mode="json")
    except Exception as exc:  # noqa: BLE001 - recorded, never fatal
        log.warning("component profile of %s failed: %s", model.name, exc)
        return {"error": f"{type(exc).__name__}: {exc}"}


def _summary(result: Any) -> dict[str, Any]:
    """The dissection's scalar facts and its summary, JSON-ready."""
    data = result.model_dump(mode="json")
    out = {k: v for k, v in data.items() if isinstance(v, (int, float, str, bool)) or v is None}
    return {**out, **data["summary"]}
