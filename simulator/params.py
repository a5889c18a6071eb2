"""Request parameter parsing with Binance's validation errors.

Decimal strings must match ``^([0-9]{1,20})(\\.[0-9]{1,20})?$`` (-1100), mandatory parameters
raise -1102, enums raise -1115/-1116/-1117, and a ``NewOrder`` is built from the form fields of
``POST /api/v3/order`` with the per-type mandatory/forbidden parameter rules (§5).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from simulator import errors

_DECIMAL_RE = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_CLIENT_ID_RE = re.compile(r"^[a-zA-Z0-9\-_]{1,36}$")
MAX_DECIMALS = 8

SIDES = ("BUY", "SELL")
ORDER_TYPES = ("LIMIT", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT", "LIMIT_MAKER")
STOP_MARKET_TYPES = ("STOP_LOSS", "TAKE_PROFIT")
STOP_LIMIT_TYPES = ("STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
TIME_IN_FORCE = ("GTC", "IOC", "FOK")
RESP_TYPES = ("ACK", "RESULT", "FULL")


def decimal_param(params: dict[str, str], name: str, required: bool = False) -> Decimal | None:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise errors.mandatory_missing(name)
        return None
    if not _DECIMAL_RE.match(raw):
        raise errors.illegal_chars(name)
    value = Decimal(raw)
    if "." in raw and len(raw.split(".")[1].rstrip("0")) > MAX_DECIMALS:
        raise errors.too_much_precision(name)
    return value


def int_param(params: dict[str, str], name: str, required: bool = False) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise errors.mandatory_missing(name)
        return None
    if not raw.isdigit() or len(raw) > 20:
        raise errors.illegal_chars_int(name)
    return int(raw)


def str_param(params: dict[str, str], name: str, required: bool = False) -> str | None:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise errors.mandatory_missing(name)
        return None
    return raw


def bool_param(params: dict[str, str], name: str) -> bool:
    return (params.get(name) or "").lower() == "true"


@dataclass(frozen=True, slots=True)
class NewOrder:
    symbol: str
    side: str
    type: str
    time_in_force: str | None
    quantity: Decimal | None
    quote_order_qty: Decimal | None
    price: Decimal | None
    client_order_id: str | None
    resp_type: str
    stop_price: Decimal | None = None

    @property
    def is_market(self) -> bool:
        return self.type == "MARKET"


def parse_new_order(params: dict[str, str]) -> NewOrder:
    """Validate the parameters of a new spot order (no filters, no balances)."""
    symbol = str_param(params, "symbol", True)
    assert symbol is not None
    side = str_param(params, "side", True)
    if side not in SIDES:
        raise errors.invalid_side()
    otype = str_param(params, "type", True)
    if otype not in ORDER_TYPES:
        raise errors.invalid_order_type()
    tif = str_param(params, "timeInForce")
    if tif is not None and tif not in TIME_IN_FORCE:
        raise errors.invalid_tif()
    qty = decimal_param(params, "quantity")
    quote_qty = decimal_param(params, "quoteOrderQty")
    price = decimal_param(params, "price")
    client_id = str_param(params, "newClientOrderId")
    if client_id is not None and not _CLIENT_ID_RE.match(client_id):
        raise errors.ApiError(
            -1100, "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[a-zA-Z0-9-_]{1,36}$'."
        )
    resp = str_param(params, "newOrderRespType")
    if resp is not None and resp not in RESP_TYPES:
        raise errors.invalid_resp_type()
    stop = decimal_param(params, "stopPrice")
    if params.get("trailingDelta"):
        raise errors.new_order_rejected("trailingDelta is not supported by the local simulator.")
    if params.get("icebergQty"):
        raise errors.new_order_rejected("icebergQty is not supported by the local simulator.")
    if otype in STOP_MARKET_TYPES + STOP_LIMIT_TYPES:
        if stop is None:
            raise errors.mandatory_missing("stopPrice")
        if stop <= 0:
            raise errors.ApiError(-1013, "Invalid stopPrice.")
    elif stop is not None:
        raise errors.not_required("stopPrice")

    if otype in STOP_MARKET_TYPES:
        if qty is None:
            raise errors.mandatory_missing("quantity")
        for name, value in (("quoteOrderQty", quote_qty), ("price", price), ("timeInForce", tif)):
            if value is not None:
                raise errors.not_required(name)
    elif otype == "MARKET":
        if qty is None and quote_qty is None:
            raise errors.one_of_missing("quantity", "quoteOrderQty")
        if qty is not None and quote_qty is not None:
            raise errors.not_required("quoteOrderQty")
        if price is not None:
            raise errors.not_required("price")
        if tif is not None:
            raise errors.not_required("timeInForce")
    else:
        if quote_qty is not None:
            raise errors.not_required("quoteOrderQty")
        if qty is None:
            raise errors.mandatory_missing("quantity")
        if price is None:
            raise errors.mandatory_missing("price")
        if otype in ("LIMIT",) + STOP_LIMIT_TYPES and tif is None:
            raise errors.mandatory_missing("timeInForce")
        if otype == "LIMIT_MAKER" and tif is not None:
            raise errors.not_required("timeInForce")
    if qty is not None and qty <= 0:
        raise errors.ApiError(-1013, "Invalid quantity.")
    if price is not None and price <= 0:
        raise errors.ApiError(-1013, "Invalid price.")
    if quote_qty is not None and quote_qty <= 0:
        raise errors.ApiError(-1013, "Invalid quoteOrderQty.")
    return NewOrder(
        symbol=symbol,
        side=side,
        type=otype,
        time_in_force=tif if otype in ("LIMIT",) + STOP_LIMIT_TYPES else None,
        quantity=qty,
        quote_order_qty=quote_qty,
        price=price,
        client_order_id=client_id,
        resp_type=resp or ("FULL" if otype in ("MARKET", "LIMIT") else "ACK"),
        stop_price=stop,
    )
