"""The analysis report, built from a real small run folder made here: tiny models, input 128, a few runs.

The run (visionbench's own run_suite) holds depth-anything-v2-tiny, yolo11n and depthpro-tiny (at 256 px, the
least its smallest scale needs), benchmarked, dissected and profiled, and a model name that does not exist,
which fails for real, so the report must name it. One run serves every test of this file.
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
from visionbench.config import BenchConfig, ModelPlan
from visionbench.layers_json import layers_path
from visionbench.report import analysis as an
from visionbench.report import build_report
from visionbench.results import load_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "report-screenshot.png"
OK_MODELS = ["depth-anything-v2-tiny", "yolo11n", "depthpro-tiny"]
FAILING = "no-such-model"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, device) -> Path:
    config = BenchConfig(models=[*OK_MODELS, FAILING], device=device, weights="random", input_size=128, runs=3,
                         budget_s=0.2, warmup=1, dissect=True, profile=True,
                         plans={"depthpro-tiny": ModelPlan(input_size=256)})  # fmt: skip
    _, folder = run_suite(config, out_root=tmp_path_factory.mktemp("runs"))
    (folder / "in-progress.md").write_text((folder / "report.md").read_text())  # the suite's last report
    build_report(folder)
    return folder


def test_the_suite_writes_the_same_report_that_report_writes(run_dir):
    """One pipeline: the report the suite leaves after its last model is the one `visionbench report` writes."""
    assert (run_dir / "in-progress.md").read_text() == (run_dir / "report.md").read_text()


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
    text = (run_dir / "report.md").read_text()
    summary, size = table_with(text, "mean ± std (ms)"), table_with(text, "layers dissected")
    head, rows = summary[0], {r[0]: dict(zip(summary[0], r, strict=True)) for r in summary[1:]}
    for r in size[1:]:
        rows[r[0]].update(zip(size[0], r, strict=True))
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
        assert row["input → output"].startswith(f"{m.input_size} px")
    assert rows[FAILING]["status"] == "FAILED" and rows[FAILING]["mean ± std (ms)"] == "-"


def _layers(run_dir: Path, name: str) -> list[dict]:
    import json

    path = layers_path(run_dir / load_run(run_dir).result(name).dissection.path)
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
        assert [r["component"] for r in rows] == [c.label for c in profile.components]
        assert sum(num(r["time share"]) for r in rows) == pytest.approx(100, abs=0.1 * len(rows))
        assert sum(num(r["FLOP share"]) for r in rows) == pytest.approx(100, abs=0.1 * len(rows))
        for r, c in zip(rows, profile.components, strict=True):
            assert num(r["time (ms)"]) == pytest.approx(c.time_ms, abs=0.051)
        total = next(r for r in table[1:] if r[0] == "total")
        assert num(total[2]) == pytest.approx(profile.hooked_ms, abs=0.051)
    assert "breakdown-time.png" in text and "breakdown-flops.png" in text


def test_failed_model_is_named_with_its_reason_and_the_rest_is_reported(run_dir):
    text = (run_dir / "report.md").read_text()
    failures = table_with(text, "reason")
    row = next(r for r in failures if r[0] == FAILING)
    assert row[1] == "failed" and "unknown model" in row[2]
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
    "b.tables=document.querySelectorAll('table').length;"
    "b.small=[...document.querySelectorAll('.gallery:not(.wide) img')]"
    ".filter(x=>x.getBoundingClientRect().width<0.9*x.parentElement.getBoundingClientRect().width).length;"
    "b.pictures=document.querySelectorAll('.gallery:not(.wide) img').length;})</script>"
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
    assert int(body["pictures"]) >= 6 and body["small"] == "0"  # feature maps fill their box: big enough to read
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
    assert rows["a"][1:] == ["oom", "out of memory at batch 1", "-"] and rows["b"][1] == "timeout"
    assert "No model was measured successfully" in text
    assert "exceeded --timeout 5 s" in files.html.read_text()


# Issue 13: paths from a run folder stay in it, user strings are escaped, partial results keep their
# figures, an unusable --out is one line before any work. Small run folders written here, no suite.


def small_run(tmp_path: Path, *models) -> Path:
    from visionbench.measure.environment import capture_environment
    from visionbench.results import RunResult, now_iso, save_run

    run = RunResult(run_id="r", started_at=now_iso(), config=BenchConfig(models=[m.name for m in models]),
                    environment=capture_environment("cpu", 0), models=list(models))  # fmt: skip
    save_run(run, tmp_path)
    return tmp_path


def timed(name: str, status: str = "ok", **fields):
    from visionbench.measure.timing import latency_stats
    from visionbench.results import BatchResult, MemoryStats, ModelResult

    batch = BatchResult(batch_size=1, status="ok" if status == "ok" else status, flops=4 * 10**9,
                        model_latency=latency_stats([40.0, 42.0, 44.0], kind="model"),
                        memory=MemoryStats(device_type="cpu", method="t", peak_bytes=300 * 2**20))  # fmt: skip
    return ModelResult(name=name, status=status, batches=[batch], params=3 * 10**6, load_time_s=1.25, **fields)


def test_model_folders_outside_the_run_are_not_read(tmp_path):
    from visionbench.results import DissectionRef

    outside = tmp_path / "outside"
    (outside / "x").mkdir(parents=True)
    (outside / "x" / "profile.json").write_text("{not read}")
    (outside / "layers.json").write_text('{"layers": [{"name": "secret", "std": 1.0}]}')
    run = tmp_path / "run"
    (run / "linked").mkdir(parents=True)
    (run / "linked" / "out").symlink_to(outside)  # a subfolder that is a link out of the run folder
    small_run(run, timed("climbs", folder="../outside/x"), timed("absolute", folder=str(outside / "x")),
              timed("dissected", dissection=DissectionRef(path="../outside")),
              timed("linked", dissection=DissectionRef(path="linked")))  # fmt: skip
    res = CliRunner().invoke(app, ["report", str(run)])
    assert res.exit_code == 0, res.output
    text = (run / "report.md").read_text()
    assert "climbs: model folder '../outside/x' is outside the run folder: not read" in text
    assert "absolute: model folder" in text and "dissected: dissection path '../outside' is outside" in text
    assert "linked: layers.json under 'linked' lies outside the run folder: not read" in text
    assert "secret" not in text and "not read}" not in text


def test_user_strings_are_escaped_in_markdown_html_and_terminal(tmp_path):
    evil = "<img src=x onerror=alert(1)>|[/x]*_"
    small_run(tmp_path, timed(evil), timed("b", status="failed", error="<script>alert(2)</script>"))
    files = build_report(tmp_path)
    page, text = files.html.read_text(), files.markdown.read_text()
    assert "<img src=x" not in page and "<script>alert" not in page and "&lt;img src=x" in page
    assert not re.search(r"(?<!\\)<[a-zA-Z/]", text)  # no raw HTML in the Markdown either
    assert table_with(text, "mean ± std (ms)")[1][0] == evil  # the cell reads back as the name itself
    assert parse_html(files.html).tables[0][1][0] == evil


def test_partial_result_shows_its_figures_with_a_mark(tmp_path):
    stopped = timed("slow", status="timeout", error="exceeded --timeout 5 s", partial=True,
                    partial_reason="timeout after 5 s")  # fmt: skip
    small_run(tmp_path, timed("fast"), stopped)
    text = build_report(tmp_path).markdown.read_text()
    summary = table_with(text, "mean ± std (ms)")
    row = dict(zip(summary[0], next(r for r in summary if r[0] == "slow"), strict=True))
    assert row["status"] == "TIMEOUT (partial)" and num(row["median (ms)"]) == 42.0
    assert num(row["load (s)"]) == 1.25 and num(row["peak memory (MiB)"]) == 300.0
    assert row["speed rank"] == "-"  # ranked only among the models that finished
    failures = {r[0]: r for r in table_with(text, "partial result")[1:]}
    assert failures["slow"][1:] == ["timeout", "exceeded --timeout 5 s", "timeout after 5 s"]
    size = {r[0]: r for r in table_with(text, "layers dissected")[1:]}
    assert num(size["slow"][1]) == 3.0 and num(size["slow"][2]) == 4.0  # params (M), GFLOP


def test_summary_csv_defuses_formulas_and_keeps_numbers(tmp_path):
    import csv

    small_run(tmp_path, timed("=HYPERLINK(\"http://x\")", status="failed", error="-2+3"), timed("@sum"),
              timed("+a"), timed("\tb"), timed("plain"))  # fmt: skip
    from visionbench.report import write_run_files
    from visionbench.results import load_run

    write_run_files(load_run(tmp_path), tmp_path)
    with open(tmp_path / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["model"] for r in rows] == ['\'=HYPERLINK("http://x")', "'@sum", "'+a", "'\tb", "plain"]
    assert rows[0]["error"] == "'-2+3"
    assert float(rows[4]["model_median_ms"]) == 42.0 and rows[4]["params"] == "3000000"  # numbers stay numbers


@pytest.mark.parametrize("command", ["report", "compare"])
@pytest.mark.parametrize("how", ["file", "under a file", "read-only"])
def test_unusable_out_is_one_line_before_any_work(tmp_path, command, how):
    run = small_run(tmp_path / "run", timed("m"))
    before = sorted(p.name for p in run.iterdir())
    blocker = tmp_path / "blocker"
    blocker.write_text("keep me")
    if how == "read-only":
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        out = tmp_path / "ro"
        out.mkdir()
        out.chmod(0o500)
    else:
        out = blocker if how == "file" else blocker / "sub"
    args = [command, str(run), *([str(run)] if command == "compare" else []), "--out", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --out") and "Traceback" not in res.output
    assert sorted(p.name for p in run.iterdir()) == before and blocker.read_text() == "keep me"


def test_a_run_of_another_major_version_is_one_line(tmp_path):
    import json

    run = small_run(tmp_path, timed("m"))
    data = json.loads((run / "run.json").read_text())
    data["schema_version"] = "9.0"
    (run / "run.json").write_text(json.dumps(data))
    res = CliRunner().invoke(app, ["report", str(run)])
    assert res.exit_code == 2 and "schema version 9.0 is not readable" in res.output
    assert len([ln for ln in res.output.splitlines() if ln.strip()]) == 1
    assert not (run / "report.md").exists()


# Issue 15: every section of the hand-written report, measured, from the same shared run.

SECTIONS = ["Executive summary", "Failures", "Charts", "Architecture analysis", "Transformer features",
            "Output analysis", "Memory profile", "Speed statistics", "Head-to-head", "Findings from the numbers",
            "Suitability and recommendations", "Reproduce this run", "Method and environment"]  # fmt: skip


def test_every_section_is_there_in_reading_order(run_dir):
    text = (run_dir / "report.md").read_text()
    heads = [line[3:] for line in text.splitlines() if line.startswith("## ")]
    found = [next(i for i, h in enumerate(heads) if h.startswith(s)) for s in SECTIONS]
    assert found == sorted(found), heads
    assert re.search(r"matmul [\d.,]+ TFLOP/s over \d+ runs, copy [\d.,]+ GB/s", text)  # the probe's figures


def stage_tables(text: str) -> dict[str, list[list[str]]]:
    """Each stage table of report.md keyed by its caption's stage ('fusion: fusion_stage.intermediate.0')."""
    out = {}
    blocks = text.split("\n\n")
    for i, block in enumerate(blocks[:-1]):
        if block.startswith("| index | layer | type | output shape |"):
            caption = blocks[i + 1].strip("*")
            out[caption.split(" (")[0]] = md_tables(block)[0]
    return out


def test_depthpro_stage_by_stage_tables_hold_each_layer_of_layers_json(run_dir):
    tables = stage_tables((run_dir / "report.md").read_text())
    records = {r["index"]: r for r in _layers(run_dir, "depthpro-tiny") if r.get("kind") == "tensor"}
    stages = [f"fusion: fusion_stage.intermediate.{i}" for i in range(4)] + ["fusion: fusion_stage.final"]
    stages += ["neck: depth_pro.neck.feature_upsample", "neck: depth_pro.neck.feature_projection",
               "head: head.layers", "fov: fov_model.head"]  # fmt: skip
    for stage in stages:
        table = tables[stage]
        assert table[0] == ["index", "layer", "type", "output shape", "min", "max", "mean", "std", "sparsity"]
        for row in table[1:]:
            rec = records[int(row[0])]
            assert rec["name"].endswith(row[1]) and row[2] == rec["type"]
            assert row[3] == str(rec["shape"])
            for col, key in ((4, "min"), (5, "max"), (6, "mean"), (7, "std")):
                assert num(row[col]) == pytest.approx(rec[key], rel=1e-3, abs=1e-12)
            assert num(row[8]) == pytest.approx(100 * rec["sparsity"], abs=0.051)
    fusion = [r for r in records.values() if r["component"] == "fusion"]
    assert sum(len(tables[s]) - 1 for s in stages[:5]) == len(fusion)  # every fusion layer in one stage table


def test_yolo_is_laid_out_by_its_own_components(run_dir):
    tables = stage_tables((run_dir / "report.md").read_text())
    records = [r for r in _layers(run_dir, "yolo11n") if r.get("kind") == "tensor"]
    shown = [int(row[0]) for caption, t in tables.items() for row in t[1:]
             if caption.split(":")[0] in {"backbone", "neck", "head"}]  # fmt: skip
    assert sorted(set(shown)) == sorted(r["index"] for r in records)  # YOLO's and the other models' indices


def test_transformer_blocks_are_captured_in_the_run_dissection(run_dir):
    text = (run_dir / "report.md").read_text()
    table = table_with(text, "token shape")
    run = load_run(run_dir)
    for name in ("depthpro-tiny", "depth-anything-v2-tiny"):
        path = layers_path(run_dir / run.result(name).dissection.path)
        import json

        doc = json.loads(path.read_text())
        assert doc["blocks"], name  # captured in the run's own dissection pass
        rows = [r for r in table[1:] if r[0] == name]
        assert [(r[1], int(r[2]), r[3]) for r in rows] == [(b["encoder"], b["block"], str(b["shape"]))
                                                           for b in doc["blocks"]]  # fmt: skip
        for r, b in zip(rows, doc["blocks"], strict=True):
            assert num(r[7]) == pytest.approx(b["std"], rel=1e-3)
    patch = [r for r in table[1:] if r[0] == "depthpro-tiny" and r[1].endswith("patch_encoder")]
    assert [r[2] for r in patch] == ["0", "1"] and patch[0][3] == "[35, 17, 32]"  # 35 patches of 16+1 tokens
    assert "yolo11n" not in {r[0] for r in table[1:]}  # a CNN has no transformer blocks
    assert re.search(r"report_files/blocks-depthpro-tiny-[\w-]*patch_encoder\.png", text)


def test_memory_profile_equals_run_json(run_dir):
    run = load_run(run_dir)
    table = table_with((run_dir / "report.md").read_text(), "peak beyond weights (MiB)")
    rows = {r[0]: dict(zip(table[0], r, strict=True)) for r in table[1:]}
    for name in OK_MODELS:
        m = run.result(name)
        mem, row = m.primary.memory, rows[name]
        assert num(row["before load (MiB)"]) == pytest.approx(mem.baseline_rss_bytes / 2**20, abs=0.051)
        assert num(row["after load (MiB)"]) == pytest.approx(mem.after_load_bytes / 2**20, abs=0.051)
        assert num(row["peak while running (MiB)"]) == pytest.approx(mem.peak_bytes / 2**20, abs=0.051)
        assert num(row["after cleanup (MiB)"]) == pytest.approx(mem.after_cleanup_bytes / 2**20, abs=0.051)
        assert m.weights_bytes > 0 and num(row["weights (MiB)"]) == pytest.approx(m.weights_bytes / 2**20, abs=0.051)
        beyond = (mem.peak_bytes - m.weights_bytes) / 2**20
        assert num(row["peak beyond weights (MiB)"]) == pytest.approx(beyond, abs=0.051)


def test_speed_statistics_equal_the_samples(run_dir):
    run = load_run(run_dir)
    table = table_with((run_dir / "report.md").read_text(), "stop reason")
    rows = {(r[0], r[1]): dict(zip(table[0], r, strict=True)) for r in table[1:]}
    for name in OK_MODELS:
        s = run.result(name).primary.model_latency
        row = rows[(name, "model")]
        assert int(row["samples"]) == s.count == len(s.samples_ms)
        assert num(row["CV"]) == pytest.approx(100 * s.std_ms / s.mean_ms, abs=0.051)
        for col, v in (("min (ms)", s.min_ms), ("max (ms)", s.max_ms), ("p99 (ms)", s.p99_ms)):
            assert num(row[col]) == pytest.approx(v, abs=0.051)
        assert row["stop reason"] == s.stop_reason != ""
        assert (name, "end to end") in rows


def test_head_to_head_puts_depthpro_first_with_ratios(run_dir):
    run = load_run(run_dir)
    text = (run_dir / "report.md").read_text()
    assert "## Head-to-head: depthpro-tiny against the other depth models" in text
    table = table_with(text, "1000 images (device-hours)")
    rows = {r[0]: dict(zip(table[0], r, strict=True)) for r in table[1:]}
    assert table[1][0] == "depthpro-tiny" and set(rows) == {"depthpro-tiny", "depth-anything-v2-tiny"}
    dp, da = run.result("depthpro-tiny"), run.result("depth-anything-v2-tiny")
    ratio = dp.primary.model_latency.median_ms / da.primary.model_latency.median_ms
    assert num(rows["depth-anything-v2-tiny"]["speed vs depthpro-tiny"]) == pytest.approx(ratio, abs=0.006)
    assert rows["depthpro-tiny"]["speed vs depthpro-tiny"] == "1.00x"
    assert rows["depthpro-tiny"]["depth type"] == "metric" and rows["depthpro-tiny"]["FOV (deg)"] != "-"
    assert rows["depth-anything-v2-tiny"]["FOV (deg)"] == "-"
    hours = 1000 / an.best_throughput(dp)[0] / 3600
    assert num(rows["depthpro-tiny"]["1000 images (device-hours)"]) == pytest.approx(hours, abs=0.00006)


def test_findings_and_reproduce_commands(run_dir):
    text = (run_dir / "report.md").read_text()
    findings = text[text.index("## Findings from the numbers") : text.index("## Suitability")]
    assert "mean nothing about the trained model" in findings  # random weights said
    assert "Std of each fusion stage's last output: fusion_stage.intermediate.0 " in findings
    assert "FOV network: 5 layers" in findings and "Output: metric depth" in findings
    reproduce = text[text.index("## Reproduce this run") : text.index("## Method and environment")]
    assert "visionbench bench depthpro-tiny --weights random --device cpu --input-size 256" in reproduce
    assert "visionbench dissect yolo11n --weights random --device cpu --input-size 128" in reproduce


def test_a_run_of_schema_1_2_without_the_new_fields_still_renders(tmp_path):
    """No weights size, no after-cleanup figure, no dissection: the sections say so instead of failing."""
    folder = small_run(tmp_path, timed("old"))
    text = build_report(folder).markdown.read_text()
    row = next(r for r in table_with(text, "peak beyond weights (MiB)")[1:] if r[0] == "old")
    assert row[3] == "300.0" and row[4] == row[5] == row[6] == "-"
    assert "Not measured: no model was dissected" in text
    assert "## Speed statistics" in text


def test_the_run_captures_first_middle_and_last_block_of_full_depthpro():
    """0/12/23 of DepthPro's ViT-L encoders (built on the meta device: no weights, no forward)."""
    import torch
    from transformers import DepthProForDepthEstimation

    from visionbench.bench.hooks import transformer_blocks
    from visionbench.models.depth_pro import depth_pro_config

    with torch.device("meta"):
        full = DepthProForDepthEstimation(depth_pro_config())
    assert transformer_blocks(full) == [0, 12, 23]  # not the decoder's list of five fusion layers
    assert transformer_blocks(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3))) == []
