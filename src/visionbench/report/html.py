"""report.html: the report's blocks as one self-contained page (inline CSS, PNGs as data URIs, no scripts).

Nothing is fetched: no fonts, no stylesheets, no JavaScript, so the file opens from disk, offline,
in any browser, and can be mailed or attached to an issue as it is.
"""

from __future__ import annotations

import base64
import html

from visionbench.report.document import Block, Bullets, Figure, Gallery, Heading, Note, Table, Text

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
.gallery { display:flex; flex-wrap:wrap; gap:12px; } .gallery figure { flex: 1 1 300px; max-width: 380px; margin:0; }
.gallery.wide figure { flex: 1 1 520px; max-width: 580px; }
.note { border-left: 4px solid; padding: 8px 14px; margin: 12px 0; border-radius: 0 6px 6px 0; }
.note.warning { border-color:#bf8700; background:#fff8c5; } .note.error { border-color:#cf222e; background:#ffebe9; }
.note.info { border-color:var(--accent); background:#ddf4ff; }
footer { color:var(--muted); font-size:12px; margin-top:48px; border-top:1px solid var(--line); padding-top:8px; }
"""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_html(title: str, blocks: list[Block], footer: str = "") -> str:
    """The whole page; level-2 headings become the table of contents at the top."""
    e = html.escape
    toc = [f'<a href="#{e(b.anchor)}">{e(b.text)}</a>' for b in blocks if isinstance(b, Heading) and b.level == 2]
    body = [_block(b) for b in blocks]
    nav = f'<nav class="toc">{"".join(toc)}</nav>' if toc else ""
    first = body[0] if body and isinstance(blocks[0], Heading) and blocks[0].level == 1 else ""
    rest = body[1:] if first else body
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        + first + nav + "\n".join(rest)
        + (f"\n<footer>{e(footer)}</footer>" if footer else "")
        + "\n</main>\n</body>\n</html>\n"
    )  # fmt: skip


def _block(b: Block) -> str:
    e = html.escape
    if isinstance(b, Heading):
        return f'<h{b.level} id="{e(b.anchor)}">{e(b.text)}</h{b.level}>'
    if isinstance(b, Text):
        return f"<p>{e(b.text)}</p>"
    if isinstance(b, Bullets):
        return "<ul>" + "".join(f"<li>{e(i)}</li>" for i in b.items) + "</ul>"
    if isinstance(b, Note):
        label = {"warning": "Warning", "info": "Note", "error": "Failed"}[b.kind]
        return f'<div class="note {b.kind}"><strong>{label}:</strong> {e(b.text)}</div>'
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, Figure):
        return _figure(b)
    if isinstance(b, Gallery):
        cls = "gallery wide" if b.wide else "gallery"
        return f'<div class="{cls}">' + "".join(_figure(f) for f in b.figures) + "</div>"
    raise TypeError(f"unknown block {type(b).__name__}")


def _table(t: Table) -> str:
    e = html.escape
    cls = ["l" if a == "left" else "r" for a in t.alignment()]
    head = "".join(f'<th class="{c}">{e(h)}</th>' for h, c in zip(t.headers, cls, strict=True))
    rows = "".join(
        "<tr>" + "".join(f'<td class="{c}">{e(v)}</td>' for v, c in zip(row, cls, strict=True)) + "</tr>"
        for row in t.rows
    )
    caption = f'<div class="caption">{e(t.caption)}</div>' if t.caption else ""
    return f'<div class="tbl"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{caption}</div>'


def _figure(f: Figure) -> str:
    e = html.escape
    width = f' style="width:{f.width}px"' if f.width else ""
    return (
        f'<figure><img src="{data_uri(f.png)}" alt="{e(f.caption)}"{width}>'
        f'<figcaption class="caption">{e(f.caption)}</figcaption></figure>'
    )
