"""One way to say what failed validation: ``key.path: rule`` lines from a pydantic ValidationError
(config files, commands, dashboard forms, API bodies all speak the same way)."""
from __future__ import annotations

from pydantic import ValidationError


def error_lines(exc: ValidationError, root: str = "") -> list[str]:
    """``loc: message`` per error; ``root`` prefixes every location (e.g. ``params``)."""
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in (root, *err["loc"]) if p != "") or "(top level)"
        out.append(f"{loc}: {err['msg'].removeprefix('Value error, ')}")
    return out


def format_errors(exc: ValidationError, root: str = "") -> str:
    return "; ".join(error_lines(exc, root))
