"""The report of a run, computed only from its records: report.md, report.html, summary.csv, and the terminal.

The suite calls `write_run_files` after every model, so a run folder always holds a current report;
`build_report` writes the same report from a run folder's files alone (`visionbench report`).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visionbench.errors import BadInputError
from visionbench.files import check_output_dir, inside, write_bytes, write_text
from visionbench.report import plots
from visionbench.report.analysis import summary_rows
from visionbench.report.arch import profile_table
from visionbench.report.compare import Comparison, compare_folders, compare_runs, comparison_table
from visionbench.report.document import Block, Figure, Gallery, Table, Text, render_html, render_markdown, rich_table
from visionbench.report.runview import RunView, view_of
from visionbench.report.sections import report_blocks, results_table
from visionbench.results import RunResult, load_run, save_run

__all__ = [
    "Comparison", "ReportFiles", "build_report", "compare_folders", "compare_runs", "comparison_table",
    "profile_table", "results_table", "rich_table", "schema_doc", "summary_csv", "write_report",
    "write_run_files",
]  # fmt: skip

log = logging.getLogger("visionbench")
SUMMARY_FILE = "summary.csv"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
FILES_DIR = "report_files"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # OWASP: what a spreadsheet reads as the start of a formula


UNDRAWN = "(charts and pictures are drawn when the run completes, or by `visionbench report`)"


def drawn(block: Block) -> bool:
    """False for a figure, or a gallery of figures, left undrawn (`plots.drawing(False)`)."""
    if isinstance(block, Figure):
        return bool(block.png)
    return not isinstance(block, Gallery) or all(f.png for f in block.figures)


@dataclass
class ReportFiles:
    markdown: Path
    html: Path
    figures: list[Path]


def summary_csv(run: RunResult) -> str:
    """summary.csv text: one row a model (and a batch size); text that a spreadsheet would run is defused."""
    rows = summary_rows(run)
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: csv_cell(v) for k, v in r.items()} for r in rows)
    return buf.getvalue()


def csv_cell(value: Any) -> Any:
    """Numbers stay numbers; text starting like a formula gets a leading quote (OWASP CSV injection)."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def write_report(view: RunView, out_dir: Path, charts: bool = True) -> ReportFiles:
    """report.md (figures in report_files/) and report.html (figures embedded); `charts=False` (a run still
    going) leaves each chart and picture for the end."""
    with plots.drawing(charts):
        blocks = [b if drawn(b) else Text(UNDRAWN) for b in report_blocks(view)]
    markdown, figures = render_markdown(blocks, FILES_DIR)
    paths = [write_bytes(inside(out_dir / FILES_DIR, name), png) for name, png in figures.items()]
    footer = (
        f"visionbench report of run {view.run.run_id}, generated only from the records of its run folder "
        f"({view.run_dir.name}: run.json, each model's layers.json and pictures)."
    )
    page = render_html(f"visionbench report {view.run.run_id}", blocks, footer=footer)
    return ReportFiles(write_text(out_dir / REPORT_MD, markdown), write_text(out_dir / REPORT_HTML, page), paths)


def write_run_files(run: RunResult, run_dir: str | Path) -> None:
    """run.json and summary.csv first, so a report that cannot be drawn is a warning, never a lost record;
    charts only once the run is complete (a run still going is not slowed, and Ctrl-C stops at once)."""
    run_dir = Path(run_dir)
    save_run(run, run_dir)
    write_text(run_dir / SUMMARY_FILE, summary_csv(run))
    try:
        write_report(view_of(run, run_dir), run_dir, charts=run.status == "complete")
    except Exception as exc:  # noqa: BLE001 - the records above are written; the report can be redone
        log.warning("report of %s not written (%s); retry with `visionbench report %s`", run_dir, exc, run_dir)


def build_report(run_dir: str | Path, out_dir: str | Path | None = None) -> ReportFiles:
    """The report of the run in `run_dir` (default: into it); both folders are checked before anything is read."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise BadInputError(f"{run_dir}: no such run folder")
    folder = run_dir.parent if run_dir.is_file() else run_dir
    out = check_output_dir(out_dir if out_dir is not None else folder)
    return write_report(view_of(load_run(folder), folder), out)


def schema_doc() -> str:
    """docs/results-schema.md: every record of run.json as a field table, then the JSON Schema itself."""
    from visionbench.results import SCHEMA_VERSION, run_json_schema

    schema = run_json_schema()
    parts = [
        "# run.json schema",
        f"Schema version **{SCHEMA_VERSION}** (generated from the pydantic models in `visionbench/results.py` "
        "with `model_json_schema()`; do not edit by hand). Regenerate with\n\n"
        "    VISIONBENCH_UPDATE_SNAPSHOTS=1 pytest tests/test_results.py -k schema_doc",
        "Read a run with `visionbench.results.load_run(run_dir) -> RunResult`; write one with "
        "`save_run(run, run_dir)` (atomic). Readers accept any file of the same major version and ignore fields "
        "they do not know (a newer minor version added them, with defaults); a file of another major version is "
        "refused with one line. Units are in the field names: `_ms`, `_s`, `_bytes`, `_per_s`.",
    ]
    defs = {"RunResult": schema, **schema.get("$defs", {})}
    for name, spec in defs.items():
        required = set(spec.get("required", []))
        rows = [[field + ("" if field in required else " (optional)"), _schema_type(prop), prop.get("description", "")]
                for field, prop in spec.get("properties", {}).items()]  # fmt: skip
        if rows:
            table, _ = render_markdown([Table(["field", "type", "meaning"], rows, align=["left"] * 3)], ".")
            parts += [f"## {name}", spec.get("description", "").strip(), table.strip()]
    parts += ["## JSON Schema", "```json\n" + json.dumps(schema, indent=2) + "\n```"]
    return "\n\n".join(p for p in parts if p) + "\n"


def _schema_type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in prop:
        return " or ".join(_schema_type(p) for p in prop["anyOf"])
    if prop.get("type") == "array":
        return f"list of {_schema_type(prop.get('items', {}))}"
    if prop.get("type") == "object":
        extra = prop.get("additionalProperties")
        return f"map to {_schema_type(extra)}" if isinstance(extra, dict) else "object"
    if "enum" in prop or "const" in prop:
        return " / ".join(json.dumps(v) for v in prop.get("enum", [prop.get("const")]))
    return str(prop.get("type", "any"))
