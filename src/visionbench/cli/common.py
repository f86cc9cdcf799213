"""What every command shares: the console, option types, and turning errors into one clear line.

Commands register with `@command(app)`: an expected failure (`VisionbenchError`, a bad option)
prints `error: ...` and exits 2; out of memory exits 3; Ctrl-C exits 130. `--debug` shows tracebacks.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler

from visionbench.errors import VisionbenchError
from visionbench.switches import switched_on

# Piped output (CI logs, files) gets a wide table instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
F = TypeVar("F", bound=Callable[..., Any])


def debug_enabled() -> bool:
    return switched_on("VISIONBENCH_DEBUG")


def setup_logging() -> None:
    root = logging.getLogger("visionbench")
    if not any(isinstance(h, RichHandler) for h in root.handlers):
        handler = RichHandler(console=err_console, show_time=False, show_path=False, markup=False)
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one error line to stderr and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def command(app: typer.Typer, name: str | None = None, **kwargs: Any) -> Callable[[F], F]:
    """`app.command` plus the error policy above."""

    def wrap(func: F) -> F:
        @functools.wraps(func)
        def run(*args: Any, **kw: Any) -> Any:
            setup_logging()
            try:
                return func(*args, **kw)
            except (typer.Exit, typer.Abort):
                raise
            except VisionbenchError as exc:
                if debug_enabled():
                    raise
                raise fail(str(exc), exc.exit_code) from None
            except KeyboardInterrupt:
                raise fail("interrupted; results written so far are kept", 130) from None
            except MemoryError:
                if debug_enabled():
                    raise
                raise fail("out of memory (try a smaller --input-size, --batch-size or --dtype bfloat16)", 3) from None
            except Exception as exc:
                if debug_enabled() or "OutOfMemoryError" not in type(exc).__name__:
                    raise
                raise fail(f"out of memory: {str(exc).splitlines()[0]}", 3) from None

        app.command(name, **kwargs)(run)
        return func

    return wrap


def print_json(data: Any) -> None:
    """JSON for scripts on stdout, nothing else on stdout."""
    import json

    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


# Options shared by several commands; described once here so --help says the same everywhere.
ModelArg = Annotated[
    str, typer.Argument(help="Model name (see `visionbench models`), hf:<repo|folder> or ultralytics:<yaml|.pt>.")
]
WeightsOpt = Annotated[
    str,
    typer.Option(
        "--weights",
        help="auto: pretrained if cached or reachable, else RANDOM (said loudly); random; or a file/folder path.",
    ),
]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:N, mps or auto (first accelerator found).")]
DtypeOpt = Annotated[str, typer.Option("--dtype", help="float32, float16 or bfloat16 (weights and inputs).")]
InputSizeOpt = Annotated[
    int | None, typer.Option("--input-size", help="Square input size in pixels (default: the model's native size).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON to stdout instead of tables.")]
TrustOpt = Annotated[
    bool,
    typer.Option(
        "--trust-remote-code", help="Allow remote code (hf:) and unpickling .pt files. Only for sources you trust."
    ),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for random weights and random inputs.")]
OutOpt = Annotated[Path, typer.Option("--out", help="Output folder.")]
