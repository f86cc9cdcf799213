"""A report as a list of blocks and their renderers: Markdown (GFM), one self-contained HTML page, rich tables.

Blocks hold plain text only, so a string a user chose (a model name, an error) is escaped here, by each
renderer for its format, and nowhere else. report.html fetches nothing (PNGs are data URIs): it opens offline.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import rich.table

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
NOTE_LABEL = {"warning": "Warning", "info": "Note", "error": "Failed"}


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
            out.append(f"> **{NOTE_LABEL[b.kind]}:** {md_escape(b.text)}")
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


CSS = """
:root { --fg:#1f2328; --muted:#59636e; --line:#d1d9e0; --bg:#ffffff; --alt:#f6f8fa; --accent:#0969da; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--fg);
  font: 15px/1.5 -apple-system, BlinkMacSystemFont, "Segoe UI", Helvetica, Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 64px; }
nav.toc { background:var(--alt); border:1px solid var(--line); border-radius:6px; padding:8px 16px; margin:16px 0;
  display:flex; flex-wrap:wrap; gap:4px 16px; }
nav.toc a { color:var(--accent); text-decoration:none; white-space:nowrap; }
h1 { font-size: 28px; border-bottom:1px solid var(--line); padding-bottom:8px; }
h2 { font-size: 22px; border-bottom:1px solid var(--line); padding-bottom:6px; margin-top:36px; }
h3 { font-size: 17px; margin-top:24px; }
.tbl { overflow-x:auto; margin: 12px 0; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { border:1px solid var(--line); padding: 4px 9px; }
th { background: var(--alt); font-weight:600; }
tr:nth-child(even) td { background: #fbfcfd; }
td.r, th.r { text-align:right; } td.l, th.l { text-align:left; }
td.r, td:first-child { white-space:nowrap; }
.caption { color:var(--muted); font-size:12.5px; margin-top:4px; }
figure { margin: 16px 0; } figure img { max-width:100%; height:auto; border:1px solid var(--line); border-radius:4px; }
.gallery { display:flex; flex-wrap:wrap; gap:12px; } .gallery figure { flex: 1 1 340px; max-width: 560px; margin:0; }
.gallery:not(.wide) figure img { width:100%; image-rendering: pixelated; }
.gallery.wide figure { flex: 1 1 520px; max-width: 580px; }
.note { border-left: 4px solid; padding: 8px 14px; margin: 12px 0; border-radius: 0 6px 6px 0; }
.note.warning { border-color:#bf8700; background:#fff8c5; } .note.error { border-color:#cf222e; background:#ffebe9; }
.note.info { border-color:var(--accent); background:#ddf4ff; }
footer { color:var(--muted); font-size:12px; margin-top:48px; border-top:1px solid var(--line); padding-top:8px; }
"""


def render_html(title: str, blocks: list[Block], footer: str = "") -> str:
    """The whole page; level-2 headings become the table of contents at the top."""
    toc = [f'<a href="#{_e(b.anchor)}">{_e(b.text)}</a>' for b in blocks if isinstance(b, Heading) and b.level == 2]
    body = [_html_block(b) for b in blocks]
    nav = f'<nav class="toc">{"".join(toc)}</nav>' if toc else ""
    first = body[0] if body and isinstance(blocks[0], Heading) and blocks[0].level == 1 else ""
    rest = body[1:] if first else body
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        + first + nav + "\n".join(rest)
        + (f"\n<footer>{_e(footer)}</footer>" if footer else "")
        + "\n</main>\n</body>\n</html>\n"
    )  # fmt: skip


def _e(text: str) -> str:
    return html.escape(str(text))


def _html_block(b: Block) -> str:
    if isinstance(b, Heading):
        return f'<h{b.level} id="{_e(b.anchor)}">{_e(b.text)}</h{b.level}>'
    if isinstance(b, Text):
        return f"<p>{_e(b.text)}</p>"
    if isinstance(b, Bullets):
        return "<ul>" + "".join(f"<li>{_e(i)}</li>" for i in b.items) + "</ul>"
    if isinstance(b, Note):
        return f'<div class="note {b.kind}"><strong>{NOTE_LABEL[b.kind]}:</strong> {_e(b.text)}</div>'
    if isinstance(b, Table):
        cls = ["l" if a == "left" else "r" for a in b.alignment()]
        head = "".join(f'<th class="{c}">{_e(h)}</th>' for h, c in zip(b.headers, cls, strict=True))
        rows = "".join(
            "<tr>" + "".join(f'<td class="{c}">{_e(v)}</td>' for v, c in zip(row, cls, strict=True)) + "</tr>"
            for row in b.rows
        )
        caption = f'<div class="caption">{_e(b.caption)}</div>' if b.caption else ""
        return f'<div class="tbl"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{caption}</div>'
    if isinstance(b, Figure):
        width = f' style="width:{b.width}px"' if b.width else ""
        uri = "data:image/png;base64," + base64.b64encode(b.png).decode("ascii")
        return (f'<figure><img src="{uri}" alt="{_e(b.caption)}"{width}>'
                f'<figcaption class="caption">{_e(b.caption)}</figcaption></figure>')  # fmt: skip
    cls = "gallery wide" if b.wide else "gallery"
    return f'<div class="{cls}">' + "".join(_html_block(f) for f in b.figures) + "</div>"


def rich_table(t: Table, title: str = "", styles: dict[str, str] | None = None) -> rich.table.Table:
    """The table for a terminal; cells are rich Text, never markup (`[/x]` in a name stays text); `styles` colours
    cells by value, e.g. {"slower": "red"}."""
    import rich.table
    from rich.text import Text as RichText

    styles = styles or {}
    out = rich.table.Table(title=RichText(title) if title else None, header_style="bold")
    for h, a in zip(t.headers, t.alignment(), strict=True):
        out.add_column(RichText(h), justify=a)
    for row in t.rows:
        out.add_row(*(RichText(c, style=styles.get(c, "")) for c in row))
    return out
