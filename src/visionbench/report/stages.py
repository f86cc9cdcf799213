"""The dissection's layers grouped stage by stage: sub-stages from the module names, so any model works.

Kept apart from `arch` (which writes the sections) because the grouping rules are their own concern and the
findings read the same groups."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from visionbench.layers_json import LayerRecord
from visionbench.report import fmt
from visionbench.report.document import Block, Heading, Table

MAX_LAYER_ROWS = 40
SPLIT_ROWS = 24  # a sub-stage longer than this is split once more by its own module names
MAX_SUBSTAGES = 8  # more sub-stages than this: one table for the component
_BLOCK = re.compile(r"^(.*?\.(?:layer|layers|block|blocks|blk|h))\.(\d+)\.")


def stage_tables(model: str, records: list[LayerRecord]) -> list[Block]:
    """One table of layers per sub-stage of each component, sub-stages taken from the module names so any model
    works; a long stack of transformer blocks gets one row per block instead (24 blocks' rows would drown it)."""
    out: list[Block] = [Heading(4, f"{model}: the architecture stage by stage")]
    for component, recs in by_stage(records).items():
        blocked = _per_block(recs) if len(recs) > MAX_LAYER_ROWS else None
        if blocked:
            out.append(Table(["block", "layers", "last output shape", "min", "max", "mean of means", "last std",
                              "mean sparsity"], blocked,
                             caption=f"{component}: {len(recs)} recorded layers summarised one row per block "
                                     "(range over the block's layers, std of its last output).",
                             align=["left", "right", "left", "right", "right", "right", "right", "right"]))  # fmt: skip
            continue
        groups = substages(recs)
        # many sub-stages (a CNN's numbered modules) or siblings of one layer each: one table for the component
        if len(groups) > MAX_SUBSTAGES or (len(groups) > 1 and all(len(g) == 1 for g in groups.values())):
            groups = {".".join(_common_prefix([r.name for r in recs])) or component: recs}
        for label, group in groups.items():
            title = component if label == component else f"{component}: {label}"
            out.append(Table(
                ["index", "layer", "type", "output shape", "min", "max", "mean", "std", "sparsity"],
                [[str(r.index), r.name.removeprefix(label + "."), r.type, dims(r.shape), fmt.sci(r.min),
                  fmt.sci(r.max), fmt.sci(r.mean), fmt.sci(r.std), fmt.pct(r.sparsity)] for r in group],
                caption=f"{title} ({len(group)} layer{'s' if len(group) > 1 else ''} in execution order; "
                        "sparsity = exact zeros).",
                align=["right", "left", "left", "left", "right", "right", "right", "right", "right"]))  # fmt: skip
    return out


def substages(recs: list[LayerRecord]) -> dict[str, list[LayerRecord]]:
    """Records of one component keyed by their sub-stage's module path, in execution order."""
    prefix = _common_prefix([r.name for r in recs])
    groups: dict[str, list[LayerRecord]] = {}
    for r in recs:
        groups.setdefault(_substage(prefix, r.name) or (recs[0].component or "other"), []).append(r)
    out: dict[str, list[LayerRecord]] = {}
    for label, group in groups.items():
        if len(group) > SPLIT_ROWS and len(group) < len(recs):
            out.update(substages(group))
        else:
            out[label] = group
    return out


def fusion_records(records: list[LayerRecord]) -> list[LayerRecord]:
    """The layers of the fusion stages: a component called fusion, else module names with a fusion part."""
    named = [r for r in records if "fusion" in (r.component or "").lower()]
    return named or [r for r in records if "fusion" in r.name.lower()]


def _common_prefix(names: list[str]) -> list[str]:
    parts = [n.split(".") for n in names]
    prefix: list[str] = []
    for column in zip(*parts, strict=False):
        if len(set(column)) != 1:
            break
        prefix.append(column[0])
    if len(names) == 1:
        prefix = prefix[:-1]
    while prefix and prefix[-1].isdigit():  # a list's entries are sub-stages, not the prefix
        prefix.pop()
    return prefix


def _substage(prefix: list[str], name: str) -> str:
    parts = name.split(".")
    rest = parts[len(prefix) : -1]  # never the leaf itself
    if not rest:  # a layer right under the prefix: its own stage, unless it is an entry of a list
        return ".".join(prefix if parts[-1].isdigit() else prefix + parts[-1:])
    label = [rest[0]]
    if not rest[0].isdigit() and len(rest) > 1 and rest[1].isdigit():
        label.append(rest[1])
    return ".".join(prefix + label)


def _per_block(recs: list[LayerRecord]) -> list[list[str]] | None:
    keyed: dict[str, list[LayerRecord]] = {}
    for r in recs:
        match = _BLOCK.match(r.name)
        keyed.setdefault(f"{match.group(1)}.{match.group(2)}" if match else r.name, []).append(r)
    if len(keyed) >= len(recs):
        return None
    return [[key, str(len(g)), dims(g[-1].shape), fmt.sci(lowest(r.min for r in g)), fmt.sci(highest(r.max for r in g)),
             fmt.sci(mean_of(r.mean for r in g)), fmt.sci(g[-1].std), fmt.pct(mean_of(r.sparsity for r in g))]
            for key, g in keyed.items()]  # fmt: skip


def dims(shape: list[int] | None) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]" if shape else fmt.MISSING


def by_stage(records: list[LayerRecord]) -> dict[str, list[LayerRecord]]:
    stages: dict[str, list[LayerRecord]] = {}
    for r in records:
        stages.setdefault(r.component or "other", []).append(r)
    return stages


def finite(values: Iterable[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def lowest(values: Iterable[float | None]) -> float | None:
    return min(finite(values), default=None)


def highest(values: Iterable[float | None]) -> float | None:
    return max(finite(values), default=None)


def mean_of(values: Iterable[float | None]) -> float | None:
    v = finite(values)
    return sum(v) / len(v) if v else None
