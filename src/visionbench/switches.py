"""On/off environment switches (VISIONBENCH_DEBUG, VISIONBENCH_FUSED_STATS, ...): one reading of them.

`false`, `no`, `off` and `0` (any case, spaces ignored) mean off; `1`, `true`, `yes`, `on` mean on;
anything else is the switch's default, so a typo never flips a switch the other way.
"""

from __future__ import annotations

import os

OFF = frozenset({"0", "false", "no", "off"})
ON = frozenset({"1", "true", "yes", "on"})


def switch(name: str, default: bool) -> bool:
    """The on/off value of the variable `name`; unset, empty or unrecognised gives `default`."""
    value = os.environ.get(name, "").strip().lower()
    if value in OFF:
        return False
    if value in ON:
        return True
    return default


def switched_off(name: str) -> bool:
    """True when the variable `name` says 0, false, no or off; unset means on."""
    return not switch(name, default=True)


def switched_on(name: str) -> bool:
    """True when the variable `name` says 1, true, yes or on; unset means off."""
    return switch(name, default=False)
