"""Optional steps other parts of visionbench provide, called when they are installed.

`visionbench run` dissects each model after benchmarking (issue 5, `visionbench.dissect`). The call is
found at run time, so the engine works with or without that part; a dissection failure is recorded
next to the figures and never turns a measured model into a failed one.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from pathlib import Path
from typing import Any

from visionbench.results import DissectionRef

log = logging.getLogger("visionbench")
DISSECT_FOLDER = "dissection"


def dissection_available() -> bool:
    """True when `visionbench.dissect` exposes `dissect_model`."""
    return _dissect_fn() is not None


def _dissect_fn() -> Any:
    try:
        mod = importlib.import_module("visionbench.dissect")
    except ImportError:
        return None
    return getattr(mod, "dissect_model", None)


def run_dissection(model: Any, image: Path, model_dir: Path) -> DissectionRef | None:
    """Dissect `model` on `image` into `model_dir/dissection`; None when the dissection part is absent."""
    fn = _dissect_fn()
    if fn is None:
        return None
    from visionbench.images import load_image

    out = model_dir / DISSECT_FOLDER
    rel = f"{model_dir.name}/{DISSECT_FOLDER}"
    try:
        params = inspect.signature(fn).parameters
        pil = load_image(image)
        kwargs: dict[str, Any] = {}
        if "out_dir" in params:
            kwargs["out_dir"] = out
        result = fn(model, pil, **kwargs) if kwargs else fn(model, pil, out)
    except Exception as exc:  # noqa: BLE001 - recorded, never fatal
        log.warning("dissection of %s failed: %s", model.name, exc)
        return DissectionRef(
            path=rel, error=f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        )
    return DissectionRef(path=rel, summary=_summary(result))


def _summary(result: Any) -> dict[str, Any]:
    """Small JSON-ready facts of a dissection result, whatever its type."""
    if result is None:
        return {}
    if hasattr(result, "summary") and callable(result.summary):
        data = result.summary()
        return data if isinstance(data, dict) else {"summary": str(data)}
    if hasattr(result, "model_dump"):
        data = result.model_dump()
        return {k: v for k, v in data.items() if isinstance(v, (int, float, str, bool)) or v is None}
    if isinstance(result, dict):
        return {k: v for k, v in result.items() if isinstance(v, (int, float, str, bool)) or v is None}
    return {"result": str(result)[:200]}
