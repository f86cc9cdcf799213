"""Reports computed only from result files: analysis (pure functions), report.md, summary.csv (and HTML).

`write_run_files(run, run_dir)` rewrites run.json, summary.csv and report.md atomically; the suite
calls it after every model, so a run folder is always complete and consistent.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from visionbench.results import RunResult, atomic_write_text, save_run

SUMMARY_FILE = "summary.csv"
REPORT_FILE = "report.md"


def summary_csv(run: RunResult) -> str:
    """summary.csv text: one row a model (and a batch size)."""
    from visionbench.report.analysis import summary_rows

    rows = summary_rows(run)
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)
    return buf.getvalue()


def write_run_files(run: RunResult, run_dir: str | Path) -> None:
    """run.json, summary.csv and report.md for `run`, each replaced atomically."""
    from visionbench.report.markdown import render_report

    run_dir = Path(run_dir)
    save_run(run, run_dir)
    atomic_write_text(run_dir / SUMMARY_FILE, summary_csv(run))
    atomic_write_text(run_dir / REPORT_FILE, render_report(run))
