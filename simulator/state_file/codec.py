"""The state file's codec: stored dataclasses <-> JSON values, strict decoding that names the
place of every problem, and a JSON encoder that yields the event loop between slices."""
from __future__ import annotations

import json
import operator
import types
from dataclasses import MISSING, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, TypeVar

from simulator.accounts import Balance
from simulator.algo import AlgoOrder
from simulator.futures import FuturesOrder, FuturesTrade, Position
from simulator.matching import SpotOrder, TradeRecord

T = TypeVar("T")


class StateFileError(Exception):
    """The state file cannot be used; the message names the file and what is wrong."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"state file {path}: {problem}")
        self.path = Path(path)
        self.problem = problem


class _Bad(Exception):
    """A problem inside the document; wrapped into StateFileError with the path by ``load``."""


# -- generic dataclass <-> JSON ----------------------------------------------------------------------

_SKIP = ("fills",)  # stored as trade ids, resolved against the trade history


class _Codec:
    """One stored dataclass: its field names (``fills`` excepted) and a C-speed getter of their values.

    The values of every stored class are immutable scalars (Decimal, int, str, bool, None: ``_scalar``
    refuses anything else), so a tuple of them is a copy that later changes cannot reach."""

    __slots__ = ("names", "values")

    def __init__(self, cls: type) -> None:
        self.names = tuple(f.name for f in fields(cls) if f.name not in _SKIP)  # type: ignore[arg-type]
        if len(self.names) < 2:  # attrgetter of one name returns the value, not a tuple
            raise TypeError(f"persist: {cls.__name__} needs at least two stored fields")
        self.values: Callable[[object], tuple[Any, ...]] = operator.attrgetter(*self.names)

    def encode(self, values: tuple[Any, ...]) -> dict[str, Any]:
        return {n: str(v) if isinstance(v, Decimal) else v for n, v in zip(self.names, values)}


_BALANCE, _TRADE, _ORDER = _Codec(Balance), _Codec(TradeRecord), _Codec(SpotOrder)
_F_TRADE, _F_ORDER, _POSITION, _ALGO = _Codec(FuturesTrade), _Codec(FuturesOrder), _Codec(Position), _Codec(AlgoOrder)


def _type_name(t: object) -> str:
    # the sim modules use ``from __future__ import annotations`` (field types are strings); accept
    # real types too so the codec keeps working if that ever changes
    if isinstance(t, str):
        return t
    if isinstance(t, types.UnionType):
        return str(t).replace("NoneType", "None")
    return getattr(t, "__name__", str(t))


def _scalar(type_name: str, raw: object, where: str) -> object:
    if type_name.endswith(" | None"):
        return None if raw is None else _scalar(type_name[: -len(" | None")], raw, where)
    if type_name == "Decimal":
        if not isinstance(raw, str):
            raise _Bad(f"{where}: expected a decimal string, got {raw!r}")
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise _Bad(f"{where}: not a decimal number: {raw!r}") from None
        if not value.is_finite():
            raise _Bad(f"{where}: not a finite number: {raw!r}")
        return value
    if type_name == "int":
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise _Bad(f"{where}: expected an integer, got {raw!r}")
        return raw
    if type_name == "bool":
        if not isinstance(raw, bool):
            raise _Bad(f"{where}: expected true/false, got {raw!r}")
        return raw
    if type_name == "str":
        if not isinstance(raw, str):
            raise _Bad(f"{where}: expected a string, got {raw!r}")
        return raw
    raise TypeError(f"persist: no codec for field type {type_name!r} ({where})")  # a code bug, not a bad file


def _decode(cls: type[T], raw: object, where: str, extra: tuple[str, ...] = ()) -> T:
    """Build ``cls`` from its ``_Codec.encode`` form. Missing fields take the dataclass default (if any);
    unknown keys are refused, since they mean the file was written by other code."""
    obj = _obj(raw, where)
    kwargs: dict[str, object] = {}
    known = set(extra)
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name in _SKIP:
            continue
        known.add(f.name)
        if f.name not in obj:
            if f.default is MISSING and f.default_factory is MISSING:
                raise _Bad(f"{where}: missing field {f.name!r}")
            continue
        kwargs[f.name] = _scalar(_type_name(f.type), obj[f.name], f"{where}.{f.name}")
    unknown = sorted(set(obj) - known)
    if unknown:
        raise _Bad(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}")
    return cls(**kwargs)


def _obj(raw: object, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _Bad(f"{where}: expected an object, got {type(raw).__name__}")
    return raw


def _list(raw: object, where: str) -> list[Any]:
    if not isinstance(raw, list):
        raise _Bad(f"{where}: expected a list, got {type(raw).__name__}")
    return raw


def _int(raw: object, where: str) -> int:
    return _scalar("int", raw, where)  # type: ignore[return-value]


def _dec(raw: object, where: str) -> Decimal:
    return _scalar("Decimal", raw, where)  # type: ignore[return-value]


def _known_symbol(symbol: str, listed: dict[str, Any], where: str) -> None:
    if symbol not in listed:
        raise _Bad(
            f"{where}: symbol {symbol} is not listed by this exchange (it lists {', '.join(listed)}); "
            "start it with the same symbols, or move the file away to start with fresh accounts"
        )


_SEPARATORS = (",", ":")
_CHUNK = 256  # records per json.dumps call (~1-2 ms each)


def _dumps(doc: object) -> str:
    """``json.dumps(doc, separators=(",", ":"))``, the same text, but a long list is encoded a slice at
    a time. The C encoder holds the GIL for a whole call (~40 ms for 5k orders), which would stall the
    event loop although the save runs on a worker thread; between slices the loop gets its turn."""
    parts: list[str] = []

    def enc(value: object) -> None:
        if isinstance(value, dict):
            parts.append("{")
            for i, (key, item) in enumerate(value.items()):
                parts.append(("," if i else "") + json.dumps(key) + ":")
                enc(item)
            parts.append("}")
        elif isinstance(value, list) and len(value) > _CHUNK:
            parts.append("[")
            for i in range(0, len(value), _CHUNK):
                parts.append(("," if i else "") + json.dumps(value[i:i + _CHUNK], separators=_SEPARATORS)[1:-1])
            parts.append("]")
        else:
            parts.append(json.dumps(value, separators=_SEPARATORS))

    enc(doc)
    return "".join(parts)
