"""Layer dissection in one forward pass: per-layer statistics, feature-map pictures, transformer features, and
precision drift, at about the cost of one plain forward.

    from visionbench.dissect import dissect_model, DissectOptions
    result = dissect_model(model, image, Path("out"), DissectOptions(layers="all", channels=16))

The names below are imported on first use, so the picture-writer processes can import the picture modules
of this package without torch.
"""

from typing import Any

__all__ = ["LAYERS_FILE", "DissectOptions", "DissectionResult", "LayerRecord", "dissect_model"]


def __getattr__(name: str) -> Any:
    if name in {"LAYERS_FILE", "dissect_model"}:
        from visionbench.dissect import core

        return getattr(core, name)
    if name in {"DissectOptions", "DissectionResult", "LayerRecord"}:
        from visionbench.dissect import records

        return getattr(records, name)
    raise AttributeError(f"module 'visionbench.dissect' has no attribute {name!r}")
