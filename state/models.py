"""The JSON shapes stored in Redis, shared by the worker (writer) and the dashboard (reader).

pydantic models so both sides validate what they read; the worker builds them from core types.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.types import Candle, ControlState, Fill, Order, Trade, TradingState


class _M(BaseModel):
    model_config = ConfigDict(extra="ignore")


class BotMeta(_M):
    name: str
    mode: str
    symbol: str
    strategy: str
    kind: str = "signal"
    symbols: list[str] = Field(default_factory=list)
    params: dict[str, object] = Field(default_factory=dict)
    market: str = "spot"
    sizing: str = ""


# who sets a state by a rule, not by an operator (Resume all leaves their states alone)
AUTOMATIC = frozenset({"risk", "reconcile", "preflight", "venue", "health"})


class ControlRecord(_M):
    state: TradingState = TradingState.ACTIVE
    set_by: str = "system"
    set_at: int = 0
    reason: str = ""
    # FLATTEN: the state the bot takes once the venue confirms it flat (PAUSED, or HALTED for a bot that
    # was halted); "" in Redis when there is none
    then: TradingState | None = None

    @field_validator("then", mode="before")
    @classmethod
    def _none(cls, v: object) -> object:
        return None if v in ("", "None") else v

    @classmethod
    def of(cls, c: ControlState) -> "ControlRecord":
        return cls(state=c.state, set_by=c.set_by, set_at=c.set_at, reason=c.reason, then=c.then)

    def to_core(self) -> ControlState:
        return ControlState(self.state, self.set_by, self.set_at, self.reason, then=self.then)


class TrancheView(_M):
    """One entry still held in a position (core.types.Tranche)."""

    price: float
    quantity: float
    time: int
    fee: float = 0.0
    order_id: str = ""


class PositionView(_M):
    symbol: str
    side: str
    quantity: float
    avg_entry: float
    mark: float
    unrealized_pnl: float
    opened_at: int
    entry_fees: float = 0.0
    stop_loss: float | None = None
    take_profit: float | None = None
    # Signal bots: the entries still held (empty in older snapshots and for DCA bots, whose
    # tranches live in their deals) and the realized P&L of partial exits while open.
    tranches: list[TrancheView] = Field(default_factory=list)
    realized_pnl: float = 0.0

    @property
    def tranche_count(self) -> int:
        return len(self.tranches) or 1


class SignalStats(_M):
    """Ghost signal quality; formulas in core.metrics."""

    total_signals: int = 0
    closed: int = 0
    accuracy_pct: float = 0.0
    avg_win: float = 0.0
    avg_loss: float = 0.0
    expectancy: float = 0.0
    profit_factor: float | None = None
    max_drawdown_pct: float = 0.0
    sharpe: float = 0.0


class RiskView(_M):
    """The bot's risk status for the dashboard's risk panel (numbers as of the snapshot)."""

    high_water: float = 0.0
    drawdown_pct: float = 0.0
    max_drawdown_pct: float | None = None
    day_open: float = 0.0
    daily_loss: float = 0.0
    daily_loss_limit: float | None = None   # in quote, the tighter of value and pct
    week_open: float = 0.0
    weekly_loss: float = 0.0
    weekly_loss_limit: float | None = None
    exposure: float = 0.0
    exposure_limit: float | None = None
    consecutive_losses: int = 0
    max_consecutive_losses: int | None = None
    margin_utilization_pct: float | None = None
    liquidation_distance_pct: float | None = None  # % of the way from entry to liquidation
    breaches: list[str] = Field(default_factory=list)
    limits: dict[str, object] = Field(default_factory=dict)
    monitor: dict[str, object] = Field(default_factory=dict)  # RiskMonitor state, for restarts


class BotSnapshot(_M):
    name: str
    mode: str
    symbol: str
    strategy: str
    updated_at: int
    # Wall-clock ms when these books were built: every order booked in them was recorded (its intent)
    # before it; an intent that became final after it is not in them (the crash-recovery watermark)
    books_at: int = 0
    last_candle_time: int = 0
    last_price: float = 0.0
    candles_seen: int = 0
    control: ControlRecord = Field(default_factory=ControlRecord)
    effective_state: TradingState = TradingState.ACTIVE
    quote_asset: str = "USDT"
    starting_balance: float = 0.0
    quote_balance: float = 0.0
    base_balance: float = 0.0
    equity: float = 0.0
    high_water: float = 0.0
    realized_pnl: float = 0.0
    unrealized_pnl: float = 0.0
    fees_paid: float = 0.0
    funding: float = 0.0  # USD-M funding received (> 0) or paid (< 0), apart from fees
    position: PositionView | None = None
    trade_count: int = 0
    wins: int = 0
    win_rate_pct: float = 0.0
    trade_pnls: list[float] = Field(default_factory=list)
    signal_stats: SignalStats | None = None
    last_signal: str = ""
    denials: dict[str, int] = Field(default_factory=dict)
    orders_sent: int = 0
    # Restart state: enough to continue exactly where the bot stopped.
    max_drawdown_pct: float = 0.0
    daily_equity: dict[str, float] = Field(default_factory=dict)
    signals_total: int = 0
    hold_candles: int = 0
    open_signal_id: str = ""
    entry_fees_open: float = 0.0
    open_signals: list[dict[str, object]] = Field(default_factory=list)  # ghost: open hypothetical trades
    risk: RiskView = Field(default_factory=RiskView)
    positions: list[PositionView] = Field(default_factory=list)  # every open position (DCA: one per pair)
    dca: dict[str, object] | None = None  # DCA bots: active deals, resting orders, counters
    # Venue signal bots: the protective orders resting on the exchange (one line), and the trade ids of
    # theirs already booked, by client id (saved with the books: a restart books the rest, once)
    protection: str = ""
    protective_booked: dict[str, list[int]] = Field(default_factory=dict)
    # regime_switch bots: the market regime now, and its latest changes as (candle open time, regime)
    regime: str = ""
    regime_history: list[tuple[int, str]] = Field(default_factory=list)

    @property
    def open_positions(self) -> list[PositionView]:
        return self.positions or ([self.position] if self.position is not None else [])

    @property
    def pnl(self) -> float:
        return self.equity - self.starting_balance

    @property
    def pnl_pct(self) -> float:
        return 100.0 * self.pnl / self.starting_balance if self.starting_balance else 0.0


class SignalRecord(_M):
    id: str
    bot: str
    symbol: str
    time: int
    price: float
    side: str
    confidence: float
    reason: str
    stop_loss: float | None = None
    take_profit: float | None = None
    acted: bool = False
    note: str = ""
    temperature: float | None = None  # engine.signal_policy, for bots with a temperature
    regime: str = ""  # strategy.regime, for regime_switch bots


class OrderRecord(_M):
    client_order_id: str
    bot: str
    symbol: str
    side: str
    quantity: float
    purpose: str
    order_type: str
    price: float | None = None
    status: str
    created_at: int
    reason: str = ""

    @classmethod
    def of(cls, o: Order) -> "OrderRecord":
        return cls(
            client_order_id=o.client_order_id, bot=o.bot, symbol=o.symbol, side=o.side.value,
            quantity=o.quantity, purpose=o.purpose.value, order_type=o.order_type.value, price=o.price,
            status=o.status.value, created_at=o.created_at, reason=o.reason,
        )


class FillRecord(_M):
    client_order_id: str
    bot: str
    symbol: str
    side: str
    quantity: float
    price: float
    fee: float
    fee_asset: str
    time: int

    @classmethod
    def of(cls, f: Fill) -> "FillRecord":
        return cls(
            client_order_id=f.client_order_id, bot=f.bot, symbol=f.symbol, side=f.side.value,
            quantity=f.quantity, price=f.price, fee=f.fee, fee_asset=f.fee_asset, time=f.time,
        )


class TradeRecord(_M):
    bot: str
    symbol: str
    side: str
    quantity: float
    entry_price: float
    exit_price: float
    entry_time: int
    exit_time: int
    pnl: float
    return_pct: float
    fees: float
    exit_reason: str = ""
    signal_id: str = ""
    temperature: float | None = None  # of the position's signal when it closed (engine.signal_policy)
    regime: str = ""  # the market regime the position opened in (strategy.regime)

    @classmethod
    def of(cls, t: Trade, signal_id: str = "") -> "TradeRecord":
        return cls(
            bot=t.bot, symbol=t.symbol, side=t.side.value, quantity=t.quantity, entry_price=t.entry_price,
            exit_price=t.exit_price, entry_time=t.entry_time, exit_time=t.exit_time, pnl=t.pnl,
            return_pct=t.return_pct, fees=t.fees, exit_reason=t.exit_reason, signal_id=signal_id,
            temperature=t.temperature, regime=t.regime,
        )


class EquityRecord(_M):
    time: int
    equity: float


class RiskDecisionRecord(_M):
    time: int
    allowed: bool
    rule: str
    detail: str
    client_order_id: str = ""
    purpose: str = ""


class CandleRecord(_M):
    t: int
    o: float
    h: float
    l: float  # noqa: E741 - OHLC letters
    c: float
    v: float

    @classmethod
    def of(cls, c: Candle) -> "CandleRecord":
        return cls(t=c.open_time, o=c.open, h=c.high, l=c.low, c=c.close, v=c.volume)

    def to_candle(self, symbol: str, interval: str = "1m", market: str = "spot") -> Candle:
        return Candle(symbol, self.t, self.o, self.h, self.l, self.c, self.v, interval, market)


class Heartbeat(_M):
    pid: int
    started_at: int
    time: int
    bots: int
    last_candle_time: int = 0
    candles_rejected: int = 0
    version: str = ""
    market: str = ""
    # the last heartbeat of a worker before this one that did not stop cleanly (0: none), so the
    # dashboard can say this worker restarted after a crash; clean_stop marks a worker's final record
    crashed_before: int = 0
    clean_stop: bool = False


class CommandResult(_M):
    nonce: str
    entry_id: str
    # pending: applied, but its effect is not complete yet (a close the venue has not confirmed);
    # the worker keeps at it and audits when it completes
    status: Literal["applied", "pending", "duplicate", "rejected"]
    message: str
    time: int


class AuditRecord(_M):
    time: int
    who: str
    command: str
    target: str
    result: str
    detail: str
    entry_id: str = ""
    nonce: str = ""


@dataclass(slots=True)
class BotUpdate:
    """Everything one bot produced since the last commit."""

    snapshot: BotSnapshot
    orders: list[OrderRecord] = field(default_factory=list)
    fills: list[FillRecord] = field(default_factory=list)
    trades: list[TradeRecord] = field(default_factory=list)
    signals: list[SignalRecord] = field(default_factory=list)
    equity: list[EquityRecord] = field(default_factory=list)
    risk: list[RiskDecisionRecord] = field(default_factory=list)
    deals: list[dict[str, object]] = field(default_factory=list)  # closed DCA deals
    # (reconciliation baseline key, quantity): dust written off, added to the baseline in the same
    # transaction as the books that dropped it, so a crash can neither lose nor double it
    dust: list[tuple[str, float]] = field(default_factory=list)


@dataclass(slots=True)
class ControlChange:
    scope: str
    target: str
    record: ControlRecord
    old: TradingState | None = None  # the state it replaced (for the state_changed event)
