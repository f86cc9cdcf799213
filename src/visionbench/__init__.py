"""visionbench: benchmark, dissect and run vision models (DepthPro, Depth Anything V2, YOLO11, MobileSAM).

The model API is imported on first use (module `__getattr__`), so a process that needs only a small part
of the package, such as the dissection's picture-writer processes (numpy and Pillow), never pays for
importing torch and transformers.
"""

import os
from typing import Any

# Never let ultralytics pip-install packages or phone home at run time (it does both by default).
os.environ.setdefault("YOLO_AUTOINSTALL", "false")
os.environ.setdefault("YOLO_OFFLINE", "1")

__version__ = "0.1.0"
__all__ = ["create_model", "get_card", "list_models", "__version__"]


def __getattr__(name: str) -> Any:
    if name in {"create_model", "get_card", "list_models"}:
        from visionbench.models import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'visionbench' has no attribute {name!r}")
