"""The `visionbench` command line: a thin Typer layer over the library (one module per command group)."""

from __future__ import annotations

import os

import typer

from visionbench.cli.common import OneLineErrors

app = typer.Typer(
    cls=OneLineErrors,
    name="visionbench",
    help="Benchmark, dissect and run vision models: DepthPro, Depth Anything V2, YOLO11, MobileSAM.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks instead of one-line errors."),
) -> None:
    if debug:
        os.environ["VISIONBENCH_DEBUG"] = "1"


# Each module adds its commands to `app` on import, in the order `--help` lists them.
from visionbench.cli import models_cmd  # noqa: E402,F401,I001
from visionbench.cli import bench_cmd  # noqa: E402,F401
from visionbench.cli import dissect_cmd  # noqa: E402,F401
from visionbench.cli import depth_cmd  # noqa: E402,F401
from visionbench.cli import report_cmd  # noqa: E402,F401
from visionbench.cli import video_cmd  # noqa: E402,F401


def main() -> None:
    app()
