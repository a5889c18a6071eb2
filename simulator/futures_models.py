"""USD-M futures records of the local exchange: orders, trades and one-way positions
(``simulator.futures`` matches and margins them)."""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

ZERO = Decimal(0)
OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")


# -- orders, trades, positions --------------------------------------------------------------------


@dataclass(slots=True)
class FuturesTrade:
    symbol: str
    id: int
    order_id: int
    side: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    realized_pnl: Decimal
    time: int
    maker: bool


@dataclass(slots=True)
class FuturesOrder:
    symbol: str
    order_id: int
    client_order_id: str
    side: str
    type: str
    time_in_force: str
    price: Decimal
    orig_qty: Decimal
    reduce_only: bool
    time: int
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    status: str = "NEW"
    update_time: int = 0
    fills: list[FuturesTrade] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def avg_price(self) -> Decimal:
        return self.cum_quote / self.executed_qty if self.executed_qty else ZERO


@dataclass(slots=True)
class Position:
    symbol: str
    leverage: int = 20
    margin_type: str = "CROSSED"  # or ISOLATED
    amt: Decimal = ZERO  # signed: > 0 long, < 0 short
    entry: Decimal = ZERO
    isolated_wallet: Decimal = ZERO
    update_time: int = 0


def sign(x: Decimal) -> int:
    return (x > 0) - (x < 0)


