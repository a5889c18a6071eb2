"""USD-M order requests: ``POST /fapi/v1/order`` parameters checked and parsed into a
``FuturesNewOrder`` (-1102/-1106/-1115/-1116/-1117, -4015 client id, -4061 position side, -4120 for
the conditional types, which belong to the Algo service)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from simulator import errors
from simulator.errors import ApiError
from simulator.params import decimal_param, str_param

CONDITIONAL_TYPES = ("STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET")
_CLIENT_ID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")


@dataclass(frozen=True, slots=True)
class FuturesNewOrder:
    symbol: str
    side: str
    type: str
    time_in_force: str
    quantity: Decimal
    price: Decimal | None
    reduce_only: bool
    client_order_id: str | None
    resp_type: str




def parse_futures_order(params: dict[str, str]) -> FuturesNewOrder:
    symbol = str_param(params, "symbol", True)
    assert symbol is not None
    side = str_param(params, "side", True)
    if side not in ("BUY", "SELL"):
        raise errors.invalid_side()
    otype = str_param(params, "type", True)
    if otype in CONDITIONAL_TYPES:
        raise ApiError(-4120, "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.")
    if otype not in ("LIMIT", "MARKET"):
        raise errors.invalid_order_type()
    pos_side = params.get("positionSide") or "BOTH"
    if pos_side not in ("BOTH", "LONG", "SHORT"):
        raise errors.illegal_param("Invalid positionSide.")
    if pos_side != "BOTH":
        raise ApiError(-4061, "Order's position side does not match user's setting.")
    tif = str_param(params, "timeInForce")
    if tif is not None and tif not in ("GTC", "IOC", "FOK", "GTX"):
        raise errors.invalid_tif()
    qty = decimal_param(params, "quantity", True)
    assert qty is not None
    price = decimal_param(params, "price")
    if otype == "LIMIT":
        if tif is None:
            raise errors.mandatory_missing("timeInForce")
        if price is None:
            raise errors.mandatory_missing("price")
    else:
        if price is not None:
            raise errors.not_required("price")
    cid = str_param(params, "newClientOrderId")
    if cid is not None and not _CLIENT_ID_RE.match(cid):
        raise ApiError(-4015, "Client order id is not valid.")
    resp = params.get("newOrderRespType") or "ACK"
    if resp not in ("ACK", "RESULT"):
        raise errors.invalid_resp_type()
    reduce_only = (params.get("reduceOnly") or "false").lower() == "true"
    return FuturesNewOrder(symbol, side, otype, tif or "GTC", qty, price, reduce_only, cid, resp)
