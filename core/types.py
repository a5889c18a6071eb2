"""Domain types: the vocabulary every layer speaks.

Prices and quantities are floats inside the engine (speed, numpy); they become
Decimal only at the exchange boundary (exchange/). Times are epoch milliseconds, UTC.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

INTERVAL_MS: dict[str, int] = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
}


class Mode(str, Enum):
    BACKTEST = "backtest"
    GHOST = "ghost"
    PAPER = "paper"
    LIVE = "live"


class Side(str, Enum):
    BUY = "BUY"
    SELL = "SELL"
    NONE = "NONE"


class PositionSide(str, Enum):
    LONG = "LONG"
    SHORT = "SHORT"


class TradingState(str, Enum):
    """Explicit trading states (nautilus_trader style). Ordered from most to least permissive.

    ACTIVE       entries and exits allowed
    REDUCE_ONLY  only orders that shrink exposure
    PAUSED       no new entries; exits (stops, take-profits, opposite signals) still run
    FLATTEN      close every position at market, then PAUSED
    HALTED       no orders at all
    """

    ACTIVE = "ACTIVE"
    REDUCE_ONLY = "REDUCE_ONLY"
    PAUSED = "PAUSED"
    FLATTEN = "FLATTEN"
    HALTED = "HALTED"

    @property
    def allows_entries(self) -> bool:
        return self is TradingState.ACTIVE

    @property
    def allows_exits(self) -> bool:
        return self is not TradingState.HALTED


class OrderStatus(str, Enum):
    INTENT = "INTENT"
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


class OrderType(str, Enum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"


class OrderPurpose(str, Enum):
    """Why an order exists: the risk engine treats entries and exits differently."""

    ENTRY = "ENTRY"
    EXIT = "EXIT"
    FLATTEN = "FLATTEN"


# Candle, Fill and Trade are values: nothing mutates them after building. They are not
# ``frozen`` dataclasses because a frozen __init__ goes through object.__setattr__ per field
# (~1.2 µs more per object), paid on every candle, fill and trade of a backtest; __hash__ is
# defined by value so they stay usable as set members and dict keys.

def candle_key(symbol: str, market: str = "spot") -> str:
    """A candle series' key: the symbol for spot (the default everywhere), ``SYMBOL:futures`` for USD-M."""
    return symbol if market == "spot" else f"{symbol}:{market}"


def split_key(key: str) -> tuple[str, str]:
    """(symbol, market) of a candle series' key."""
    symbol, _, market = key.partition(":")
    return symbol, market or "spot"

@dataclass(slots=True)
class Candle:
    symbol: str
    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    interval: str = "1m"
    market: str = "spot"  # the venue market it traded on: a USD-M bot reads futures candles

    def __hash__(self) -> int:
        return hash((self.symbol, self.open_time, self.open, self.high, self.low, self.close, self.volume,
                     self.interval, self.market))

    @property
    def key(self) -> str:
        """Where this series is kept and who reads it: the symbol for spot, ``SYMBOL:futures`` otherwise."""
        return candle_key(self.symbol, self.market)

    @property
    def close_time(self) -> int:
        return self.open_time + INTERVAL_MS[self.interval] - 1

    def problems(self) -> list[str]:
        """Internal consistency problems of this one candle (empty when valid)."""
        out: list[str] = []
        values = (self.open, self.high, self.low, self.close)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (*values, self.volume)):
            return ["non-finite value"]
        if min(values) <= 0:
            out.append("non-positive price")
        if self.volume < 0:
            out.append("negative volume")
        if self.high < max(self.open, self.close, self.low):
            out.append("high below open/close/low")
        if self.low > min(self.open, self.close, self.high):
            out.append("low above open/close/high")
        if self.interval not in INTERVAL_MS:
            out.append(f"unknown interval {self.interval!r}")
        return out


@dataclass(slots=True, frozen=True)
class Signal:
    """What a strategy says about the latest closed candle."""

    side: Side
    confidence: float = 0.0
    reason: str = ""
    stop_loss: float | None = None
    take_profit: float | None = None
    # The side the strategy's condition favours on a candle that fires no new signal (e.g. the fast
    # average still above the slow one): what signal confirmation counts as the signal holding.
    bias: Side = Side.NONE
    # How hot the signal is, in [0, 1] (engine.signal_policy, with a bot's temperature on): None without one.
    temperature: float | None = None
    regime: str = ""  # the market regime it was made in (strategy.regime), "" without a classifier

    @classmethod
    def none(cls, reason: str = "", bias: Side = Side.NONE) -> "Signal":
        return cls(Side.NONE, 0.0, reason, bias=bias)


NO_SIGNAL = Signal(Side.NONE)


@dataclass(slots=True)
class Order:
    client_order_id: str
    bot: str
    symbol: str
    side: Side
    quantity: float
    purpose: OrderPurpose
    order_type: OrderType = OrderType.MARKET
    price: float | None = None
    reduce_only: bool = False
    status: OrderStatus = OrderStatus.INTENT
    created_at: int = 0
    reason: str = ""


@dataclass(slots=True)  # a value, not frozen: see Candle
class Fill:
    client_order_id: str
    bot: str
    symbol: str
    side: Side
    quantity: float
    price: float
    fee: float
    fee_asset: str
    time: int

    def __hash__(self) -> int:
        return hash((self.client_order_id, self.bot, self.symbol, self.side, self.quantity, self.price, self.fee,
                     self.fee_asset, self.time))


@dataclass(slots=True)
class Tranche:
    """One entry order that opened or added to a position (its fills merged into one).

    ``quantity`` (base, > 0) and ``fee`` are what is still held: a partial exit takes its
    share from every tranche pro rata (average-cost accounting), so each tranche keeps its
    price and the position's average entry does not move on an exit.
    """

    price: float
    quantity: float
    time: int
    fee: float
    order_id: str = ""
    tag: str = ""  # what the entry was in a DCA deal's ladder (BO, SO1, ...); "" for signal entries


@dataclass(slots=True)
class Position:
    """One position per symbol. quantity > 0 is long, < 0 is short.

    ``tranches`` are the entries still held (core.portfolio keeps them; avg_entry is their
    quantity-weighted mean price, entry_fees their fees); ``realized_pnl`` sums the P&L of the
    partial exits taken so far from this open position (each also a Trade).
    """

    symbol: str
    quantity: float = 0.0
    avg_entry: float = 0.0
    opened_at: int = 0
    entry_fees: float = 0.0
    stop_loss: float | None = None
    take_profit: float | None = None
    tranches: list[Tranche] = field(default_factory=list)
    realized_pnl: float = 0.0
    temperature: float | None = None  # of the signal that opened it, cooling while held (engine.signal_policy)
    regime: str = ""  # the market regime of the signal that opened it (strategy.regime)

    @property
    def is_open(self) -> bool:
        return self.quantity != 0.0

    def held_tranches(self) -> list[Tranche]:
        """The tranches, or one tranche standing for the whole position when they do not add up
        to it: a position restored from an older snapshot, or rewritten from outside the
        portfolio (the operator adopting the venue's quantity) has no per-entry history."""
        size = abs(self.quantity)
        if size == 0.0:
            return []
        ts = self.tranches
        if ts and abs(sum(t.quantity for t in ts) - size) <= 1e-9 * size:
            return ts
        return [Tranche(self.avg_entry, size, self.opened_at, self.entry_fees)]

    @property
    def tranche_count(self) -> int:
        return len(self.held_tranches())

    @property
    def side(self) -> PositionSide | None:
        if self.quantity > 0:
            return PositionSide.LONG
        if self.quantity < 0:
            return PositionSide.SHORT
        return None

    def unrealized_pnl(self, mark: float) -> float:
        return (mark - self.avg_entry) * self.quantity


@dataclass(slots=True)  # a value, not frozen: see Candle
class Trade:
    """A closed round trip (or the closed part of one)."""

    bot: str
    symbol: str
    side: PositionSide
    quantity: float
    entry_price: float
    exit_price: float
    entry_time: int
    exit_time: int
    pnl: float  # net of entry and exit fees
    fees: float
    exit_reason: str = ""
    temperature: float | None = None  # the position's signal temperature when it closed (None without one)
    regime: str = ""  # the market regime the position opened in ("" without a classifier)

    def __hash__(self) -> int:
        return hash((self.bot, self.symbol, self.side, self.quantity, self.entry_price, self.exit_price,
                     self.entry_time, self.exit_time, self.pnl, self.fees, self.exit_reason, self.temperature,
                     self.regime))

    @property
    def duration_ms(self) -> int:
        return self.exit_time - self.entry_time

    @property
    def return_pct(self) -> float:
        cost = self.entry_price * self.quantity
        return 100.0 * self.pnl / cost if cost else 0.0


@dataclass(slots=True, frozen=True)
class EquityPoint:
    time: int
    equity: float


@dataclass(slots=True)
class ControlState:
    """A trading state with who set it, when and why (level-triggered, persisted)."""

    state: TradingState = TradingState.ACTIVE
    set_by: str = "system"
    set_at: int = 0
    reason: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    then: "TradingState | None" = None  # FLATTEN: the state once flat
