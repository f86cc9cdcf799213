"""Model suite: a registry of named models, each an adapter around the real nn.Module of its library."""

from visionbench.models.base import Prediction, VisionModel, WeightsInfo
from visionbench.models.card import ModelCard
from visionbench.models.registry import create_model, get_card, list_models, register

__all__ = [
    "ModelCard",
    "Prediction",
    "VisionModel",
    "WeightsInfo",
    "create_model",
    "get_card",
    "list_models",
    "register",
]
