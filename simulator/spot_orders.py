"""Spot order records: an order, its trades, the stop-trigger rule, and the hook order lists use.

``SpotOrder`` and ``TradeRecord`` are what the matching engine (``matching.py``) keeps, the REST
and stream shapes (``responses.py``, ``user_stream.py``) render and the state file stores.
``Contingency`` is how the engine tells an order list (``order_lists.py``) that one of its legs
filled, is about to trigger or is being canceled, without importing it.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

ZERO = Decimal(0)
OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")
CONDITIONAL_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")


def stop_fires(otype: str, side: str, stop: Decimal, low: Decimal, high: Decimal) -> bool:
    """§5: STOP_LOSS BUY / TAKE_PROFIT SELL fire when the price rises to the stop; STOP_LOSS SELL /
    TAKE_PROFIT BUY when it falls to it."""
    if otype not in CONDITIONAL_TYPES:
        return False
    rising = (otype.startswith("STOP_LOSS") and side == "BUY") or (otype.startswith("TAKE_PROFIT") and side == "SELL")
    return high >= stop if rising else low <= stop


def generate_client_id() -> str:
    return "web_" + secrets.token_hex(12)


@dataclass(slots=True)
class TradeRecord:
    symbol: str
    id: int
    order_id: int
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_buyer: bool
    is_maker: bool


@dataclass(slots=True)
class SpotOrder:
    symbol: str
    order_id: int
    client_order_id: str
    side: str
    type: str
    time_in_force: str
    price: Decimal
    orig_qty: Decimal
    orig_quote_qty: Decimal
    time: int
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    status: str = "NEW"
    update_time: int = 0
    working_time: int = -1
    locked: Decimal = ZERO  # what this order still holds locked (quote for BUY, base for SELL)
    fills: list[TradeRecord] = field(default_factory=list)
    orig_client_order_id: str | None = None  # set on cancel
    cancel_client_id: str | None = None  # the clientOrderId of the cancel request
    stop_price: Decimal = ZERO
    pending: bool = False  # a stop/take-profit order waiting for its trigger
    order_list_id: int = -1  # the order list (OCO) this order is a leg of; -1 for none, as Binance says

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty


class Contingency(Protocol):
    """What the engine calls for an order that is a leg of an order list (``order_list_id >= 0``)."""

    def before_trigger(self, order: SpotOrder) -> None:
        """The leg's stop price was reached; it runs right after this returns."""

    def after_fill(self, order: SpotOrder) -> None:
        """The leg traded (its executionReport is out)."""

    def cancel_leg(self, order: SpotOrder, cancel_client_id: str | None) -> bool:
        """A cancel of this open leg: True when the list took it over (both legs canceled)."""
        ...
