"""visionbench: benchmark, dissect and run vision models (DepthPro, Depth Anything V2, YOLO11, MobileSAM)."""

from visionbench.models.registry import create_model, get_card, list_models

__version__ = "0.1.0"
__all__ = ["create_model", "get_card", "list_models", "__version__"]
