"""A report as a list of blocks (heading, text, table, figure, note), rendered to GitHub-flavoured Markdown.

Sections build blocks once; `render_markdown` here and `report.html.render_html` render the same
blocks, so report.md and report.html always say the same thing. Text is plain (no inline markup):
each renderer escapes it for its own format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

Align = Literal["left", "right"]


@dataclass
class Heading:
    level: int
    text: str
    anchor: str = ""

    def __post_init__(self) -> None:
        self.anchor = self.anchor or slug(self.text)


@dataclass
class Text:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Note:
    """A call-out: 'warning' for random weights or failures, 'info' for how a figure was measured."""

    kind: Literal["warning", "info", "error"]
    text: str


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    align: list[Align] = field(default_factory=list)  # default: first column left, the rest right
    caption: str = ""

    def alignment(self) -> list[Align]:
        """As given, else: first column left; a column right-aligned when every filled cell starts numeric."""
        if self.align:
            return self.align
        out: list[Align] = ["left"]
        for j in range(1, len(self.headers)):
            cells = [r[j] for r in self.rows if j < len(r) and r[j] not in {"", "-"}]
            out.append("right" if cells and all(re.match(r"[-+]?[\d.]", c) for c in cells) else "left")
        return out


@dataclass
class Figure:
    """A PNG: embedded in HTML as a data URI; written next to report.md under `files` for Markdown."""

    name: str  # file name, e.g. "latency.png"
    png: bytes
    caption: str
    width: int = 0  # display width in px (0: natural, capped by the page)


@dataclass
class Gallery:
    """Several small figures side by side (feature-map grids)."""

    figures: list[Figure]
    wide: bool = False  # charts (two a row) rather than small picture grids


Block = Heading | Text | Bullets | Note | Table | Figure | Gallery


def slug(text: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", text.strip().lower()))


def md_escape(text: str) -> str:
    """Escape what GFM would otherwise treat as markup in plain text and table cells (intraword `_` is literal)."""
    text = text.replace("\\", "\\\\")
    for ch in "|*`[]<>":
        text = text.replace(ch, "\\" + ch)
    text = re.sub(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])", r"\\_", text)
    return text.replace("\n", " ")


def render_markdown(blocks: list[Block], files_dir: str) -> tuple[str, dict[str, bytes]]:
    """GFM text plus the figure files it links (relative to report.md: `files_dir/<name>`)."""
    out: list[str] = []
    files: dict[str, bytes] = {}
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"{'#' * b.level} {md_escape(b.text)}")
        elif isinstance(b, Text):
            out.append(md_escape(b.text))
        elif isinstance(b, Bullets):
            out.append("\n".join(f"- {md_escape(i)}" for i in b.items))
        elif isinstance(b, Note):
            label = {"warning": "Warning", "info": "Note", "error": "Failed"}[b.kind]
            out.append(f"> **{label}:** {md_escape(b.text)}")
        elif isinstance(b, Table):
            out.append(_md_table(b))
        elif isinstance(b, Figure):
            files[b.name] = b.png
            out.append(f"![{md_escape(b.caption)}]({files_dir}/{b.name})\n\n*{md_escape(b.caption)}*")
        elif isinstance(b, Gallery):
            for f in b.figures:
                files[f.name] = f.png
            out.append("\n".join(f"![{md_escape(f.caption)}]({files_dir}/{f.name})" for f in b.figures))
            out.append(" · ".join(f"*{md_escape(f.caption)}*" for f in b.figures))
    return "\n\n".join(out) + "\n", files


def _md_table(t: Table) -> str:
    rule = {"left": ":---", "right": "---:"}
    lines = [
        "| " + " | ".join(md_escape(h) for h in t.headers) + " |",
        "| " + " | ".join(rule[a] for a in t.alignment()) + " |",
    ]
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in t.rows]
    text = "\n".join(lines)
    return f"{text}\n\n*{md_escape(t.caption)}*" if t.caption else text
