"""Reports computed only from result files: analysis (pure functions), report.md, summary.csv (and HTML).

`write_run_files(run, run_dir)` rewrites run.json, summary.csv and report.md atomically; the suite
calls it after every model, so a run folder is always complete and consistent.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

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


def schema_doc() -> str:
    """docs/results-schema.md: every record of run.json as a field table, then the JSON Schema itself."""
    import json

    from visionbench.results import SCHEMA_VERSION, run_json_schema

    schema = run_json_schema()
    parts = [
        "# run.json schema",
        f"Schema version **{SCHEMA_VERSION}** (generated from the pydantic models in `visionbench/results.py` "
        "with `model_json_schema()`; do not edit by hand). Regenerate with\n\n"
        "    python -c \"from visionbench.report import schema_doc; print(schema_doc(), end='')\" "
        "> docs/results-schema.md",
        "Read a run with `visionbench.results.load_run(run_dir) -> RunResult`; write one with "
        "`save_run(run, run_dir)` (atomic). Readers accept any file of the same major version; fields are only "
        "added, with defaults, within a major version. Units are in the field names: `_ms`, `_s`, `_bytes`, `_per_s`.",
    ]
    defs = {"RunResult": schema, **schema.get("$defs", {})}
    for name, spec in defs.items():
        rows = []
        required = set(spec.get("required", []))
        for field, prop in spec.get("properties", {}).items():
            desc = prop.get("description", "")
            rows.append([f"`{field}`" + ("" if field in required else " (optional)"), _schema_type(prop), desc])
        if rows:
            parts += [
                f"## {name}",
                spec.get("description", "").strip(),
                _left_table(["field", "type", "meaning"], rows),
            ]
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
    if "enum" in prop:
        return " / ".join(json_repr(v) for v in prop["enum"])
    if "const" in prop:
        return json_repr(prop["const"])
    return str(prop.get("type", "any"))


def json_repr(v: object) -> str:
    return f'"{v}"' if isinstance(v, str) else str(v)


def _left_table(head: list[str], rows: list[list[str]]) -> str:
    def esc(x: str) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(head) + " |", "|" + " :--- |" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows])
