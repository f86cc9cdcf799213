"""The few error types the library raises; the CLI turns each into one clear line and exit code 2."""

from __future__ import annotations


class VisionbenchError(Exception):
    """Base class: an expected failure the user can fix. Never shown with a traceback."""

    exit_code = 2


class UnknownModelError(VisionbenchError, KeyError):
    """A model name that is not in the registry."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it plain.
        return str(self.args[0]) if self.args else ""


class BadInputError(VisionbenchError, ValueError):
    """An input file, image or option value that cannot be used."""


class UnsupportedOptionError(VisionbenchError, ValueError):
    """An option that this model, device or machine cannot honour."""


class WeightsError(VisionbenchError):
    """A weights path that cannot be read or does not fit the architecture."""


class OutOfMemoryError(VisionbenchError):
    """The device ran out of memory for this model or batch size."""
