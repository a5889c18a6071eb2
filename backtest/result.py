"""What a backtest run gives back: per-bot results (``BotResult``), and the trading state a bot has inside
a run (``BacktestControl``) with the risk events that moved it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

import numpy as np

from backtest.data import SymbolData
from backtest.fills import FillModel
from core.types import Side, Trade, TradingState
from risk.states import is_more_restrictive

if TYPE_CHECKING:
    from engine.bot import Bot
    from engine.dca_bot import DcaBot

AnyBot = Union["Bot", "DcaBot"]

@dataclass(slots=True)
class RiskEvent:
    """A risk-monitor breach during a backtest, as the worker would audit it."""

    time: int  # the close of the candle it happened on (epoch ms)
    rule: str
    state: str  # the bot's trading state after it
    reason: str
    flattened: bool


@dataclass(slots=True)
class BacktestControl:
    """The bot's trading state inside a backtest: what ``state_of`` returns. Starts ACTIVE; only
    risk breaches move it, and only ever tighter (nobody resumes a bot mid-backtest)."""

    state: TradingState = TradingState.ACTIVE
    events: list[RiskEvent] = field(default_factory=list)

    def state_of(self, _bot: AnyBot) -> TradingState:
        return self.state

    def settle(self, bot: AnyBot) -> None:
        """Apply what the bot's step queued (``engine.ledger``), as the worker does after a step minus
        Redis: flatten if a breach asks for it, then tighten (never loosen) the state."""
        while True:
            breaches = bot.take_breaches()
            if not breaches:
                return
            for b in breaches:
                if b.flatten:
                    bot.flatten(f"risk: {b.rule}")
                if is_more_restrictive(b.state, self.state):
                    self.state = b.state
                self.events.append(RiskEvent(bot.last_candle_time + bot.interval_ms, b.rule, self.state.value,
                                             b.reason, b.flatten))


@dataclass(slots=True)
class BotResult:
    """What one bot did over the data."""

    name: str
    symbol: str
    strategy: str
    params: dict[str, object]
    interval: str
    path: str  # "fast" or "bar"
    starting_balance: float
    times: np.ndarray  # candle open times
    closes: np.ndarray
    equity: np.ndarray  # equity at each candle's close
    trades: list[Trade]
    signals: list[tuple[int, Side, bool]]  # (candle open_time, side, acted)
    fees_paid: float
    open_quantity: float
    open_entry: float
    open_since: int
    orders_sent: int
    orders_expired: int
    denials: dict[str, int]
    fill_model: FillModel
    data: SymbolData  # the candles it ran on (plots)
    trading_state: str = "ACTIVE"  # at the end (risk breaches move it)
    risk_events: list[RiskEvent] = field(default_factory=list)
    # DCA bots (backtest.dca): several pairs, a deals table. For them ``times`` is the union of
    # the pairs' candle times, ``closes`` the equal-weight buy-and-hold index of the pairs (the
    # pair's own closes for one pair) and ``data``/``open_*`` the first pair's.
    kind: str = "signal"
    symbols: list[str] = field(default_factory=list)
    deals: list["DealRow"] = field(default_factory=list)
    dca_settings: dict[str, object] | None = None
    notes: list[str] = field(default_factory=list)  # run settings that did not apply, a books mismatch
    funding: float = 0.0  # USD-M funding received (> 0) or paid (< 0), apart from fees (executors.funding)

    @property
    def bars(self) -> int:
        return len(self.times)


@dataclass(slots=True)
class DealRow:
    """One deal of a DCA backtest, as the report's deals table shows it.

    ``pnl`` is net of every fee: realized for a closed deal; for an open one, realized so far
    plus the position marked at the last close minus its entry fees (no exit fee yet)."""

    id: str
    symbol: str
    side: str  # long | short
    status: str  # CLOSED | STOPPED | OPEN
    opened_at: int  # epoch ms
    closed_at: int | None  # None while open
    duration_ms: int  # to the close, or to the end of the data when open
    safety_orders: int  # safety orders filled
    max_safety_orders: int
    base_price: float
    avg_entry: float  # quantity-weighted price of the buys (sells for a short), fees excluded
    quantity: float  # base bought (sold for a short) over the deal
    invested: float  # quote put in, fees included
    exit_price: float | None  # quantity-weighted price of the exits so far
    pnl: float
    pnl_pct: float  # pnl / invested, percent
    fees: float
    max_drawdown_pct: float  # worst floating loss against the average (DcaBot's Deal figure)
    close_reason: str  # "take profit", "stop loss", ... ("" while open)
    tp_steps_filled: int

    @property
    def open(self) -> bool:
        return self.status == "OPEN"
