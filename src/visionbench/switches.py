"""On/off environment switches (VISIONBENCH_DEBUG, VISIONBENCH_FUSED_STATS, ...): one reading of them.

`false`, `no`, `off` and `0` (any case, spaces ignored) mean off; `1`, `true`, `yes`, `on` mean on;
anything else is the switch's default, so a typo never flips a switch the other way.
"""

from __future__ import annotations

import os

OFF = frozenset({"0", "false", "no", "off"})
ON = frozenset({"1", "true", "yes", "on"})


def _value(name: str) -> str:
    return os.environ.get(name, "").strip().lower()


def switched_off(name: str) -> bool:
    """True when the variable `name` says 0, false, no or off; unset means on."""
    return _value(name) in OFF


def switched_on(name: str) -> bool:
    """True when the variable `name` says 1, true, yes or on; unset means off."""
    return _value(name) in ON
