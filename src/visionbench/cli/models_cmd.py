"""`visionbench models` (the registry as a table) and `visionbench trace MODEL` (meta-device pass)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from visionbench.cli import app
from visionbench.cli.common import InputSizeOpt, JsonOpt, ModelArg, command, console, print_json
from visionbench.models.availability import local_weights
from visionbench.models.registry import get_card, list_models


@command(app, "models")
def models(
    pattern: Annotated[str, typer.Argument(help="Shell-style filter, e.g. 'depth*'.")] = "*",
    show_all: Annotated[bool, typer.Option("--all", help="Also list the tiny test variants.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List the model registry: task, library, exact parameters, native input size, license, local weights."""
    rows = []
    for name in list_models(pattern, include_hidden=show_all):
        card = get_card(name)
        rows.append({**card.model_dump(), "local_weights": local_weights(card)})
    if as_json:
        print_json(rows)
        return
    table = Table(title="visionbench models", header_style="bold")
    for col, justify in [("name", "left"), ("task", "left"), ("library", "left"), ("parameters", "right"),
                         ("input", "right"), ("license", "left"), ("pretrained here", "left")]:  # fmt: skip
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        params = f"{r['params']:,}" if r["params"] else "-"
        local = "[green]yes[/]" if r["local_weights"] else "[yellow]no (random fallback)[/]"
        cells = [escape(str(r[k])) for k in ("name", "task", "library")]
        table.add_row(*cells, params, f"{r['input_size']} px", escape(str(r["license"])), local)
    console.print(table)


@command(app, "trace")
def trace_cmd(
    model: ModelArg,
    input_size: InputSizeOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Batch size of the traced input.")] = 1,
    rows: Annotated[
        int, typer.Option("--rows", min=-1, help="Leaf layers shown in the table (0: none, -1: all).")
    ] = 40,
    as_json: JsonOpt = False,
) -> None:
    """Trace MODEL on the meta device: parameters, FLOPs and every leaf layer's output shape, no weights, no compute."""
    from visionbench.measure.trace import trace

    result = trace(model, input_size=input_size, batch_size=batch_size)
    if as_json:
        print_json(result.model_dump())
        return
    summary = Table(title=f"trace {escape(result.model)} (meta device, {result.seconds:.1f} s)", show_header=False)
    summary.add_row("input", ", ".join(f"{k} {v}" for k, v in result.input_shapes.items()))
    summary.add_row("parameters", f"{result.params:,}")
    summary.add_row("FLOPs", f"{result.flops / 1e12:.3f} TFLOP ({result.flops:,})")
    summary.add_row("outputs", ", ".join(str(s) for s in result.output_shapes))
    summary.add_row("leaf layer calls", str(len(result.layers)))
    console.print(summary)
    comp = Table(title="components", header_style="bold")
    for col in ("component", "parameters", "FLOPs", "FLOP share"):
        comp.add_column(col, justify="left" if col == "component" else "right")
    for label, flops in result.component_flops.items():
        share = flops / result.flops if result.flops else 0.0
        comp.add_row(escape(label), f"{result.component_params[label]:,}", f"{flops / 1e9:,.1f} G", f"{share:.1%}")
    console.print(comp)
    if rows:
        layers = result.layers if rows < 0 else result.layers[:rows]
        table = Table(
            title=f"leaf layers ({len(layers)} of {len(result.layers)}; --rows -1 for all)", header_style="bold"
        )
        for col in ("#", "name", "type", "output shape(s)", "params"):
            table.add_column(col)
        for layer in layers:
            shapes = " ".join(str(s) for s in layer.output_shapes)
            table.add_row(str(layer.index), escape(layer.name), escape(layer.type), shapes, f"{layer.params:,}")
        console.print(table)
