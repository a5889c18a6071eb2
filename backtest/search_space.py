"""Hyperopt search spaces: ``--space name=low:high[:step][:log]`` checked against a strategy's params model.

A dimension's type (int or float) and its allowed bounds come from the pydantic field (``ge``/``gt``/
``le``/``lt`` constraints): an unknown name, a non-numeric field, an inverted range or a range
outside the field's bounds is refused with the field and the rule. Cross-field rules (``slow >
fast``) are the model's own validators: ``feasible`` validates a sampled point with the model (the
optimiser marks a rejected point infeasible and does not run it), and ``check_space`` refuses a
space in which the model accepts no point at all.
"""
from __future__ import annotations

import math
import random
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from annotated_types import Ge, Gt, Le, Lt, MultipleOf
from pydantic import BaseModel, ValidationError

from core.validation import format_errors


@dataclass(frozen=True, slots=True)
class Dimension:
    """One optimised parameter: ``low <= x <= high``; ints step by ``step``; floats may be log-scaled."""

    name: str
    kind: str  # "int" | "float"
    low: float
    high: float
    step: float | None = None
    log: bool = False

    def text(self) -> str:
        tail = (f":{self.step:g}" if self.step else "") + (":log" if self.log else "")
        return f"{self.name}={self.low:g}:{self.high:g}{tail}"


def _numeric_kind(annotation: Any) -> str | None:
    """'int' / 'float' for int, float and their Optional forms; None for anything else."""
    args = typing.get_args(annotation) if isinstance(annotation, types.UnionType) or \
        typing.get_origin(annotation) is typing.Union else (annotation,)
    kinds = {a for a in args if a is not type(None)}
    if kinds == {int}:
        return "int"
    if kinds <= {int, float} and kinds:
        return "float"
    return None


def field_bounds(model: type[BaseModel], name: str) -> tuple[str, float, float, bool, bool]:
    """(kind, low, high, low_open, high_open) of a numeric field; ValueError naming the field otherwise."""
    fields = model.model_fields
    if name not in fields:
        raise ValueError(f"--space {name}: unknown parameter of {model.__name__}; parameters: "
                         f"{', '.join(n for n in fields if _numeric_kind(fields[n].annotation))}")
    f = fields[name]
    kind = _numeric_kind(f.annotation)
    if kind is None:
        raise ValueError(f"--space {name}: not a numeric parameter ({f.annotation}); only int and float "
                         "parameters are optimised")
    low, high, low_open, high_open = -math.inf, math.inf, False, False
    for m in f.metadata:
        if isinstance(m, Ge):
            low, low_open = float(m.ge), False  # type: ignore[arg-type]
        elif isinstance(m, Gt):
            low, low_open = float(m.gt), True  # type: ignore[arg-type]
        elif isinstance(m, Le):
            high, high_open = float(m.le), False  # type: ignore[arg-type]
        elif isinstance(m, Lt):
            high, high_open = float(m.lt), True  # type: ignore[arg-type]
        elif isinstance(m, MultipleOf):
            pass
    return kind, low, high, low_open, high_open


def _number(text: str, item: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"--space {item}: {text!r} is not a number") from None


def parse_space(items: Sequence[str], model: type[BaseModel]) -> list[Dimension]:
    """['fast=5:50', 'slow=20:200:5', 'stop_loss_pct=0.5:5:log'] -> Dimensions, checked against ``model``."""
    if not items:
        raise ValueError("--space: give at least one parameter range, e.g. --space fast=5:50")
    dims: list[Dimension] = []
    seen: set[str] = set()
    for item in items:
        name, sep, rng = item.partition("=")
        name = name.strip()
        parts = [p.strip() for p in rng.split(":")] if sep else []
        log = bool(parts) and parts[-1] == "log"
        if log:
            parts = parts[:-1]
        if not name or len(parts) not in (2, 3):
            raise ValueError(f"--space {item!r}: expected name=low:high[:step][:log]")
        if name in seen:
            raise ValueError(f"--space {name}: given twice")
        seen.add(name)
        kind, lo_b, hi_b, lo_open, hi_open = field_bounds(model, name)
        low, high = _number(parts[0], item), _number(parts[1], item)
        step = _number(parts[2], item) if len(parts) == 3 else None
        if kind == "int" and not (low.is_integer() and high.is_integer() and (step is None or step.is_integer())):
            raise ValueError(f"--space {name}: an integer parameter needs integer bounds and step (got {rng})")
        if low >= high:
            raise ValueError(f"--space {name}: inverted or empty range {low:g}:{high:g} (low must be below high)")
        if step is not None and step <= 0:
            raise ValueError(f"--space {name}: step must be > 0 (got {step:g})")
        if log and (low <= 0 or step is not None):
            raise ValueError(f"--space {name}: a log range needs low > 0 and no step")
        if low < lo_b or (lo_open and low == lo_b):
            rule = f"> {lo_b:g}" if lo_open else f">= {lo_b:g}"
            raise ValueError(f"--space {name}: low {low:g} is outside the params model's bounds ({name} must be {rule})")
        if high > hi_b or (hi_open and high == hi_b):
            rule = f"< {hi_b:g}" if hi_open else f"<= {hi_b:g}"
            raise ValueError(f"--space {name}: high {high:g} is outside the params model's bounds "
                             f"({name} must be {rule})")
        dims.append(Dimension(name, kind, low, high, step if kind == "float" else (step or 1.0), log))
    return dims


def feasible(model: type[BaseModel], base: Mapping[str, Any], point: Mapping[str, Any]) -> str | None:
    """None when the params model accepts ``base`` + ``point``; else its errors, fields named."""
    try:
        model.model_validate({**base, **point})
    except ValidationError as exc:
        return format_errors(exc, "params")
    return None


def probe_points(dims: Sequence[Dimension], n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    pts: list[dict[str, Any]] = []
    for mask in range(2 ** min(len(dims), 10)):
        pts.append({d.name: (d.high if mask >> i & 1 else d.low) for i, d in enumerate(dims)})
    for _ in range(n):
        pts.append({d.name: rng.uniform(d.low, d.high) for d in dims})
    return [{d.name: (int(round(p[d.name])) if d.kind == "int" else p[d.name]) for d in dims} for p in pts]


def check_space(dims: Sequence[Dimension], model: type[BaseModel], base: Mapping[str, Any],
                probes: int = 2000, seed: int = 0) -> float:
    """The share of the space the params model accepts (estimated on the corners and ``probes``
    random points). ValueError with the model's rule when it accepts none of them, or when the
    bot's fixed params are themselves invalid."""
    fixed = {k: v for k, v in base.items() if k not in {d.name for d in dims}}
    pts = probe_points(dims, probes, seed)
    ok = 0
    first_error = ""
    for p in pts:
        err = feasible(model, fixed, p)
        if err is None:
            ok += 1
        elif not first_error:
            first_error = err
    if ok == 0:
        raise ValueError(f"--space: the params model {model.__name__} rejects every point of "
                         f"{' '.join(d.text() for d in dims)} (tried {len(pts)}); e.g. {first_error}")
    return ok / len(pts)
