"""Metric depth as a product: depth maps, point clouds, focal lengths, and accuracy against ground truth."""
