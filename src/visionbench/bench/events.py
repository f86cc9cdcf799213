"""Progress events from a worker to the suite: JSON lines appended to `<model>/events.jsonl`.

A file rather than a pipe: it works the same on every OS, survives the worker being killed, and
leaves a record of what the worker was doing when it stopped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


class EventSink:
    """Append-only writer; `EventSink(None)` drops events (library use, no suite listening)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._fh = open(path, "a", encoding="utf-8") if path is not None else None  # noqa: SIM115

    def emit(self, event: str, **fields: Any) -> None:
        if self._fh is None:
            return
        self._fh.write(json.dumps({"event": event, "t": time.time(), **fields}, default=str) + "\n")
        self._fh.flush()


class EventReader:
    """Reads the events appended since the last call (the suite polls this while the worker runs)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = ""

    def read(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, encoding="utf-8") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
                self._offset = fh.tell()
        except FileNotFoundError:
            return []
        text = self._partial + chunk
        lines = text.split("\n")
        self._partial = lines.pop()  # an incomplete last line waits for the next read
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out
