"""Which model fits which job: the suitability verdicts of `report.analysis` as a table, and the
recommendations drawn from them (per requirement and per task)."""

from __future__ import annotations

from visionbench.report import analysis as an
from visionbench.report import fmt
from visionbench.report.document import Block, Bullets, Heading, Table, Text
from visionbench.report.runview import RunView
from visionbench.results import ModelResult


def suitability_blocks(view: RunView) -> list[Block]:
    models = [m.result for m in view.ok_models]
    if not models:
        return []
    verdicts = {m.name: an.suitability(m) for m in models}
    rows = []
    for m in models:
        rows.append([m.name] + [("n/a" if v.passed is None else "yes" if v.passed else "no") + f": {v.note}"
                                for v in verdicts[m.name]])  # fmt: skip
    criteria = [f"{r.name}: {r.figure} < {an.quantity(r.limit, r.unit)} ({r.why})." for r in an.REQUIREMENTS]
    env = view.run.environment
    return [
        Heading(2, "Suitability and recommendations"),
        Text(f"Measured on {env.device} ({view.run.config.dtype}); another device changes every verdict."),
        Table(["model"] + [r.name for r in an.REQUIREMENTS], rows),
        Bullets(criteria),
        Heading(3, "Recommendations"),
        Bullets(recommendations(models, verdicts)),
    ]


def recommendations(models: list[ModelResult], verdicts: dict[str, list[an.Verdict]]) -> list[str]:
    """Per requirement the fastest model that passes (or the closest miss); per task the fastest model."""
    out = []
    for i, req in enumerate(an.REQUIREMENTS):
        scored = [(verdicts[m.name][i], m) for m in models if verdicts[m.name][i].value is not None]
        passing = [(v, m) for v, m in scored if v.passed]
        if passing:
            v, m = min(passing, key=lambda vm: vm[0].value)  # type: ignore[arg-type,return-value]
            out.append(f"{req.name}: {m.name}, {v.note}; {len(passing)} of {len(scored)} models pass.")
        elif scored:
            v, m = min(scored, key=lambda vm: vm[0].value)  # type: ignore[arg-type,return-value]
            out.append(f"{req.name}: no model passes on this device; the closest is {m.name}, {v.note}.")
    tasks: dict[str, list[ModelResult]] = {}
    for m in models:
        tasks.setdefault(str(m.card.get("task", "?")), []).append(m)
    for task, members in tasks.items():
        timed = [m for m in members if an.model_latency(m)]
        if len(timed) > 1:
            best = min(timed, key=lambda m: an.model_latency(m).median_ms)
            small = min(timed, key=lambda m: an.peak_bytes(m) or float("inf"))
            out.append(f"For {task}: fastest is {best.name} ({fmt.ms(an.model_latency(best).median_ms)} ms), "
                       f"smallest peak memory is {small.name} ({fmt.mib(an.peak_bytes(small))} MiB).")  # fmt: skip
        elif timed:
            out.append(f"For {task}: {timed[0].name} is the only model measured "
                       f"({fmt.ms(an.model_latency(timed[0]).median_ms)} ms).")  # type: ignore[union-attr]  # fmt: skip
    return out
