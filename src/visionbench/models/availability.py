"""Whether a registered model's pretrained weights are on this machine, without loading anything."""

from __future__ import annotations

from visionbench.models.card import ModelCard
from visionbench.models.ultralytics_common import find_local_checkpoint
from visionbench.models.weights import find_hf_snapshot


def local_weights(card: ModelCard) -> str | None:
    """Path of locally available pretrained weights, or None."""
    if not card.weights_source:
        return None
    if card.library == "transformers":
        folder, _ = find_hf_snapshot(card.weights_source, download=False)
        return str(folder) if folder else None
    found = find_local_checkpoint(card.weights_source)
    return str(found) if found else None
