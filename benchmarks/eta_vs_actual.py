"""The suite's first estimate against its wall time, on a tiny suite or on the models named.

    OMP_NUM_THREADS=2 python benchmarks/eta_vs_actual.py                      # tiny suite, a few minutes
    python benchmarks/eta_vs_actual.py --full                                 # the default `visionbench run`

The estimate is `RunResult.first_estimate_s` (bench/eta.py: the matmul probe, each model's FLOPs and
the prior utilisations, before any model ran); the wall time is the suite's, start to finish. The issue's
goal for the default run: within 30 %. Tiny models are dominated by worker start-up, load and the
fixed budgets, so the tiny suite checks those terms; the full run checks the FLOP-driven ones.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from visionbench.bench.suite import run_suite
from visionbench.config import SUITE_MODELS, BenchConfig

TINY = ["yolo11n", "depth-anything-v2-tiny", "depthpro-tiny"]
PRESET = dict(timeout=1800.0, max_loop_time=240.0, dissect=True, profile=True)  # cli/bench_cmd.py RUN_PRESET


def main(full: bool) -> None:
    models = SUITE_MODELS if full else TINY
    plans = {} if full else {"yolo11n": {"input_size": 128}}
    config = BenchConfig(models=models, plans=plans, **PRESET, **({} if full else {"budget": 2.0}))
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        run, run_dir = run_suite(config, out)
        wall = time.perf_counter() - start
        for m in run.models:
            print(f"{m.name}: {m.status}, worker {m.wall_time_s or 0:.1f} s; phases: {_phases(run_dir / m.folder)}")
    est = run.first_estimate_s or 0.0
    print(f"first estimate {est:.1f} s, wall {wall:.1f} s: estimate / wall = {est / wall:.2f}")


def _phases(folder: Path) -> str:
    """Seconds from each phase event to the next (worker start-up is before the first)."""
    try:
        events = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
    except OSError:
        return "-"
    marks = [(e.get("phase") or e["event"], e["t"]) for e in events if e["event"] in {"phase", "done"}]
    return ", ".join(f"{a} {t2 - t1:.1f}" for (a, t1), (_, t2) in zip(marks, marks[1:], strict=False))


if __name__ == "__main__":
    main("--full" in sys.argv[1:])
