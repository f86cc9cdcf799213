"""`visionbench compare RUN_A RUN_B`: per-model changes in median latency and peak memory, flagged only
where a change is beyond the runs' own noise (RULE; docs/report.md gives the reasons).

Latency needs both a Mann-Whitney U test and a shift beyond the pooled robust spread, so neither a
tiny-but-consistent shift nor one noisy sample raises a flag. Memory is one reading a run, with no noise
estimate: a fixed threshold.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from visionbench.errors import BadInputError
from visionbench.files import check_output_dir, write_json, write_text
from visionbench.report import fmt
from visionbench.report.document import Block, Heading, Note, Table, Text, render_markdown
from visionbench.results import ModelResult, RunResult, load_run

P_THRESHOLD = 0.01
SPREAD_FACTOR = 2.0
MIN_LATENCY_CHANGE = 0.01
MEMORY_CHANGE = 0.05
MEMORY_MIN_BYTES = 16 * 1024**2
RULE = (
    f"latency: flagged when a two-sided Mann-Whitney U test on the raw samples gives p < {P_THRESHOLD} and the "
    f"medians differ by more than {SPREAD_FACTOR:g}x the pooled spread (scaled MAD of each run, in quadrature) and "
    f"by more than {MIN_LATENCY_CHANGE:.0%}; memory (one reading per run): flagged beyond {MEMORY_CHANGE:.0%} "
    f"and {MEMORY_MIN_BYTES // 1024**2} MiB"
)
Flag = Literal["faster", "slower", "within noise", "more memory", "less memory", "n/a"]


class ModelDelta(BaseModel):
    name: str
    status_a: str = Field(description="Status in run A ('absent' when the model is not in it).")
    status_b: str
    batch_size: int | None = None
    median_a_ms: float | None = None
    median_b_ms: float | None = None
    samples_a: int = 0
    samples_b: int = 0
    latency_change: float | None = Field(default=None, description="median_b / median_a - 1 (negative: faster).")
    spread_ms: float | None = Field(default=None, description="Pooled spread sqrt(s_A^2 + s_B^2), scaled MAD, ms.")
    p_value: float | None = Field(default=None, description="Two-sided Mann-Whitney U p-value.")
    latency_flag: Flag = "n/a"
    peak_a_bytes: int | None = None
    peak_b_bytes: int | None = None
    memory_change: float | None = Field(default=None, description="peak_b / peak_a - 1.")
    memory_flag: Flag = "n/a"
    weights_differ: str | None = Field(
        default=None, description="How the two runs' weights differ (mode, source, revision or file digests)."
    )


class Comparison(BaseModel):
    run_a: str
    run_b: str
    rule: str = RULE
    environment_differences: list[str] = Field(description="Settings that differ and make figures less comparable.")
    models: list[ModelDelta]


def scaled_mad(samples: list[float]) -> float:
    """1.4826 * median absolute deviation: a std estimate that one stray sample cannot move."""
    if len(samples) < 2:
        return 0.0
    med = statistics.median(samples)
    return 1.4826 * statistics.median(abs(x - med) for x in samples)


def latency_verdict(a: list[float], b: list[float]) -> tuple[Flag, float | None, float]:
    """The flag, the Mann-Whitney p-value (None with fewer than 2 samples a side) and the pooled spread."""
    spread = math.hypot(scaled_mad(a), scaled_mad(b))
    if len(a) < 2 or len(b) < 2:
        return "n/a", None, spread
    from scipy.stats import mannwhitneyu

    p = float(mannwhitneyu(a, b, alternative="two-sided").pvalue)
    ma, mb = statistics.median(a), statistics.median(b)
    beyond = abs(mb - ma) > SPREAD_FACTOR * spread and abs(mb / ma - 1) > MIN_LATENCY_CHANGE
    if p < P_THRESHOLD and beyond:
        return ("faster" if mb < ma else "slower"), p, spread
    return "within noise", p, spread


def memory_verdict(a: int | None, b: int | None) -> tuple[Flag, float | None]:
    if not a or b is None:
        return "n/a", None
    change = b / a - 1
    if abs(change) > MEMORY_CHANGE and abs(b - a) > MEMORY_MIN_BYTES:
        return ("more memory" if b > a else "less memory"), change
    return "within noise", change


def compare_runs(run_a: RunResult | str | Path, run_b: RunResult | str | Path) -> Comparison:
    """Per-model deltas of B against A (models of both runs, in A's order, then B's new ones)."""
    a, b = (r if isinstance(r, RunResult) else _load(r) for r in (run_a, run_b))
    names = [m.name for m in a.models] + [m.name for m in b.models if a.result(m.name) is None]
    return Comparison(
        run_a=a.run_id if isinstance(run_a, RunResult) else str(run_a),
        run_b=b.run_id if isinstance(run_b, RunResult) else str(run_b),
        environment_differences=environment_differences(a, b),
        models=[model_delta(n, a.result(n), b.result(n)) for n in names],
    )


def _load(path: str | Path) -> RunResult:
    if not Path(path).exists():
        raise BadInputError(f"{path}: no such run folder")
    return load_run(path)


def weights_difference(a: ModelResult, b: ModelResult) -> str | None:
    """Why two results' weights are not the same weights: mode, revision, then the files' SHA-256.

    Sources are compared only when neither side has digests: the same file can sit at two paths.
    """
    wa, wb = a.weights, b.weights
    if wa is None or wb is None:
        return None
    if wa.mode != wb.mode:
        return f"{wa.mode} -> {wb.mode}"
    if wa.revision and wb.revision and wa.revision != wb.revision:
        return f"revision {wa.revision} -> {wb.revision}"
    if wa.files and wb.files:
        return None if sorted(wa.files.values()) == sorted(wb.files.values()) else "different weight files (SHA-256)"
    return None if wa.source == wb.source else f"{wa.source} -> {wb.source}"


def model_delta(name: str, a: ModelResult | None, b: ModelResult | None) -> ModelDelta:
    d = ModelDelta(name=name, status_a=a.status if a else "absent", status_b=b.status if b else "absent")
    if a is not None and b is not None:
        d.weights_differ = weights_difference(a, b)
    pa, pb = (a.primary if a else None), (b.primary if b else None)
    if pa is None or pb is None:
        return d
    if pa.batch_size == pb.batch_size and pa.model_latency and pb.model_latency:
        sa, sb = pa.model_latency.samples_ms, pb.model_latency.samples_ms
        d.batch_size = pa.batch_size
        d.median_a_ms, d.median_b_ms = pa.model_latency.median_ms, pb.model_latency.median_ms
        d.samples_a, d.samples_b = len(sa), len(sb)
        d.latency_change = d.median_b_ms / d.median_a_ms - 1 if d.median_a_ms else None
        d.latency_flag, d.p_value, d.spread_ms = latency_verdict(sa, sb)
    d.peak_a_bytes = pa.memory.peak_bytes if pa.memory else None
    d.peak_b_bytes = pb.memory.peak_bytes if pb.memory else None
    d.memory_flag, d.memory_change = memory_verdict(d.peak_a_bytes, d.peak_b_bytes)
    return d


def environment_differences(a: RunResult, b: RunResult) -> list[str]:
    """Device, dtype, threads, versions, weights, git revision: what differs between the runs."""
    out = []
    ea, eb = a.environment, b.environment
    pairs = {
        "device": (ea.device, eb.device), "CPU": (ea.cpu_model, eb.cpu_model),
        "GPU": (", ".join(g.name for g in ea.gpus), ", ".join(g.name for g in eb.gpus)),
        "torch threads": (ea.torch_threads, eb.torch_threads), "dtype": (a.config.dtype, b.config.dtype),
        "weights": (a.config.weights, b.config.weights), "compile": (a.config.compile, b.config.compile),
        "input size": (a.config.input_size, b.config.input_size), "git revision": (ea.git_revision, eb.git_revision),
        "malloc": (ea.malloc, eb.malloc),
    }  # fmt: skip
    for lib in sorted(set(ea.versions) | set(eb.versions)):
        pairs[lib] = (ea.versions.get(lib), eb.versions.get(lib))
    for key, (x, y) in pairs.items():
        if x != y:
            out.append(f"{key}: {x} -> {y}")
    return out


def comparison_table(c: Comparison) -> Table:
    """One row a model: both medians, the change, the noise and p, both peaks; the report's and the terminal's."""
    rows = [[d.name, f"{d.status_a} / {d.status_b}", fmt.ms(d.median_a_ms), fmt.ms(d.median_b_ms),
             fmt.change(d.latency_change), fmt.ms(d.spread_ms),
             fmt.MISSING if d.p_value is None else f"{d.p_value:.3g}", d.latency_flag, fmt.mib(d.peak_a_bytes),
             fmt.mib(d.peak_b_bytes), fmt.change(d.memory_change), d.memory_flag] for d in c.models]  # fmt: skip
    headers = ["model", "status A / B", "median A (ms)", "median B (ms)", "change", "noise (ms)", "p", "latency",
               "peak A (MiB)", "peak B (MiB)", "change", "memory"]  # fmt: skip
    return Table(headers, rows, caption=f"Rule: {c.rule}.")


def comparison_blocks(c: Comparison) -> list[Block]:
    blocks: list[Block] = [Heading(1, "visionbench compare"), Text(f"A: {c.run_a}  B: {c.run_b}"), comparison_table(c)]
    if weights := [f"{d.name}: {d.weights_differ}" for d in c.models if d.weights_differ]:
        blocks.append(Note("warning", "Different weights, so outputs and statistics are not comparable: "
                           + "; ".join(weights)))  # fmt: skip
    if c.environment_differences:
        return blocks + [Note("warning", "The runs differ in: " + "; ".join(c.environment_differences))]
    return blocks + [Note("info", "Same device, settings and library versions in both runs.")]


def compare_folders(
    run_a: str | Path, run_b: str | Path, out_dir: str | Path | None = None
) -> tuple[Comparison, Path, Path]:
    """Compare two run folders, then write compare.md and compare.json into `out_dir` (default: RUN_B).

    Both runs are read and the output folder proven writable before anything is computed or written.
    """
    a, b = _load(run_a), _load(run_b)
    out = check_output_dir(out_dir if out_dir is not None else Path(run_b).parent if Path(run_b).is_file() else run_b)
    c = compare_runs(a, b)
    c.run_a, c.run_b = str(run_a), str(run_b)
    md, _ = render_markdown(comparison_blocks(c), files_dir=".")
    return c, write_text(out / "compare.md", md), write_json(out / "compare.json", c.model_dump(mode="json"))
