"""Command-line front ends of ``bot_manager.py``, one module per subcommand (as freqtrade's ``commands/``).

A module ``cli/<name>.py`` with ``HELP`` (one line) and ``main(argv: list[str]) -> int`` is the subcommand
``<name>`` (``_`` written as ``-``); modules starting with ``_`` are shared helpers. Adding a subcommand
means adding a module here: nothing else lists them.
"""
from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def subcommands() -> dict[str, str]:
    """Subcommand name -> module name, for every front end in this package."""
    return {m.name.replace("_", "-"): f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__)
            if not m.name.startswith("_")}


def load(name: str) -> ModuleType | None:
    module = subcommands().get(name)
    return importlib.import_module(module) if module else None
