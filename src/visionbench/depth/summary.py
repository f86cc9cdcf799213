"""A depth run's record: OUT/depth_run.json (counts, failures, how it ended, earlier runs) and failures-<run id>.txt.

Both engines write it the same way; it is written when a run starts and again however it ends.
"""

from __future__ import annotations

import json
import secrets
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from visionbench.depth.locations import write_text_to
from visionbench.depth.options import DepthOptions

FAILURES_FILE = "failures-{run_id}.txt"  # one file per run: a later run never overwrites an earlier one's list
SUMMARY_FILE = "depth_run.json"


class Failure(BaseModel):
    path: str
    error: str


class ModelFacts(BaseModel):
    """Which model and weights made a run's depth (the first fields of `depth`'s and `eval`'s records)."""

    model: str
    weights_mode: str
    weights_warning: str | None = None
    weights: dict[str, Any] = Field(default_factory=dict, description="The weights record as the adapter gives it.")


class DepthRunSummary(ModelFacts):
    """What a run did: counts, failures (also in its failures-<run id>.txt), throughput, how it ended."""

    out: str
    run_id: str = Field(default_factory=lambda: new_run_id())
    started: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    status: str = Field("running", description="running, completed, stopped (a write failed), interrupted, failed.")
    error: str | None = Field(None, description="Why the run ended early (one line).")
    total: int
    done: int = 0
    skipped: int = 0
    failed: int = 0
    not_attempted: int = Field(0, description="Images left when the run ended early.")
    unreadable_paths: int = Field(0, description="Folders that could not be listed, symlink loops, dangling links.")
    excluded_in_out: int = 0
    failures: list[Failure] = Field(default_factory=list)
    failures_file: str | None = None
    seconds: float = 0.0
    images_per_s: float = 0.0


def new_run_id() -> str:
    """Sortable and unique enough for one output folder: UTC time plus 4 random hex digits."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def previous_runs(out: Path) -> list[dict[str, Any]]:
    """Earlier runs into `out`, newest last, read from its depth_run.json: each keeps a pointer to its failures."""
    try:
        record = json.loads((out / SUMMARY_FILE).read_text())
        last = record["summary"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    keys = ("run_id", "started", "status", "model", "total", "done", "skipped", "failed", "failures_file")
    earlier = [r for r in record.get("previous_runs", []) if isinstance(r, dict)]
    if last.get("failures_file") is None and last.get("failed") and (out / "failures.txt").exists():
        last["failures_file"] = str(out / "failures.txt")  # written by versions that used one name for every run
    return [*earlier, {k: last.get(k) for k in keys}]


def _one_line(text: str) -> str:
    """A file name may hold a newline or a tab: escaped, so the failures file keeps one line per file."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def write_run_summary(out: Path | str, summary: DepthRunSummary, opts: DepthOptions,
                      previous: list[dict[str, Any]] | None = None) -> str:  # fmt: skip
    """This run's failures-<run id>.txt and OUT/depth_run.json (OUT a folder or a URL); returns where the summary went.

    When `out` refuses the write, the summary goes to the temporary folder instead, and as a last
    resort to stderr: a run never ends without saying what it did.
    """
    root = str(out).rstrip("/")
    if summary.failures:
        text = "".join(f"{_one_line(f.path)}\t{_one_line(f.error)}\n" for f in summary.failures)
        target = f"{root}/{FAILURES_FILE.format(run_id=summary.run_id)}"
        try:
            write_text_to(target, text)
            summary.failures_file = target
        except OSError:
            summary.failures_file = None  # the list is in the summary too
    record = {"summary": summary.model_dump(), "options": opts.model_dump(mode="json"),
              "previous_runs": previous or []}  # fmt: skip
    text = json.dumps(record, indent=2, default=str, allow_nan=False) + "\n"
    fallback = Path(tempfile.gettempdir()) / f"visionbench-{SUMMARY_FILE.removesuffix('.json')}-{summary.run_id}.json"
    for target in (f"{root}/{SUMMARY_FILE}", str(fallback)):
        try:
            write_text_to(target, text)
            return target
        except OSError:
            continue
    sys.stderr.write(json.dumps(record, default=str) + "\n")
    return "stderr (no folder could be written)"
