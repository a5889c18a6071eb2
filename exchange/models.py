"""The adapter's venue records: orders, trades, balances, positions, funding, a prepared order.

Decimal throughout; ``VenueOrder.parse`` reads spot and USD-M order JSON alike. ``exchange.client``
re-exports every name here (callers import them from there).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from exchange.rules import ZERO, dec

Side = Literal["BUY", "SELL"]
FINAL_STATUSES = frozenset({"FILLED", "CANCELED", "REJECTED", "EXPIRED", "EXPIRED_IN_MATCH"})


@dataclass(frozen=True, slots=True)
class VenueTrade:
    """One execution of an order (spot myTrades / FULL fills, futures userTrades)."""

    symbol: str
    trade_id: int
    order_id: int
    side: str
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    realized_pnl: Decimal = ZERO


@dataclass(slots=True)
class VenueOrder:
    symbol: str
    order_id: int
    client_order_id: str
    side: str
    type: str
    status: str
    orig_qty: Decimal
    executed_qty: Decimal
    cum_quote: Decimal
    price: Decimal = ZERO
    avg_price: Decimal = ZERO
    reduce_only: bool = False
    time: int = 0
    update_time: int = 0
    trades: list[VenueTrade] = field(default_factory=list)  # from a FULL response, if any

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    @classmethod
    def parse(cls, o: dict[str, Any]) -> "VenueOrder":
        executed = dec(o.get("executedQty", "0"))
        cum = dec(o.get("cummulativeQuoteQty", o.get("cumQuote", "0")))
        avg = dec(o.get("avgPrice", "0"))
        if avg == 0 and executed > 0:
            avg = cum / executed
        trades: list[VenueTrade] = []
        for i, f in enumerate(o.get("fills") or []):
            trades.append(VenueTrade(o["symbol"], int(f.get("tradeId", -1 - i)), int(o["orderId"]), o.get("side", ""),
                                     dec(f["price"]), dec(f["qty"]), dec(f.get("commission", "0")),
                                     f.get("commissionAsset", ""), int(o.get("transactTime", 0))))
        return cls(
            symbol=o["symbol"], order_id=int(o["orderId"]), client_order_id=o.get("clientOrderId", ""),
            side=o.get("side", ""), type=o.get("type", ""), status=o.get("status", ""),
            orig_qty=dec(o.get("origQty", "0")), executed_qty=executed, cum_quote=cum,
            price=dec(o.get("price", "0") or "0"), avg_price=avg, reduce_only=bool(o.get("reduceOnly", False)),
            time=int(o.get("time", o.get("transactTime", 0)) or 0),
            update_time=int(o.get("updateTime", o.get("transactTime", 0)) or 0), trades=trades,
        )


@dataclass(frozen=True, slots=True)
class Balance:
    asset: str
    free: Decimal
    locked: Decimal

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass(frozen=True, slots=True)
class FuturesPosition:
    symbol: str
    amount: Decimal  # signed: > 0 long, < 0 short
    entry_price: Decimal
    mark_price: Decimal
    unrealized_pnl: Decimal
    liquidation_price: Decimal
    leverage: int | None = None
    margin_type: str = ""


@dataclass(frozen=True, slots=True)
class FundingIncome:
    """One USD-M funding payment (``/fapi/v1/income``, incomeType FUNDING_FEE): > 0 received, < 0 paid."""

    symbol: str
    amount: Decimal
    asset: str
    time: int  # the funding time (ms)
    tran_id: int


@dataclass(frozen=True, slots=True)
class PreparedOrder:
    """A market order after rounding: what will be sent, or why it can't be."""

    symbol: str
    side: str
    quantity: Decimal
    quantity_text: str
    ref_price: Decimal
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems
