"""Importing this module registers every built-in model (each adapter registers itself)."""

from visionbench.models import depth_anything, depth_pro, mobile_sam, open_doors, yolo  # noqa: F401
