"""`visionbench dissect MODEL`: one forward pass with hooks -> layers.json, channel grids, NPY, summary plots;
`--blocks` compares transformer blocks, `--drift` compares float32 with bfloat16/float16 layer by layer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from visionbench.cli import app, common
from visionbench.cli.common import command, console, err_console, print_json
from visionbench.errors import BadInputError, UnsupportedOptionError
from visionbench.files import check_output_dir


def _blocks(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise BadInputError(
            f"--blocks {text!r}: give block indices like 0,12,23 (negative counts from the end)"
        ) from None


def _npy(text: str) -> int | str:
    if text == "all":
        return "all"
    try:
        value = int(text)
    except ValueError:
        raise BadInputError(f"--npy-channels {text!r}: a number of channels or 'all'") from None
    if value < 0:
        raise BadInputError("--npy-channels must be 0 or more")
    return value


@command(app, "dissect")
def dissect(
    model: common.ModelArg,
    image: Annotated[
        Path | None, typer.Option("--image", help="Image to run on (default: ultralytics' bus.jpg).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Output folder; files go to OUT/MODEL/.")] = Path("dissect"),
    layers: Annotated[
        str | None,
        typer.Option(
            "--layers", help="conv (Conv/ConvTranspose, default), all (every leaf), or module types: Conv2d,Linear."
        ),
    ] = None,
    match: Annotated[
        str | None, typer.Option("--match", help="Regex on qualified layer names (alone it implies --layers all).")
    ] = None,
    channels: Annotated[int, typer.Option("--channels", min=0, help="Channels per PNG grid (0: no PNG).")] = 16,
    npy_channels: Annotated[str, typer.Option("--npy-channels", help="Channels saved per NPY, or 'all'.")] = "8",
    stats_only: Annotated[bool, typer.Option("--stats-only", help="Statistics only: no PNG or NPY per layer.")] = False,
    blocks: Annotated[
        str | None,
        typer.Option("--blocks", help="Transformer blocks to compare, e.g. 0,12,23 (-1: last), per encoder."),
    ] = None,
    drift: Annotated[
        str | None, typer.Option("--drift", help="bfloat16 or float16: compare with float32 layer by layer.")
    ] = None,
    drift_sample: Annotated[int, typer.Option("--drift-sample", min=16, help="Elements compared per output.")] = 16384,
    no_plots: Annotated[bool, typer.Option("--no-plots", help="Skip summary.png and components.png.")] = False,
    weights: common.WeightsOpt = "auto",
    device: common.DeviceOpt = "auto",
    input_size: common.InputSizeOpt = None,
    seed: common.SeedOpt = 0,
    trust_remote_code: common.TrustOpt = False,
    rows: Annotated[int, typer.Option("--rows", help="Layers shown in the table (-1: all).")] = 30,
    as_json: common.JsonOpt = False,
) -> None:
    """Dissect MODEL in ONE forward pass: per-layer statistics, feature-map grids and NPY, summary plots.

    Statistics (min, max, mean, std, zeros, near-zero, NaN, Inf) are computed on the device; pictures are written
    by background writer threads while the pass goes on. See docs/dissection.md for
    every field of layers.json.
    """
    import visionbench as vb
    from visionbench.dissect import DissectOptions, dissect_model
    from visionbench.images import default_image_path, load_image
    from visionbench.models.registry import resolve_device

    if drift is not None and drift not in {"bfloat16", "float16", "bf16", "fp16"}:
        raise UnsupportedOptionError(f"--drift {drift!r}: use bfloat16 or float16")
    drift_name = {"bf16": "bfloat16", "fp16": "float16"}.get(drift or "", drift)
    check_output_dir(out)
    resolve_device(device)  # an absent accelerator: one line, before the writers start or a model is built
    image_path = image if image is not None else default_image_path()
    picture = load_image(image_path)  # bad image: one line, before any model is built
    options = DissectOptions(
        layers=layers, match=match, channels=channels, npy_channels=_npy(npy_channels), pictures=not stats_only,
        summary_plots=not no_plots, blocks=_blocks(blocks), drift=drift_name, drift_sample=drift_sample, seed=seed,
        input_label=str(image_path),
    )  # fmt: skip
    built = vb.create_model(
        model, weights=weights, device=device, input_size=input_size, seed=seed, trust_remote_code=trust_remote_code
    )
    if built.weights.warning:
        err_console.print(f"[yellow]warning:[/] {escape(built.weights.warning)}", highlight=False)
    with Progress(
        SpinnerColumn(), TextColumn("[bold]dissect[/] {task.description}"), BarColumn(),
        TextColumn("{task.completed} calls"), TimeElapsedColumn(), console=err_console, transient=True, disable=as_json,
    ) as progress:  # fmt: skip
        task = progress.add_task(escape(built.name), total=None)
        options.progress = lambda n, name: progress.update(task, completed=n, description=escape(name))
        result = dissect_model(built, picture, out, options)
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    _print(result, rows)


def _print(result: object, rows: int) -> None:
    from visionbench.layers_json import load_layers

    doc = load_layers(result.path)  # type: ignore[attr-defined]
    records = doc.records
    shown = records if rows < 0 else records[:rows]
    name = escape(str(doc.model.get("name", "?")))
    table = Table(title=f"{name}: {len(records)} outputs of {doc.summary.get('calls')} calls "
                  f"({len(shown)} shown; --rows -1 for all)", header_style="bold")  # fmt: skip
    for col in ("#", "name", "type", "shape", "min", "max", "mean", "std", "zeros", "NaN/Inf"):
        table.add_column(col, justify="left" if col in {"name", "type", "shape"} else "right")
    f = lambda v: "-" if v is None else f"{v:.3g}"  # noqa: E731
    for r in shown:
        bad = (r.nan_count or 0) + (r.inf_count or 0)
        table.add_row(
            str(r.index), escape(r.name + (f"[{r.output}]" if r.output else "")), escape(r.type),
            str(r.shape) if r.shape is not None else r.kind, f(r.min), f(r.max), f(r.mean),
            f(r.std), "-" if r.sparsity is None else f"{r.sparsity:.1%}", f"[red]{bad}[/]" if bad else "0",
        )  # fmt: skip
    console.print(table)
    comp = Table(title="components", header_style="bold")
    for col in ("component", "parameters", "outputs", "elements", "zeros", "NaN/Inf"):
        comp.add_column(col, justify="left" if col == "component" else "right")
    for label, c in doc.components.items():
        z = "-" if c["zeros_fraction"] is None else f"{c['zeros_fraction']:.1%}"
        comp.add_row(escape(label), f"{c['params']:,}", str(c["records"]), f"{c['output_elements']:,}", z,
                     str(c["nan_count"] + c["inf_count"]))  # fmt: skip
    console.print(comp)
    drift = doc.drift
    if drift:
        jump = drift["first_jump"]
        where = f"first jump at [bold]{escape(jump['name'])}[/] ({escape(jump['reason'])})" if jump else None
        console.print(
            f"drift float32 vs {drift['dtype']}: median layer error {drift['median_relative_error']:.3g}, "
            f"max {drift['max_relative_error']:.3g}, final output {drift['final_relative_error']}; "
            f"{where or 'no jump, no overflow'}"
        )
    s = result.summary  # type: ignore[attr-defined]
    console.print(
        f"pass {result.seconds:.2f} s (total {result.total_seconds:.2f} s), {s['pictures']} PNG, {s['npy_files']} NPY, "  # type: ignore[attr-defined]
        f"layers with NaN/Inf: {s['layers_with_nan_or_inf']} -> {escape(str(result.folder))}"  # type: ignore[attr-defined]
    )
