"""The benchmark engine: options (what to run), worker (one model in its own process), suite (many, resumable).

Kept import-light: `from visionbench.bench import run_suite` pulls in torch only when a run starts.
"""

from __future__ import annotations

from typing import Any

__all__ = ["run_suite", "bench_model"]


def __getattr__(name: str) -> Any:
    if name == "run_suite":
        from visionbench.bench.suite import run_suite

        return run_suite
    if name == "bench_model":
        from visionbench.bench.worker import bench_model

        return bench_model
    raise AttributeError(name)
