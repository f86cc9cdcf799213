"""Rendering blocks: the same blocks say the same thing in GFM and HTML, and hostile text stays text."""

from __future__ import annotations

import base64

from visionbench.report import plots
from visionbench.report.document import (
    Figure,
    Gallery,
    Heading,
    Note,
    Table,
    Text,
    md_escape,
    render_html,
    render_markdown,
    rich_table,
)

PNG = plots.latency_chart(["a", "b"], [1.0, 2.0], [0.1, 0.2])


def test_markdown_escapes_markup_but_keeps_intraword_underscores():
    assert md_escape("a|b <script> *x* [l](u)") == "a\\|b \\<script\\> \\*x\\* \\[l\\](u)"
    assert md_escape("run_20261124_1") == "run_20261124_1"
    assert md_escape("_lead and trail_") == "\\_lead and trail\\_"


def test_error_text_cannot_inject_html():
    evil = "model failed: <img src=x onerror=alert(1)> & <script>alert(2)</script>"
    page = render_html("t", [Heading(1, "t"), Note("error", evil), Table(["model", "reason"], [["m", evil]])])
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page


def test_table_alignment_and_figures_in_both_media():
    table = Table(["model", "ms", "note"], [["a", "1.50", "fast"], ["b", "-", "slow"], ["c", "12.00", "-"]])
    assert table.alignment() == ["left", "right", "left"]
    gallery = Gallery([Figure("g1.png", PNG, "one"), Figure("g2.png", PNG, "two")])
    blocks = [Heading(1, "Report"), Heading(2, "Charts and tables"), Text("x"), table,
              Figure("lat.png", PNG, "latency"), gallery]  # fmt: skip
    md, files = render_markdown(blocks, "files")
    assert set(files) == {"lat.png", "g1.png", "g2.png"} and files["lat.png"] == PNG
    assert "| :--- | ---: | :--- |" in md and "![latency](files/lat.png)" in md
    page = render_html("Report", blocks)
    assert page.count("data:image/png;base64,") == 3
    assert base64.b64encode(PNG).decode() in page
    assert '<a href="#charts-and-tables">Charts and tables</a>' in page  # table of contents from level-2 headings
    assert '<h2 id="charts-and-tables">' in page


def test_plots_return_png_bytes():
    for png in (
        PNG,
        plots.memory_chart(["a"], [10 * 2**20], [None]),
        plots.params_vs_latency_chart(["a", "b"], [2e6, 3e8], [5.0, 900.0]),
        plots.breakdown_chart(["a"], [{"x": 0.7, "y": 0.3}], "t", "%"),
        plots.activation_chart("t", [-1.0, None, -1e-9], [1.0, 2.0, 1e-9], [0.5, 0.0, 1e-10], ["a", "a", "b"]),
    ):
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000


def test_terminal_table_never_reads_markup(capsys):
    """A name like `x[/]` or `[bold]` is text in the terminal too: no crash, no style change."""
    from rich.console import Console

    table = Table(["model", "flag"], [["x[/]", "slower"], ["[bold]b", "faster"], ["[/x]", "-"]])
    console = Console(force_terminal=False, width=80)
    console.print(rich_table(table, title="[red]t[/", styles={"slower": "red"}))
    out = capsys.readouterr().out
    assert "x[/]" in out and "[bold]b" in out and "[/x]" in out and "[red]t[/" in out
