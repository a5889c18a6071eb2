"""Parameters of the spot OCO endpoints, validated with Binance's errors, into one ``OcoRequest``.

* ``POST /api/v3/orderList/oco`` (current): ``aboveType`` LIMIT_MAKER / TAKE_PROFIT /
  TAKE_PROFIT_LIMIT / STOP_LOSS / STOP_LOSS_LIMIT and ``belowType`` STOP_LOSS / STOP_LOSS_LIMIT /
  TAKE_PROFIT / TAKE_PROFIT_LIMIT, each with ``above|below`` ``Price``, ``StopPrice``,
  ``TimeInForce``, ``ClientOrderId`` (and ``TrailingDelta``/``IcebergQty``, refused as for single
  orders).
* ``POST /api/v3/order/oco`` (deprecated, still served by Binance): a LIMIT_MAKER at ``price``
  (``limitClientOrderId``) and a STOP_LOSS at ``stopPrice``, or a STOP_LOSS_LIMIT when
  ``stopLimitPrice`` (+ ``stopLimitTimeInForce``) is sent (``stopClientOrderId``).

Each leg goes through the single-order parser (``params.parse_new_order``), so the per-type rules
and error texts are the same, with the leg's own parameter names in the messages (e.g. -1106
"Parameter 'aboveTimeInForce' sent when not required."). Where a leg may sit: -1158 (type not
allowed in an OCO), -1165/-1166 (a LIMIT_MAKER on the wrong side), -1168 (no contingent leg),
-1196..-1199 (a stop loss or take profit on the wrong side), per Binance's errors.md.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from simulator import errors
from simulator.errors import ApiError
from simulator.params import ORDER_TYPES, RESP_TYPES, NewOrder, parse_new_order, str_param

_CLIENT_ID_RE = re.compile(r"^[a-zA-Z0-9\-_]{1,36}$")
ABOVE_TYPES = ("STOP_LOSS_LIMIT", "STOP_LOSS", "LIMIT_MAKER", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
BELOW_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
_STOP_LOSS = ("STOP_LOSS", "STOP_LOSS_LIMIT")
_TAKE_PROFIT = ("TAKE_PROFIT", "TAKE_PROFIT_LIMIT")


@dataclass(frozen=True, slots=True)
class OcoRequest:
    symbol: str
    side: str
    list_client_order_id: str | None
    above: NewOrder
    below: NewOrder
    resp_type: str


def _leg(params: dict[str, str], names: dict[str, str], fixed: dict[str, str]) -> NewOrder:
    """One leg through ``parse_new_order``: ``names`` maps its parameters (price, stopPrice, ...) to
    the request's (abovePrice, ...); errors name the request's parameter."""
    sub = dict(fixed)
    for inner, outer in names.items():
        if params.get(outer) not in (None, ""):
            sub[inner] = params[outer]
    try:
        return parse_new_order(sub)
    except ApiError as err:
        msg = err.msg
        for inner, outer in names.items():
            msg = msg.replace(f"'{inner}'", f"'{outer}'")
        raise ApiError(err.code, msg, err.status) from None


def _common(params: dict[str, str]) -> tuple[str, str, str, str | None, str]:
    symbol = str_param(params, "symbol", True)
    side = str_param(params, "side", True)
    if side not in ("BUY", "SELL"):
        raise errors.invalid_side()
    qty = str_param(params, "quantity", True)
    cid = str_param(params, "listClientOrderId")
    if cid is not None and not _CLIENT_ID_RE.match(cid):
        raise ApiError(-1100, "Illegal characters found in parameter 'listClientOrderId'; legal range is "
                              "'^[a-zA-Z0-9-_]{1,36}$'.")
    resp = str_param(params, "newOrderRespType") or "RESULT"
    if resp not in RESP_TYPES:
        raise errors.invalid_resp_type()
    assert symbol is not None and side is not None and qty is not None
    return symbol, side, qty, cid, resp


def _check_placement(side: str, above: str, below: str) -> None:
    if above == "LIMIT_MAKER" and below == "LIMIT_MAKER":
        raise ApiError(-1168, "At least one OCO order must be contingent.")
    if side == "SELL":
        if above in _STOP_LOSS:
            raise ApiError(-1197, "A stop loss order in a sell OCO must be below.")
        if below == "LIMIT_MAKER":
            raise ApiError(-1166, "A limit order in a sell OCO must be above.")
        if below in _TAKE_PROFIT:
            raise ApiError(-1199, "A take profit order in a sell OCO must be above.")
    else:
        if above == "LIMIT_MAKER":
            raise ApiError(-1165, "A limit order in a buy OCO must be below.")
        if above in _TAKE_PROFIT:
            raise ApiError(-1198, "A take profit order in a buy OCO must be below.")
        if below in _STOP_LOSS:
            raise ApiError(-1196, "A stop loss order in a buy OCO must be above.")


def parse_order_list_oco(params: dict[str, str]) -> OcoRequest:
    """``POST /api/v3/orderList/oco``."""
    symbol, side, qty, cid, resp = _common(params)
    types = []
    for prefix, allowed in (("above", ABOVE_TYPES), ("below", BELOW_TYPES)):
        t = str_param(params, f"{prefix}Type", True)
        if t not in ORDER_TYPES:
            raise errors.invalid_order_type()
        if t not in allowed:
            raise ApiError(-1158, "Order type not supported in OCO.")
        types.append(t)
    _check_placement(side, types[0], types[1])
    legs = []
    for prefix, t in zip(("above", "below"), types):
        names = {"price": f"{prefix}Price", "stopPrice": f"{prefix}StopPrice", "timeInForce": f"{prefix}TimeInForce",
                 "newClientOrderId": f"{prefix}ClientOrderId", "trailingDelta": f"{prefix}TrailingDelta",
                 "icebergQty": f"{prefix}IcebergQty"}
        legs.append(_leg(params, names, {"symbol": symbol, "side": side, "type": t, "quantity": qty,
                                         "newOrderRespType": resp}))
    return OcoRequest(symbol, side, cid, legs[0], legs[1], resp)


def parse_legacy_oco(params: dict[str, str]) -> OcoRequest:
    """``POST /api/v3/order/oco``: a LIMIT_MAKER leg and a STOP_LOSS / STOP_LOSS_LIMIT leg."""
    symbol, side, qty, cid, resp = _common(params)
    base = {"symbol": symbol, "side": side, "quantity": qty, "newOrderRespType": resp}
    limit = _leg(params, {"price": "price", "newClientOrderId": "limitClientOrderId", "icebergQty": "limitIcebergQty"},
                 {**base, "type": "LIMIT_MAKER"})
    stop_type = "STOP_LOSS_LIMIT" if params.get("stopLimitPrice") else "STOP_LOSS"
    stop = _leg(params, {"price": "stopLimitPrice", "stopPrice": "stopPrice", "timeInForce": "stopLimitTimeInForce",
                         "newClientOrderId": "stopClientOrderId", "icebergQty": "stopIcebergQty",
                         "trailingDelta": "trailingDelta"}, {**base, "type": stop_type})
    above, below = (limit, stop) if side == "SELL" else (stop, limit)
    return OcoRequest(symbol, side, cid, above, below, resp)
