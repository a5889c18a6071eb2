"""User strategies as plugins: the Python files of a folder (``strategies.path`` in config.yaml, default
``user_strategies/``), discovered at start, validated, and registered by name beside the built-ins
(``strategy.registry.register_user_strategies``).

A strategy class in such a file has (docs/strategies.md shows a whole one):

* ``name``: the name config.yaml, the dashboard and backtests use (letters, digits, ``_``; not a
  built-in's);
* ``Params``: a pydantic model of its parameters (unknown keys are best rejected: ``extra="forbid"``);
* ``__init__(self, params)`` setting ``warmup`` (closed candles needed before it can signal);
* ``evaluate(self, candles) -> Signal``; optionally the vectorised ``signals(...)`` (then
  ``vectorised`` defaults to True, ``exit_levels`` to none) and ``informative`` timeframes.

What a file may import is limited to pure computation (``ALLOWED_IMPORTS``: numpy, math, pydantic,
core, strategy, ...), and ``open``/``eval``/``exec``/``__import__`` may not be called: a strategy is a
pure function of the candles it is handed, with no I/O and no Redis. A file that breaks any rule —
a syntax error, a forbidden import, an exception while importing, a class without ``evaluate`` or
``Params``, a name taken twice, defaults its own ``Params`` rejects — is skipped with a
``PluginError`` naming the file, the line and the rule; the rest still load. Loading executes the
file's top level once (nothing more): user strategies are code the operator chose to run.
"""
from __future__ import annotations

import ast
import importlib.util
import re
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

__all__ = ["ALLOWED_IMPORTS", "PluginError", "PluginReport", "UserStrategy", "folder_state", "load_folder"]

# Top-level packages a strategy file may import: computation only (no files, sockets, processes).
ALLOWED_IMPORTS = frozenset({
    "__future__", "abc", "bisect", "collections", "dataclasses", "decimal", "enum", "functools", "itertools",
    "math", "numbers", "operator", "statistics", "typing", "typing_extensions",
    "numpy", "pydantic", "core", "strategy",
})
FORBIDDEN_CALLS = frozenset({"open", "eval", "exec", "compile", "__import__", "input", "breakpoint"})
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MODULE_PREFIX = "user_strategies_"  # sys.modules name of a loaded file: user_strategies_<stem>


@dataclass(frozen=True, slots=True)
class PluginError:
    """Why one file (or one class of it) was skipped: ``file:line: message``."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class UserStrategy:
    """A validated strategy class of a user file."""

    name: str
    cls: type
    params: type[BaseModel]
    file: str
    line: int  # of the class statement
    params_line: int  # of its Params model's class statement (the class's own line if defined elsewhere)

    @property
    def origin(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def params_origin(self) -> str:
        return f"{self.file}:{self.params_line}"


@dataclass
class PluginReport:
    """What ``load_folder`` found: the strategies that loaded and the errors of what did not."""

    folder: str
    strategies: list[UserStrategy] = field(default_factory=list)
    errors: list[PluginError] = field(default_factory=list)


def _check_source(tree: ast.AST, file: str) -> list[PluginError]:
    """The purity rules, checked on the syntax tree before anything runs."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mods = [node.module or ""] if node.level == 0 else []  # relative imports: within the folder
        else:
            mods = []
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
                out.append(PluginError(file, node.lineno, f"calls {node.func.id}(): strategies are pure "
                                                          "(no I/O, no dynamic code)"))
        for m in mods:
            if m.split(".")[0] not in ALLOWED_IMPORTS:
                out.append(PluginError(file, node.lineno, f"imports {m!r}: a strategy may import only "
                                                          f"{', '.join(sorted(ALLOWED_IMPORTS - {'__future__'}))}"))
    return out


def _error_line(exc: BaseException, path: Path, default: int) -> int:
    """The line of ``path`` where ``exc`` was raised (the innermost frame in that file)."""
    line = default
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename) == path and frame.lineno:
            line = frame.lineno
    return line


def _exec_module(path: Path, tree: ast.Module, file: str) -> ModuleType:
    name = MODULE_PREFIX + path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pydantic look their module up while the class is built
    try:
        exec(compile(tree, str(path), "exec"), module.__dict__)  # noqa: S102 - the operator's own strategy file
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _class_lines(tree: ast.Module) -> dict[str, int]:
    """Line of every class statement in the file (nested ones too: a Params may sit inside its strategy)."""
    return {n.name: n.lineno for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}


def _strategy_classes(module: ModuleType, tree: ast.Module) -> list[tuple[type, int]]:
    """Classes defined at the top level of the file that are meant as strategies (they set ``name``,
    ``evaluate`` or ``Params``), with their line."""
    lines = {n.name: n.lineno for n in tree.body if isinstance(n, ast.ClassDef)}
    out = []
    for cname, line in lines.items():
        cls = module.__dict__.get(cname)
        if not isinstance(cls, type) or issubclass(cls, BaseModel) or cls.__module__ != module.__name__:
            continue
        if any(k in cls.__dict__ for k in ("name", "evaluate", "Params", "signals")):
            out.append((cls, line))
    return out


def _validate_class(cls: type, file: str, line: int, taken: set[str], lines: dict[str, int]
                    ) -> UserStrategy | PluginError:
    where = f"class {cls.__name__}"
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not _NAME.match(name):
        return PluginError(file, line, f"{where}: needs a class attribute name = '...' (lowercase letters, "
                                       f"digits and _, starting with a letter), got {name!r}")
    if name in taken:
        return PluginError(file, line, f"{where}: strategy name {name!r} is already taken")
    params = getattr(cls, "Params", None)
    if not (isinstance(params, type) and issubclass(params, BaseModel)):
        return PluginError(file, line, f"{where}: needs Params, a pydantic BaseModel subclass of its parameters")
    if not callable(getattr(cls, "evaluate", None)):
        return PluginError(file, line, f"{where}: missing method evaluate(self, candles) -> Signal")
    inf = getattr(cls, "informative", None)
    if inf is not None:
        from core.types import INTERVAL_MS

        if not isinstance(inf, dict) or not all(k in INTERVAL_MS and isinstance(v, int) and v >= 1
                                                 for k, v in inf.items()):
            return PluginError(file, line, f"{where}: informative must map intervals ({', '.join(INTERVAL_MS)}) "
                                           f"to the closed candles needed (>= 1), got {inf!r}")
    # A strategy whose defaults are valid is built once now, so a broken __init__ or warmup is found at
    # start; one with required parameters is checked when a bot builds it with its params.
    try:
        defaults = params()
    except ValidationError:
        defaults = None
    if defaults is not None:
        try:
            instance = cls(defaults)
        except Exception as exc:  # noqa: BLE001 - named in the report, the worker goes on
            return PluginError(file, _error_line(exc, Path(file), line),
                               f"{where}: building it with default params raised {type(exc).__name__}: {exc}")
        problem = instance_problem(instance)
        if problem:
            return PluginError(file, line, f"{where}: {problem}")
    params_line = lines.get(params.__name__, line) if params.__module__ == cls.__module__ else line
    return UserStrategy(name, cls, params, file, line, params_line)


def instance_problem(instance: Any) -> str | None:
    """What a built user strategy lacks (``warmup``), or None."""
    warmup = getattr(instance, "warmup", None)
    if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 0:
        return f"warmup must be an int >= 0 (closed candles needed), got {warmup!r}"
    return None


def no_exit_levels(sides: np.ndarray, closes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``exit_levels`` of a vectorised user strategy that sets none: no stop, no take-profit."""
    nan = np.full(len(sides), np.nan)
    return nan, nan.copy()


def folder_state(folder: str | Path) -> tuple[str, tuple[tuple[str, int, int], ...]]:
    """(folder, (file, mtime ns, size) of each strategy file): what changes when a file is edited."""
    root = Path(folder)
    files = sorted(root.glob("*.py")) if root.is_dir() else []
    out = []
    for p in files:
        try:
            st = p.stat()
        except OSError:
            continue
        out.append((p.name, st.st_mtime_ns, st.st_size))
    return str(root), tuple(out)


def load_folder(folder: str | Path, taken: set[str]) -> PluginReport:
    """Import and validate every ``*.py`` of ``folder`` (not ``_*.py``), in name order. ``taken``: the
    names already used (built-ins). A missing folder is no error (no user strategies)."""
    root = Path(folder)
    report = PluginReport(str(root))
    if not root.is_dir():
        return report
    names = set(taken)
    for path in sorted(root.glob("*.py")):
        if path.name.startswith("_"):
            continue
        file = str(path)
        try:
            source = path.read_text(encoding="utf-8")
            tree = ast.parse(source, filename=file)
        except SyntaxError as exc:
            report.errors.append(PluginError(file, exc.lineno or 0, f"syntax error: {exc.msg}"))
            continue
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            report.errors.append(PluginError(file, 0, f"cannot read: {exc}"))
            continue
        problems = _check_source(tree, file)
        if problems:
            report.errors.extend(problems)
            continue
        try:
            module = _exec_module(path, tree, file)
        except Exception as exc:  # noqa: BLE001 - one broken file is skipped, never the worker
            report.errors.append(PluginError(file, _error_line(exc, path, 0),
                                             f"importing it raised {type(exc).__name__}: {exc}"))
            continue
        classes = _strategy_classes(module, tree)
        if not classes:
            report.errors.append(PluginError(file, 1, "defines no strategy class (one with name, Params and "
                                                      "evaluate)"))
        for cls, line in classes:
            got = _validate_class(cls, file, line, names, _class_lines(tree))
            if isinstance(got, PluginError):
                report.errors.append(got)
            else:
                names.add(got.name)
                report.strategies.append(got)
    return report
