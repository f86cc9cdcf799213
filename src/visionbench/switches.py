"""On/off environment switches (VISIONBENCH_MALLOC_TUNING, VISIONBENCH_FUSED_STATS, ...): one reading of them."""

from __future__ import annotations

import os

OFF = frozenset({"0", "false", "no", "off"})


def switched_off(name: str) -> bool:
    """True when the variable `name` says 0, false, no or off (any case); unset means on."""
    return os.environ.get(name, "1").strip().lower() in OFF
