"""visionbench: benchmark, dissect and run vision models (DepthPro, Depth Anything V2, YOLO11, MobileSAM)."""

import os

# Never let ultralytics pip-install packages or phone home at run time (it does both by default).
os.environ.setdefault("YOLO_AUTOINSTALL", "false")
os.environ.setdefault("YOLO_OFFLINE", "1")

from visionbench.models.registry import create_model, get_card, list_models  # noqa: E402

__version__ = "0.1.0"
__all__ = ["create_model", "get_card", "list_models", "__version__"]
