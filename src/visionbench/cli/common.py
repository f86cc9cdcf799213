"""What every command shares: the consoles, option types, and the error policy: one clear line, never a traceback.

`VisionbenchError` or a bad option exits 2, out of memory 3, Ctrl-C 130; `--debug` shows tracebacks. User
strings printed through rich are escaped (`escape`), so a name like `x[/]` is shown, never read as markup.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from typer.core import TyperGroup

from visionbench.config import DTYPE_NAMES, MAX_INPUT_SIZE, MIN_INPUT_SIZE
from visionbench.errors import VisionbenchError
from visionbench.switches import switched_on

# Piped output (CI logs, files) gets a wide table instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
try:  # Typer 0.29+ carries its own copy of Click; older ones use Click itself
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - depends on the installed Typer
    import click.exceptions as click_errors  # type: ignore[no-redef]

F = TypeVar("F", bound=Callable[..., Any])
# Commands that run a model in this process get the bench workers' allocator policy; the others
# (models, trace, report, compare) and library calls leave the process as they found it.
IN_PROCESS_MODEL_COMMANDS = {"dissect", "depth", "eval", "profile", "video"}


def setup_logging() -> None:
    # A library that logs to the stderr it saw at import (ultralytics) keeps writing there; when commands
    # run one after another in one process with stderr redirected (tests, notebooks), that stream may be
    # closed: point such handlers at this command's stderr.
    for handler in logging.getLogger("ultralytics").handlers:
        if type(handler) is logging.StreamHandler and getattr(handler.stream, "closed", False):
            handler.stream = sys.stderr  # not setStream: it would flush the closed stream first
    root = logging.getLogger("visionbench")
    if not any(isinstance(h, RichHandler) for h in root.handlers):
        handler = RichHandler(console=err_console, show_time=False, show_path=False, markup=False)
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one error line to stderr and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


class OneLineErrors(TyperGroup):
    """Click's usage errors (Typer would draw a box of several lines) as one `error:` line, exit 2."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click_errors.NoArgsIsHelpError as exc:
            typer.echo(exc.ctx.get_help() if exc.ctx else str(exc))
            code = 2
        except click_errors.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx else "visionbench"
            fail(f"{exc.format_message()} (see `{where} --help`)", 2)
            code = 2
        except typer.Abort:
            fail("interrupted; results written so far are kept", 130)
            code = 130
        except click_errors.ClickException as exc:
            fail(exc.format_message(), exc.exit_code)
            code = exc.exit_code
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


def command(app: typer.Typer, name: str | None = None, **kwargs: Any) -> Callable[[F], F]:
    """`app.command` plus the error policy above."""

    def wrap(func: F) -> F:
        @functools.wraps(func)
        def run(*args: Any, **kw: Any) -> Any:
            setup_logging()
            if name in IN_PROCESS_MODEL_COMMANDS:
                from visionbench.measure.allocator import tune_malloc

                tune_malloc()  # same policy as the bench workers: freed activations stay mapped
            try:
                from visionbench.images import max_pixels

                max_pixels()  # a bad VISIONBENCH_MAX_PIXELS is one line before any work, not one per image
                return func(*args, **kw)
            except (typer.Exit, typer.Abort):
                raise
            except KeyboardInterrupt:
                raise fail("interrupted; results written so far are kept", 130) from None
            except Exception as exc:
                line = None if switched_on("VISIONBENCH_DEBUG") else _one_line(exc)
                if line is None:
                    raise
                raise fail(*line) from None

        app.command(name, **kwargs)(run)
        return func

    return wrap


def _one_line(exc: Exception) -> tuple[str, int] | None:
    """The error line and exit code for an expected failure; None for a bug (its traceback is shown)."""
    if isinstance(exc, VisionbenchError):
        return str(exc), exc.exit_code
    if isinstance(exc, OSError):  # the environment failed (a file gone, a disk full)
        return str(exc) or type(exc).__name__, 2
    if isinstance(exc, MemoryError):
        return "out of memory (try a smaller --input-size, --batch-size or --dtype bfloat16)", 3
    if "OutOfMemoryError" in type(exc).__name__:
        return f"out of memory: {(str(exc).splitlines() or [''])[0]}", 3
    return None


def print_json(data: Any) -> None:
    """JSON for scripts on stdout, nothing else on stdout."""
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


def _dtype(value: str) -> str:
    if value not in DTYPE_NAMES:
        raise typer.BadParameter(f"{value!r}: use float32, float16 or bfloat16")
    return DTYPE_NAMES[value]


DtypeOpt = Annotated[
    str, typer.Option("--dtype", callback=_dtype, help="float32, float16 or bfloat16 (weights and inputs).")
]
InputSizeOpt = Annotated[
    int | None,
    typer.Option(
        "--input-size",
        min=MIN_INPUT_SIZE,
        max=MAX_INPUT_SIZE,
        help="Square input size in pixels (default: the model's native size).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON to stdout instead of tables.")]
TrustOpt = Annotated[
    bool,
    typer.Option(
        "--trust-remote-code", help="Allow remote code (hf:) and unpickling .pt files. Only for sources you trust."
    ),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for random weights and random inputs.")]
