"""Option values checked once, by their pydantic fields, with one line that names the flag."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from visionbench.errors import BadInputError

OptionsT = TypeVar("OptionsT", bound=BaseModel)


def checked_options(cls: type[OptionsT], **values: Any) -> OptionsT:
    """Options built from the command line, or one BadInputError naming the flag and what is wrong.

    The fields hold the rules (positive, finite, at least 1), so the CLI and the library agree, and
    every value is checked before a folder is created or a model is built.
    """
    try:
        return cls(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = str(err["msg"]).removeprefix("Value error, ")
        if not err["loc"]:  # a rule across fields says which flags itself
            raise BadInputError(msg) from None
        field = str(err["loc"][0])
        shown = f" {values[field]!r}" if field in values else ""
        raise BadInputError(f"--{field.replace('_', '-')}{shown}: {msg[:1].lower()}{msg[1:]}") from None
