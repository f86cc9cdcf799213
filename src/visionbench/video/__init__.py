"""Video depth: per-frame depth, temporal metrics (flicker, scale drift, TAE) and a built-in sequence."""
