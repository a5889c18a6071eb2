"""The endpoint table: every REST route registers here with its weight and security.

``@endpoint(method, path, weight=..., signed=...)`` adds a handler ``(exchange, params) -> JSON``
to ``ENDPOINTS``; ``server.py`` wraps each in the common request pipeline. Also the parameter
helpers handlers share (symbol lookup, ``symbols`` JSON lists, ``limit``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from simulator import errors
from simulator.params import int_param, str_param
from simulator.state import SimExchange

Params = dict[str, str]
Handler = Callable[[SimExchange, Params], Any]
WeightFn = Callable[[Params], int]


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    weight: int | WeightFn = 1
    signed: bool = False
    key_only: bool = False  # USER_STREAM: API key required, no signature
    order_change: bool = False  # subject to the status_unknown_next fault
    new_order: bool = False  # counts toward the ORDERS limits
    futures: bool = False  # futures weight bucket and order-count headers
    order_count: int = 1  # orders a request counts for (an OCO counts as 2)

    def weight_of(self, params: Params) -> int:
        return self.weight(params) if callable(self.weight) else self.weight


ENDPOINTS: list[Endpoint] = []


def endpoint(
    method: str,
    path: str,
    weight: int | WeightFn = 1,
    signed: bool = False,
    key_only: bool = False,
    order_change: bool = False,
    new_order: bool = False,
    order_count: int = 1,
) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        ENDPOINTS.append(
            Endpoint(method, path, fn, weight, signed, key_only, order_change, new_order, path.startswith("/fapi/"),
                     order_count)
        )
        return fn

    return deco


def symbol_param(ex: SimExchange, params: Params, required: bool = True) -> str | None:
    sym = str_param(params, "symbol", required)
    if sym is None:
        return None
    if sym not in ex.specs:
        raise errors.invalid_symbol()
    return sym


def symbols_list(ex: SimExchange, params: Params) -> list[str] | None:
    raw = params.get("symbols")
    if not raw:
        return None
    try:
        syms = json.loads(raw)
    except ValueError:
        raise errors.illegal_param("Mandatory parameter 'symbols' was not sent, was empty/null, or malformed.") from None
    if not isinstance(syms, list) or not all(isinstance(s, str) for s in syms):
        raise errors.illegal_param("Mandatory parameter 'symbols' was not sent, was empty/null, or malformed.")
    for s in syms:
        if s not in ex.specs:
            raise errors.invalid_symbol()
    return syms


def limit_param(params: Params, default: int, maximum: int) -> int:
    value = int_param(params, "limit")
    if value is None:
        return default
    if value <= 0:
        raise errors.illegal_param("Illegal value for parameter 'limit'.")
    return min(value, maximum)
