"""One way to say what failed validation: ``key.path: rule`` lines from a pydantic ValidationError
(config files, commands, dashboard forms, API bodies all speak the same way)."""
from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, ValidationError, ValidationInfo, field_validator


def error_lines(exc: ValidationError, root: str = "") -> list[str]:
    """``loc: message`` per error; ``root`` prefixes every location (e.g. ``params``)."""
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in (root, *err["loc"]) if p != "") or "(top level)"
        out.append(f"{loc}: {err['msg'].removeprefix('Value error, ')}")
    return out


def format_errors(exc: ValidationError, root: str = "") -> str:
    return "; ".join(error_lines(exc, root))


def _is_number(annotation: Any) -> bool:
    if annotation in (int, float):
        return True
    args = get_args(annotation)
    return any(a in (int, float) for a in args) and bool not in args


class StrictNumbers(BaseModel):
    """Base of the config models: YAML's ``true``/``false`` where a number is wanted is an error
    (pydantic would read ``speed: true`` as 1.0); the message names the key."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name is not None:
            field = cls.model_fields.get(info.field_name)
            if field is not None and _is_number(field.annotation):
                raise ValueError(f"must be a number, not {str(value).lower()}")
        return value
