"""Measurements: timing, memory, FLOPs, shape tracing, dissection. Each module measures one thing."""
