"""Layer dissection in one forward pass: per-layer statistics, feature-map pictures, transformer features, and
precision drift, at about the cost of one plain forward.

    from visionbench.dissect import dissect_model, DissectOptions
    result = dissect_model(model, image, Path("out"), DissectOptions(layers="all", channels=16))
"""

from visionbench.dissect.core import dissect_model
from visionbench.dissect.records import DissectionResult, DissectOptions
from visionbench.layers_json import LAYERS_FILE, LayerRecord, load_layers

__all__ = ["LAYERS_FILE", "DissectOptions", "DissectionResult", "LayerRecord", "dissect_model", "load_layers"]
