"""The analysis report, built from a real small run folder made here: tiny models, input 128, a few runs.

The run (visionbench's own run_suite) holds depth-anything-v2-tiny and yolo11n, benchmarked, dissected and
profiled, and depthpro-tiny,
which fails for real (128 px is below what its smallest scale needs), so the report must name it.
"""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from visionbench.bench.suite import run_suite
from visionbench.cli import app
from visionbench.config import BenchConfig
from visionbench.report import analysis as an
from visionbench.report.full import build_report
from visionbench.report.runview import find_layers_file
from visionbench.results import load_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "report-screenshot.png"
OK_MODELS = ["depth-anything-v2-tiny", "yolo11n"]
FAILING = "depthpro-tiny"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, device) -> Path:
    config = BenchConfig(models=[*OK_MODELS, FAILING], device=device, weights="random", input_size=128, runs=3,
                         budget_s=0.2, warmup=1, dissect=True, profile=True)  # fmt: skip
    _, folder = run_suite(config, out_root=tmp_path_factory.mktemp("runs"))
    build_report(folder)
    return folder


def md_tables(text: str) -> list[list[list[str]]]:
    """Every GFM table of a Markdown text as rows of unescaped cells (header first, rule dropped)."""
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("| "):
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                current.append([re.sub(r"\\(.)", r"\1", c) for c in cells])
        elif current:
            tables.append(current)
            current = []
    return tables


def table_with(text: str, header: str) -> list[list[str]]:
    return next(t for t in md_tables(text) if header in t[0])


def num(cell: str) -> float:
    return float(re.sub(r"[^\d.eE+-]", "", cell.split("±")[0]))


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.tags: list[tuple[str, dict[str, str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in {"td", "th"}:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in {"td", "th"} and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse_html(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def test_summary_numbers_equal_run_json(run_dir):
    run = load_run(run_dir)
    summary = table_with((run_dir / "report.md").read_text(), "mean ± std (ms)")
    head, rows = summary[0], {r[0]: dict(zip(summary[0], r, strict=True)) for r in summary[1:]}
    assert set(rows) == {*OK_MODELS, FAILING} and head[0] == "model"
    speed = an.speed_ranks(run)
    for name in OK_MODELS:
        m, row = run.result(name), rows[name]
        lat = m.primary.model_latency
        mean, std = (num(x) for x in row["mean ± std (ms)"].split("±"))
        assert mean == pytest.approx(lat.mean_ms, abs=0.051) and std == pytest.approx(lat.std_ms, abs=0.051)
        assert num(row["median (ms)"]) == pytest.approx(lat.median_ms, abs=0.051)
        assert num(row["FPS"]) == pytest.approx(lat.fps, abs=0.006)
        assert num(row["peak memory (MiB)"]) == pytest.approx(m.primary.memory.peak_bytes / 2**20, abs=0.051)
        assert num(row["load (s)"]) == pytest.approx(m.load_time_s, abs=0.006)
        assert num(row["params"]) == pytest.approx(m.params / 1e6, abs=0.006)
        assert num(row["GFLOP"]) == pytest.approx(m.primary.flops / 1e9, abs=0.006)
        assert int(row["speed rank"]) == speed[name]
        layers = [r for r in _layers(run_dir, name) if r.get("kind") == "tensor"]
        assert int(row["layers dissected"]) == len(layers) > 0
        assert row["input → output"].startswith("128 px")
    assert rows[FAILING]["mean ± std (ms)"] == "FAILED"


def _layers(run_dir: Path, name: str) -> list[dict]:
    import json

    path = find_layers_file(run_dir / load_run(run_dir).result(name).dissection.path)
    return json.loads(path.read_text())["records"]


def test_html_tables_say_what_markdown_says(run_dir):
    md = md_tables((run_dir / "report.md").read_text())
    page = parse_html(run_dir / "report.html")
    assert len(page.tables) == len(md)
    for t_md, t_html in zip(md, page.tables, strict=True):
        assert t_md == t_html


def test_component_shares_add_up_and_match_the_profile(run_dir):
    run = load_run(run_dir)
    text = (run_dir / "report.md").read_text()
    tables = [t for t in md_tables(text) if t[0][:3] == ["component", "calls", "time (ms)"]]
    assert len(tables) == len(OK_MODELS)
    for name, table in zip(OK_MODELS, tables, strict=True):
        profile = run.result(name).profile
        rows = [dict(zip(table[0], r, strict=True)) for r in table[1:] if r[0] != "total"]
        assert [r["component"] for r in rows] == [c["label"] for c in profile["components"]]
        assert sum(num(r["time share"]) for r in rows) == pytest.approx(100, abs=0.1 * len(rows))
        assert sum(num(r["FLOP share"]) for r in rows) == pytest.approx(100, abs=0.1 * len(rows))
        for r, c in zip(rows, profile["components"], strict=True):
            assert num(r["time (ms)"]) == pytest.approx(c["time_ms"], abs=0.051)
        total = next(r for r in table[1:] if r[0] == "total")
        assert num(total[2]) == pytest.approx(profile["hooked_ms"], abs=0.051)
    assert "breakdown-time.png" in text and "breakdown-flops.png" in text


def test_failed_model_is_named_with_its_reason_and_the_rest_is_reported(run_dir):
    text = (run_dir / "report.md").read_text()
    failures = table_with(text, "reason")
    row = next(r for r in failures if r[0] == FAILING)
    assert row[1] == "failed" and "needs at least 256 px" in row[2]
    for name in OK_MODELS:
        assert f"### {name}" in text  # architecture section per measured model
    assert text.index("RANDOM weights") < text.index("## Executive summary")  # weights mode at the top


def test_markdown_is_plain_gfm_with_existing_figures(run_dir):
    text = (run_dir / "report.md").read_text()
    assert not re.search(r"(?<!\\)<[a-zA-Z/]", text)  # no raw HTML
    links = re.findall(r"!\[(?:\\.|[^\]\\])*\]\(([^)]+)\)", text)
    assert len(links) >= 8 and all((run_dir / link).is_file() for link in links)
    for table in md_tables(text):
        assert len({len(r) for r in table}) == 1  # every row has the header's column count


def test_html_is_self_contained(run_dir):
    page = parse_html(run_dir / "report.html")
    tags = {t for t, _ in page.tags}
    assert "script" not in tags and "link" not in tags and "iframe" not in tags
    images = [a["src"] for t, a in page.tags if t == "img"]
    assert len(images) >= 8
    for src in images:
        assert src.startswith("data:image/png;base64,")
        Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).verify()
    refs = [v for _, a in page.tags for k, v in a.items() if k in {"src", "href"}]
    assert all(not r.startswith(("http:", "https:", "//", "file:")) for r in refs)


def test_cli_report_and_bad_folder(run_dir, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["report", str(run_dir), "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "report.html").stat().st_size > 10_000 and (tmp_path / "report_files").is_dir()
    bad = runner.invoke(app, ["report", str(tmp_path / "nope")])
    assert bad.exit_code == 2 and "no such run folder" in bad.output


def chromium(args: list[str], tmp: Path) -> subprocess.CompletedProcess:
    """Headless Chromium, offline and quiet, logging the page's console to stderr."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp / 'profile'}",
           "--enable-logging=stderr", "--v=0", "--hide-scrollbars", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


# A probe appended to a copy of the page (the report itself has no script): after load, it records how many
# images decoded and how many tables exist as attributes that --dump-dom prints.
PROBE = (
    "<script>addEventListener('load',()=>{const i=[...document.images];const b=document.body.dataset;"
    "b.images=i.length;b.broken=i.filter(x=>!(x.complete&&x.naturalWidth>0)).length;"
    "b.tables=document.querySelectorAll('table').length;})</script>"
)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install -y chromium)")
def test_html_renders_in_headless_chromium(run_dir, tmp_path):
    shot = tmp_path / "shot.png"
    res = chromium([f"--screenshot={shot}", "--window-size=1280,2400", (run_dir / "report.html").as_uri()], tmp_path)
    assert shot.is_file(), res.stderr[-2000:]
    console = [ln for ln in res.stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]
    assert not console, console  # the page has no script: any console line is a failed load or an error
    im = Image.open(shot).convert("RGB")
    assert im.size == (1280, 2400)
    pixels = im.getdata()
    chart_blue = sum(1 for r, g, b in pixels if abs(r - 0x4C) < 12 and abs(g - 0x72) < 12 and abs(b - 0xB0) < 12)
    assert chart_blue > 2000  # the latency chart's bars are on screen, not an empty frame
    probe = tmp_path / "probe.html"
    probe.write_text((run_dir / "report.html").read_text().replace("</body>", PROBE + "</body>"))
    dom = chromium(["--dump-dom", "--virtual-time-budget=5000", probe.as_uri()], tmp_path).stdout
    body = dict(re.findall(r'data-(\w+)="(\d+)"', re.search(r"<body[^>]*>", dom).group(0)))
    page = parse_html(run_dir / "report.html")
    assert int(body["images"]) == sum(t == "img" for t, _ in page.tags) >= 8
    assert body["broken"] == "0"
    assert int(body["tables"]) == len(page.tables) >= 8
    if os.environ.get("VISIONBENCH_UPDATE_SCREENSHOT"):  # regenerate docs/report-screenshot.png
        shutil.copyfile(shot, SCREENSHOT)


def test_a_run_where_every_model_failed_still_renders(tmp_path):
    from visionbench.measure.environment import capture_environment
    from visionbench.results import ModelResult, RunResult, now_iso, save_run

    run = RunResult(run_id="failed-run", started_at=now_iso(), config=BenchConfig(models=["a", "b"]),
                    environment=capture_environment("cpu", 0), status="interrupted",
                    models=[ModelResult(name="a", status="oom", error="out of memory at batch 1"),
                            ModelResult(name="b", status="timeout", error="exceeded --timeout 5 s")])  # fmt: skip
    save_run(run, tmp_path)
    files = build_report(tmp_path)
    text = files.markdown.read_text()
    rows = {r[0]: r for r in table_with(text, "reason")[1:]}
    assert rows["a"][1:] == ["oom", "out of memory at batch 1"] and rows["b"][1] == "timeout"
    assert "No model was measured successfully" in text
    assert "exceeded --timeout 5 s" in files.html.read_text()
