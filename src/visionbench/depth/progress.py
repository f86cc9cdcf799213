"""The progress bar every long model run shows on stderr: count, rate, elapsed time and ETA."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def rate_bar(show: bool, total: int | None, label: str, unit: str = "img") -> Iterator[Callable[[int], None]]:
    """Yields `advance(n)`; a no-op when hidden (`--json`). An unknown total (a stream) shows a pulsing bar."""
    if not show:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns: list[ProgressColumn] = [TextColumn(label), BarColumn(), MofNCompleteColumn(), TaskProgressColumn()]
    columns += [TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=total, rate="")
        t0, count = time.perf_counter(), 0

        def advance(n: int) -> None:
            nonlocal count
            count += n
            dt = time.perf_counter() - t0
            bar.update(task, advance=n, rate=f"{count / dt:.3g} {unit}/s" if dt > 0 else "")

        yield advance
