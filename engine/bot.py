"""A Bot: strategy + risk + executor + portfolio, fed one closed candle at a time.

The same class runs in ghost, paper and (with the exchange executor) live and backtest;
only the executor and the feed differ. Every order, exits and flattening included, goes
through RiskEngine.check(). The bot buffers what it produced (orders, fills, trades,
signals, equity, risk decisions) until the worker drains it into one Redis transaction.
"""
from __future__ import annotations

import hashlib
import math
from collections import Counter, deque
from datetime import datetime, timezone
from functools import lru_cache
from typing import Callable, Protocol

from core import metrics
from core.portfolio import Portfolio
from core.types import (
    INTERVAL_MS,
    Candle,
    ControlState,
    Fill,
    NO_SIGNAL,
    Mode,
    Order,
    OrderPurpose,
    OrderStatus,
    OrderType,
    Position,
    PositionSide,
    Side,
    Signal,
    Trade,
    Tranche,
    TradingState,
)
from core.exits import ExitCheck, touch_exit_check
from executors.base import Executor
from executors.ghost import ClosedSignal, Hypothetical, SignalTracker
from risk.engine import MarketStatus, PortfolioView, RiskContext, RiskEngine
from risk.limits import RiskLimits, limits_view, quote_cap, tighten
from risk.monitor import Breach, RiskMonitor
from risk.sizing import SizingInputs, SizingPolicy, size_quote
from state.models import (
    BotSnapshot,
    ControlRecord,
    EquityRecord,
    FillRecord,
    OrderRecord,
    PositionView,
    RiskDecisionRecord,
    RiskView,
    SignalRecord,
    SignalStats,
    TradeRecord,
    TrancheView,
)
from state.writer import BotUpdate
from strategy.base import Strategy, history_window

TRADE_PNLS_KEPT = 5000
# Enum members looked up once: on Python 3.11 each `Side.BUY` costs ~100 ns, many times per order.
_BUY = Side.BUY
_SELL = Side.SELL
_NONE = Side.NONE
_P_ENTRY = OrderPurpose.ENTRY
_P_EXIT = OrderPurpose.EXIT
_P_FLATTEN = OrderPurpose.FLATTEN
_MARKET_ORDER = OrderType.MARKET
_LIMIT_ORDER = OrderType.LIMIT
_REJECTED = OrderStatus.REJECTED


class RiskEnv(Protocol):
    """What the worker knows beyond one bot: the mode's positions, market health, correlations."""

    def portfolio_view(self, bot: "Bot") -> PortfolioView: ...

    def market_status(self, symbol: str, now_ms: int, bot: "Bot | None" = None) -> MarketStatus: ...

    def margin(self, bot: "Bot") -> tuple[float, float]: ...

    def correlation(self, a: str, b: str) -> float | None: ...


BreachHandler = Callable[["Bot", str, TradingState, str, bool], None]

@lru_cache(maxsize=1024)
def _bot_tag(bot: str) -> str:
    return hashlib.sha1(bot.encode()).hexdigest()[:8]  # cached: the backtester places many orders


def client_order_id(bot: str, time_ms: int, purpose: OrderPurpose, seq: int) -> str:
    """Deterministic id (<= 36 chars, Binance's limit): same bot, candle, purpose, seq -> same id."""
    return f"tb{_bot_tag(bot)}{_b36(time_ms)}{_PURPOSE_CODE[purpose]}{seq}"


_PURPOSE_CODE = {_P_ENTRY: "n", _P_EXIT: "x", _P_FLATTEN: "f"}


def _reanchor(level: float | None, ref: float, old_level: float | None, old_avg: float,
              avg: float) -> float | None:
    """A protective level moved to a new average entry, keeping its relative distance."""
    if level is not None and ref > 0:
        return avg * level / ref
    if old_level is not None and old_avg > 0:
        return avg * old_level / old_avg
    return None


def build_risk_view(lim: RiskLimits, mon: RiskMonitor | None, equity: float, exposure: float,
                    exposure_limit: float | None, high_water: float, drawdown_pct: float, breaches: list[str],
                    venue_margin: tuple[float | None, float | None] = (None, None)) -> RiskView:
    """A bot's risk status for the dashboard (signal and DCA bots alike): the monitor's loss
    figures against their limits; `high_water`/`drawdown_pct` stand in when there is no monitor."""
    m = mon.s if mon is not None else None
    return RiskView(
        high_water=m.high_water if m else high_water,
        drawdown_pct=mon.drawdown_pct(equity) if mon else drawdown_pct, max_drawdown_pct=lim.max_drawdown_pct,
        day_open=m.day_open if m else 0.0, daily_loss=max(0.0, (m.day_open - equity)) if m and m.day_open else 0.0,
        daily_loss_limit=quote_cap(lim.daily_loss_value, lim.daily_loss_pct, m.day_open if m else equity),
        week_open=m.week_open if m else 0.0,
        weekly_loss=max(0.0, (m.week_open - equity)) if m and m.week_open else 0.0,
        weekly_loss_limit=quote_cap(lim.weekly_loss_value, lim.weekly_loss_pct, m.week_open if m else equity),
        exposure=exposure, exposure_limit=exposure_limit,
        consecutive_losses=m.consecutive_losses if m else 0, max_consecutive_losses=lim.max_consecutive_losses,
        margin_utilization_pct=venue_margin[0], liquidation_distance_pct=venue_margin[1],
        breaches=list(breaches), limits=limits_view(lim), monitor=mon.dump() if mon is not None else {},
    )


def _finite(x: float | None) -> float:
    return x if x is not None and math.isfinite(x) else 0.0


_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_B36_PAIRS = [a + b for a in _B36 for b in _B36]  # two digits per divmod: half the loop turns


@lru_cache(maxsize=64)
def _b36_slow(n: int) -> str:
    if n < 36:
        return _B36[n]
    out = ""
    while n:
        n, r = divmod(n, 1296)
        out = _B36_PAIRS[r] + out
    return out.lstrip("0")


def _b36(n: int) -> str:
    """Base 36 of n >= 0. Epoch-ms values differ only in their last four digits for ~28 minutes,
    so the high part comes from a small cache and the low four digits from the pair table."""
    if n < 1_679_616:  # 36**4
        return _b36_slow(n)
    hi, lo = divmod(n, 1_679_616)
    a, b = divmod(lo, 1296)
    return _b36_slow(hi) + _B36_PAIRS[a] + _B36_PAIRS[b]


class Bot:
    def __init__(
        self,
        name: str,
        mode: Mode,
        symbol: str,
        strategy: Strategy,
        executor: Executor,
        risk: RiskEngine,
        portfolio: Portfolio,
        sizing: "tuple[str, float] | SizingPolicy",
        state_of: Callable[["Bot"], TradingState],
        allow_short: bool = False,
        max_hold_candles: int | None = None,
        interval: str = "1m",
        exit_check: ExitCheck = touch_exit_check,
        records: bool = True,
        monitor: RiskMonitor | None = None,
        on_breach: BreachHandler | None = None,
        env: RiskEnv | None = None,
        max_tranches: int = 1,
    ) -> None:
        if max_tranches < 1:
            raise ValueError(f"bot {name}: max_tranches must be >= 1, got {max_tranches}")
        self.name = name
        self.mode = mode
        self.symbol = symbol
        self.strategy = strategy
        self.executor = executor
        self.risk = risk
        self.portfolio = portfolio
        self.sizing = sizing if isinstance(sizing, SizingPolicy) else SizingPolicy(sizing[0], sizing[1])  # type: ignore[arg-type]
        self.reduce_only_exits = False  # futures venues: exits go out reduce-only
        self.leverage = 1.0  # futures venues: the leverage set on the venue for this symbol
        # futures venues: (margin utilization %, % of the way to liquidation) as last seen on the venue
        self.venue_margin: tuple[float | None, float | None] = (None, None)
        # Venue bots: what is left after an exit below the minimum notional is dust the venue's lot
        # size would not let us sell; it is written off and handed to this hook (reconciliation).
        self.on_dust: Callable[[str, float], None] | None = None  # (symbol, unsellable remainder)
        self.monitor = monitor  # None: no loss-limit state moves (backtest.engine adds its own when needed)
        self.on_breach = on_breach
        self.env = env
        self.state_of = state_of
        self.allow_short = allow_short
        # Entries a position may hold: 1 ignores a same-direction signal while in a position;
        # more lets each such signal add a tranche (ghost bots follow every signal anyway).
        self.max_tranches = max_tranches
        self._stats: tuple[int, metrics.TradeStats | None] = (-1, None)
        self.max_hold_candles = max_hold_candles
        self.interval_ms = INTERVAL_MS[interval]
        self.exit_check = exit_check
        # records=False (backtests): no Redis records are buffered; closed trades and signals
        # go to the plain lists below instead (a backtest keeps them all, the worker never does).
        self.records = records
        self.closed_trades: list[Trade] = []
        self.signal_log: list[tuple[int, Side, bool]] = []  # (candle open_time, side, acted)
        self.control = ControlState()
        self.history: deque[Candle] = deque(maxlen=history_window(strategy))
        self.last_price = 0.0
        self.last_candle_time = 0
        self.candles_seen = 0
        self.hold_candles = 0
        self.open_signal_id = ""
        self._last_signal: "str | tuple[Side, float, str]" = ""  # formatted on read (see last_signal)
        self.signals_total = 0
        self.orders_sent = 0
        self.denials: Counter[str] = Counter()
        self.trade_pnls: list[float] = []
        self.trade_count = 0
        self.wins = 0
        self.high_water = portfolio.starting_balance
        self.max_drawdown_pct = 0.0
        self.daily_equity: dict[str, float] = {}
        self._seq = 0
        self._breaches: list[str] = []
        self._out = BotUpdate(snapshot=None)  # type: ignore[arg-type]  # filled by drain()
        # Ghost bots follow every signal as its own hypothetical trade instead of one position.
        self.tracker = SignalTracker(name, symbol, max_hold_candles) if mode is Mode.GHOST else None

    # ---- inputs -------------------------------------------------------------------------
    def warm(self, candles: list[Candle]) -> None:
        for c in candles[-self.history.maxlen:]:  # type: ignore[index]
            self.history.append(c)
        if candles:
            self.last_price = candles[-1].close
            self.last_candle_time = candles[-1].open_time

    def on_candle(self, c: Candle) -> None:
        if c.open_time <= self.last_candle_time:
            return  # already seen (replayed after a restart): idempotent
        self.history.append(c)
        now = self._open_bar(c)
        sig = NO_SIGNAL
        if len(self.history) >= self.strategy.warmup:
            sig = self.strategy.evaluate(tuple(self.history))
        self.apply(c, sig, now)

    def on_event(self, c: Candle, sig: Signal, skipped: int = 0) -> None:
        """The backtester's fast path: candle ``c`` with its strategy signal computed beforehand
        (vectorised, proven equal to evaluate() on each closed prefix). ``skipped`` candles since
        the last call produced no signal and no exit, so only counters move for them. The order
        path (exits, risk, executor, portfolio) is the one on_candle() runs. History is not kept.
        """
        if c.open_time <= self.last_candle_time:
            return
        self.candles_seen += skipped
        if skipped and (self.portfolio.positions.get(self.symbol) or self.position).quantity != 0.0:
            self.hold_candles += skipped
        now = self._open_bar(c)
        if sig.side is not _NONE:
            self._on_signal(sig, c, now)
        self._mark(now)

    def _open_bar(self, c: Candle) -> int:
        """Advance to closed candle c and run the position's exits; returns the bot's 'now'."""
        self.last_price = c.close
        self.last_candle_time = c.open_time
        self.candles_seen += 1
        self._seq = 0
        now = c.open_time + self.interval_ms  # the candle's close: the bot's 'now'
        if self.tracker is not None:
            self._book_ghost(self.tracker.on_candle(c, now))
        elif (self.portfolio.positions.get(self.symbol) or self.position).quantity != 0.0:
            self.hold_candles += 1
            self._check_exits(c, now)
        return now

    def apply(self, c: Candle, sig: Signal, now: int) -> None:
        """Act on the strategy's signal for candle c (after its exits), then mark equity."""
        if sig.side is not _NONE:
            self._on_signal(sig, c, now)
        self._mark(now)

    def flatten(self, reason: str) -> bool:
        """Close the position at market (allowed by the state, checked by risk). True if flat after."""
        now = self.last_candle_time + self.interval_ms
        if self.tracker is not None:
            self._book_ghost(self.tracker.close_all(self.last_price, now, reason))
            self._mark(now)
            return True
        pos = self.position
        if not pos.is_open or self.last_price <= 0:
            return True
        side = _SELL if pos.quantity > 0 else _BUY
        self._submit(_P_FLATTEN, side, abs(pos.quantity), self.last_price, now, reason)
        self._mark(now)
        return not self.position.is_open

    @property
    def last_signal(self) -> str:
        """'BUY @ price: reason' of the latest signal; kept raw and formatted when read, since a
        backtest makes tens of thousands of signals and reads none of these texts."""
        raw = self._last_signal
        if isinstance(raw, tuple):
            side, price, reason = raw
            raw = self._last_signal = f"{side.value} @ {price:.8g}: {reason}"
        return raw

    @last_signal.setter
    def last_signal(self, text: str) -> None:
        self._last_signal = text

    # ---- decisions ----------------------------------------------------------------------
    @property
    def position(self) -> Position:
        # the dict lookup first: this property is on every order's path
        return self.portfolio.positions.get(self.symbol) or self.portfolio.position(self.symbol)

    @property
    def exposure(self) -> str:
        """What flattening would close, in words ('' when flat)."""
        if self.tracker is not None:
            n = len(self.tracker.open)
            return f"{n} hypothetical signal trade(s)" if n else ""
        pos = self.position
        return f"{pos.quantity:+.6g} {self.symbol}" if pos.is_open else ""

    def equity(self) -> float:
        eq = self.portfolio.equity_at(self.symbol, self.last_price)
        return eq + (self.tracker.unrealized(self.last_price) if self.tracker is not None else 0.0)

    def _check_exits(self, c: Candle, now: int) -> None:
        pos = self.portfolio.positions.get(self.symbol) or self.position
        long = pos.quantity > 0
        exit_side = _SELL if long else _BUY
        hit = self.exit_check(c, long, pos.stop_loss, pos.take_profit)
        if hit is not None:
            reason, price, order_type = hit
            self._submit(_P_EXIT, exit_side, abs(pos.quantity), price, now, reason, order_type)
        elif self.max_hold_candles and self.hold_candles >= self.max_hold_candles:
            self._submit(_P_EXIT, exit_side, abs(pos.quantity), c.close, now, "time_horizon")

    def _on_signal(self, sig: Signal, c: Candle, now: int) -> None:
        self.signals_total += 1
        side, close = sig.side, c.close
        self._last_signal = (side, close, sig.reason)
        notes: list[str] = []
        acted = False
        if self.tracker is not None:
            self._ghost_signal(sig, c, now, f"{self.name}:{c.open_time}")
            return
        positions, symbol = self.portfolio.positions, self.symbol
        pos = positions.get(symbol) or self.position
        if pos.quantity != 0.0 and (pos.quantity > 0) != (side is _BUY):
            acted |= self._submit(_P_EXIT, side, abs(pos.quantity), close, now, "opposite_signal")
            pos = positions.get(symbol) or self.position
        if pos.quantity != 0.0:
            if (pos.quantity > 0) != (side is _BUY) or self.max_tranches <= 1:
                notes.append("already in a position")
            elif (n := pos.tranche_count) >= self.max_tranches:
                notes.append(f"already in a position: {n} of {self.max_tranches} tranches held")
            elif self._add_tranche(sig, c, now, pos):
                acted = True
            else:
                notes.append(f"add denied: {self._out.risk[-1].detail if self._out.risk else ''}")
        elif side is _SELL and not self.allow_short:
            notes.append("spot: no short entries")
        else:
            equity = self.portfolio.equity_at(symbol, close)
            qty = self._entry_quote(sig, close, equity) / close
            if self._submit(_P_ENTRY, side, qty, close, now, sig.reason, stop=sig.stop_loss):
                acted = True
                pos = positions.get(symbol) or self.position
                pos.stop_loss, pos.take_profit = sig.stop_loss, sig.take_profit
                self.hold_candles = 0
                self.open_signal_id = f"{self.name}:{c.open_time}"
            else:
                notes.append(f"entry denied: {self._out.risk[-1].detail if self._out.risk else ''}")
        if not self.records:
            self.signal_log.append((c.open_time, side, acted))
            return
        self._out.signals.append(SignalRecord(
            id=f"{self.name}:{c.open_time}", bot=self.name, symbol=self.symbol, time=c.open_time, price=c.close, side=sig.side.value,
            confidence=sig.confidence, reason=sig.reason, stop_loss=sig.stop_loss, take_profit=sig.take_profit,
            acted=acted, note="; ".join(notes),
        ))

    def _add_tranche(self, sig: Signal, c: Candle, now: int, pos: Position) -> bool:
        """Add to the open position on a same-direction signal: sized by the sizing policy and
        checked by the risk engine like any entry. On a fill the stop-loss and take-profit are
        re-anchored to the new average entry at the same relative distance: the add signal's
        own (level / its close) when it gives one, else the position's (level / old average).
        The time horizon and the opening signal id stay those of the first tranche."""
        close = c.close
        old_avg, old_stop, old_take = pos.avg_entry, pos.stop_loss, pos.take_profit
        qty = self._entry_quote(sig, close, self.portfolio.equity_at(self.symbol, close)) / close
        if not self._submit(_P_ENTRY, sig.side, qty, close, now, sig.reason, stop=sig.stop_loss):
            return False
        pos = self.position
        avg = pos.avg_entry
        pos.stop_loss = _reanchor(sig.stop_loss, close, old_stop, old_avg, avg)
        pos.take_profit = _reanchor(sig.take_profit, close, old_take, old_avg, avg)
        return True

    def _context(self, pos: Position, price: float, equity: float, quote: float, now: int,
                 stop: float | None, entry: bool = True) -> RiskContext:
        """What the risk engine compares an order against; the bare minimum in backtests (speed)
        and for exits, which are judged on state, position and price only: an exit must never wait
        on (or fail with) the venue's account or spread requests the entry rules need."""
        mon, env = self.monitor, self.env
        if env is None or not entry:
            # Backtests: no other bots, no live market health; positional args (the cheap init).
            if mon is None:
                return RiskContext(self.state_of(self), pos, price, equity, quote, now, 0.0, None, None, None, None,
                                   0, stop)
            m = mon.s
            return RiskContext(self.state_of(self), pos, price, equity, quote, now, abs(pos.quantity) * price,
                               m.last_entry_ms, m.high_water, m.day_open or None, m.week_open or None,
                               m.consecutive_losses, stop)
        m = mon.s if mon is not None else None
        margin = env.margin(self) if self.leverage > 1 else (0.0, 0.0)
        return RiskContext(
            self.state_of(self), pos, price, equity, quote, now,
            bot_exposure_value=abs(pos.quantity) * price,
            last_entry_ms=m.last_entry_ms if m else None,
            high_water=m.high_water if m else None,
            day_open_equity=(m.day_open or None) if m else None,
            week_open_equity=(m.week_open or None) if m else None,
            consecutive_losses=m.consecutive_losses if m else 0,
            stop_price=stop,
            leverage=self.leverage,
            margin_used=margin[0],
            margin_balance=margin[1],
            portfolio=env.portfolio_view(self),
            market=env.market_status(self.symbol, now, self),
            correlation=env.correlation,
        )

    def _entry_quote(self, sig: Signal, price: float, equity: float) -> float:
        p = self.sizing
        atr = None
        if not (p.scale_by_confidence or p.scale_by_drawdown):
            # size_quote's own arithmetic for the two plain kinds, without building its inputs
            if p.kind == "percent_equity":
                return max(0.0, max(0.0, equity) * p.value / 100.0)
            if p.kind == "fixed_quote":
                return max(0.0, p.value)
        if p.kind == "atr" and len(self.history) > p.atr_period:
            from strategy.indicators import atr_last

            h = self.history
            atr = atr_last([c.high for c in h], [c.low for c in h], [c.close for c in h], p.atr_period)
        dd = self.monitor.drawdown_pct(equity) if self.monitor is not None else 0.0
        return size_quote(p, SizingInputs(equity, price, sig.stop_loss, atr, sig.confidence, dd,
                                          self.risk.limits.max_drawdown_pct, self.trade_pnls))

    def _breach(self, breaches: list[Breach]) -> None:
        for b in breaches:
            self._breaches.append(f"{b.rule}: {b.reason}")
            del self._breaches[:-10]
            if self.on_breach is not None:
                self.on_breach(self, b.rule, b.state, b.reason, b.flatten)

    def tighten_limits(self, changes: dict[str, object]) -> None:
        """Lower limits at once (dashboard); raising is refused: it needs a restart with new config."""
        fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in changes.items()}
        self.risk.limits = tighten(self.risk.limits, fixed)
        if self.monitor is not None:
            self.monitor.limits = self.risk.limits

    def risk_view(self, equity: float) -> RiskView:
        lim = self.risk.limits
        exposure = abs(self.position.quantity) * self.last_price
        if self.tracker is not None:
            exposure = sum(h.quantity * self.last_price for h in self.tracker.open)
        pos_caps = [x for x in (lim.max_position_value,
                                None if lim.max_position_pct is None else lim.max_position_pct / 100 * equity) if x]
        return build_risk_view(lim, self.monitor, equity, exposure, min(pos_caps) if pos_caps else None,
                               self.high_water, 0.0, self._breaches, self.venue_margin)

    def _ghost_signal(self, sig: Signal, c: Candle, now: int, sid: str) -> None:
        """Close opposite hypotheticals, then open this signal's own if the risk check allows it."""
        assert self.tracker is not None
        self._book_ghost(self.tracker.close_opposite(sig.side, c.close, now))
        qty = self._entry_quote(sig, c.close, self.equity()) / c.close
        self._seq += 1
        order = Order(client_order_id(self.name, now, _P_ENTRY, self._seq), self.name, self.symbol,
                      sig.side, qty, _P_ENTRY, created_at=now, reason=sig.reason)
        # Each signal is judged alone: an empty position, the bot's hypothetical equity.
        eq = self.equity()
        decision = self.risk.check(order, self._context(Position(self.symbol), c.close, eq, eq, now, sig.stop_loss))
        if decision.allowed and self.monitor is not None:
            self.monitor.on_entry(now)
        note = ""
        if decision.allowed:
            side = PositionSide.LONG if sig.side is _BUY else PositionSide.SHORT
            self.tracker.add(Hypothetical(sid, side.value, qty, c.close, now, sig.stop_loss, sig.take_profit))
        else:
            self.denials[decision.rule] += 1
            note = f"not taken: {decision.detail}"
            self._out.risk.append(RiskDecisionRecord(time=now, allowed=False, rule=decision.rule,
                                                     detail=decision.detail, client_order_id=order.client_order_id,
                                                     purpose=_P_ENTRY.value))
        self._out.signals.append(SignalRecord(
            id=sid, bot=self.name, symbol=self.symbol, time=c.open_time, price=c.close, side=sig.side.value,
            confidence=sig.confidence, reason=sig.reason, stop_loss=sig.stop_loss, take_profit=sig.take_profit,
            acted=decision.allowed, note=note,
        ))

    def _book_ghost(self, closed: list[ClosedSignal]) -> None:
        for cs in closed:
            t = cs.trade
            self.portfolio.quote += t.pnl
            self.portfolio.realized_pnl += t.pnl
            self._record_trade(t, cs.signal_id)

    def _record_trade(self, trade: "Trade", signal_id: str) -> None:
        self.trade_count += 1
        self.wins += trade.pnl > 0
        self.trade_pnls.append(trade.pnl)
        if len(self.trade_pnls) > TRADE_PNLS_KEPT:
            del self.trade_pnls[:-TRADE_PNLS_KEPT]
        if self.monitor is not None:
            self._breach(self.monitor.on_trade_closed(trade.pnl))
        if not self.records:
            self.closed_trades.append(trade)
            return
        self._out.trades.append(TradeRecord.of(trade, signal_id=signal_id))

    def _submit(self, purpose: OrderPurpose, side: Side, qty: float, ref_price: float, now: int, reason: str,
                order_type: OrderType = _MARKET_ORDER, stop: float | None = None) -> bool:
        self._seq += 1
        symbol, pf, records = self.symbol, self.portfolio, self.records
        order = Order(client_order_id(self.name, now, purpose, self._seq), self.name, symbol, side, qty,
                      purpose, order_type, ref_price if order_type is _LIMIT_ORDER else None,
                      self.reduce_only_exits and purpose is not _P_ENTRY, OrderStatus.INTENT, now, reason)
        pos = pf.positions.get(symbol) or self.position
        equity = pf.equity_at(symbol, self.last_price or ref_price)
        decision = self.risk.check(order, self._context(pos, ref_price, equity, pf.quote, now, stop,
                                                        entry=purpose is _P_ENTRY))
        if not decision.allowed:
            order.status = _REJECTED
            self.denials[decision.rule] += 1
            # kept even without records: the signal note quotes the last denial
            self._out.risk.append(RiskDecisionRecord(time=now, allowed=False, rule=decision.rule,
                                                     detail=decision.detail, client_order_id=order.client_order_id,
                                                     purpose=purpose.value))
            if records:
                self._out.orders.append(OrderRecord.of(order))
            else:
                del self._out.risk[:-1]  # only the last denial is read (signal note); bound memory
            return False
        if self.monitor is not None and purpose is _P_ENTRY:
            self.monitor.on_entry(now)
        if records:
            self._out.risk.append(RiskDecisionRecord(time=now, allowed=True, rule=decision.rule,
                                                     detail=decision.detail, client_order_id=order.client_order_id,
                                                     purpose=purpose.value))
        fills = self.executor.execute(order, ref_price, now)
        self.orders_sent += 1
        if records:
            self._out.orders.append(OrderRecord.of(order))
        for f in fills:
            if records:
                self._out.fills.append(FillRecord.of(f))
            trade = pf.apply(f, reason)
            if trade is not None:
                self._record_trade(trade, self.open_signal_id)
                if (pf.positions.get(symbol) or self.position).quantity == 0.0:
                    self.open_signal_id = ""
                    self.hold_candles = 0
        if self.on_dust is not None and purpose is not _P_ENTRY and fills:
            self._write_off_dust(ref_price)
        # A venue may refuse or lose an order the risk engine allowed: only a fill counts.
        return bool(fills)

    def _write_off_dust(self, price: float) -> None:
        """After an exit on a venue, what is left below the minimum notional cannot be sold (lot
        size): it leaves the bot's position and is handed to on_dust (reconciliation baseline)."""
        left = self.position
        if left.is_open and abs(left.quantity) * price < self.risk.limits.min_notional:
            dust = left.quantity
            self.portfolio.positions[self.symbol] = Position(self.symbol)
            self.portfolio.quote += dust * price  # its value stays in equity, as the coins stay held
            assert self.on_dust is not None
            self.on_dust(self.symbol, dust)

    def book_fills(self, fills: list[Fill], reason: str) -> None:
        """Fills found later (recovery of an ambiguous order after a crash): booked like any other."""
        for f in fills:
            if self.records:
                self._out.fills.append(FillRecord.of(f))
            trade = self.portfolio.apply(f, exit_reason=reason)
            if trade is not None:
                self._record_trade(trade, self.open_signal_id)
        self._mark(self.last_candle_time + self.interval_ms)

    def _mark(self, now: int) -> None:
        if not self.records:
            # A backtest computes its equity curve and drawdown itself (backtest.engine); its risk
            # monitor still sees the mark, so loss limits move the state as in paper.
            if self.monitor is not None:
                self._breach(self.monitor.observe(now, self.equity()))
            return
        eq = self.equity()
        if self.monitor is not None:
            self._breach(self.monitor.observe(now, eq))
        self.high_water = max(self.high_water, eq)
        if self.high_water > 0:
            self.max_drawdown_pct = max(self.max_drawdown_pct, 100.0 * (self.high_water - eq) / self.high_water)
        day = datetime.fromtimestamp(now / 1000, tz=timezone.utc).strftime("%Y-%m-%d")
        self.daily_equity[day] = eq
        if len(self.daily_equity) > 400:
            for k in sorted(self.daily_equity)[:-400]:
                del self.daily_equity[k]
        self._out.equity.append(EquityRecord(time=now, equity=eq))

    # ---- outputs ------------------------------------------------------------------------
    def snapshot(self, now_ms: int) -> BotSnapshot:
        marks = {self.symbol: self.last_price}
        pos = self.position
        view = None
        if pos.is_open:
            view = PositionView(
                symbol=self.symbol, side=pos.side.value if pos.side else "", quantity=pos.quantity,
                avg_entry=pos.avg_entry, mark=self.last_price, unrealized_pnl=pos.unrealized_pnl(self.last_price),
                opened_at=pos.opened_at, entry_fees=pos.entry_fees, stop_loss=pos.stop_loss,
                take_profit=pos.take_profit, realized_pnl=pos.realized_pnl,
                tranches=[TrancheView(price=t.price, quantity=t.quantity, time=t.time, fee=t.fee, order_id=t.order_id)
                          for t in pos.held_tranches()],
            )
        signal_stats = None
        if self.mode is Mode.GHOST:
            # Signal quality is for ghost bots only, and recomputed only when a trade closed (this
            # runs on every drain, and the list holds up to TRADE_PNLS_KEPT trades).
            if self._stats[0] != self.trade_count:
                self._stats = (self.trade_count, metrics.trade_stats(self.trade_pnls))
            stats = self._stats[1]
            assert stats is not None
            days = [self.daily_equity[k] for k in sorted(self.daily_equity)]
            rets = [b / a - 1.0 for a, b in zip(days, days[1:]) if a > 0]
            pf = stats.profit_factor
            signal_stats = SignalStats(
                total_signals=self.signals_total, closed=stats.count, accuracy_pct=100.0 * stats.win_rate,
                avg_win=stats.avg_win, avg_loss=stats.avg_loss, expectancy=stats.expectancy,
                profit_factor=None if pf is None or not math.isfinite(pf) else pf,
                max_drawdown_pct=self.max_drawdown_pct, sharpe=_finite(metrics.sharpe(rets)),
            )
        eq = self.equity()
        unrealized = self.portfolio.unrealized(marks)
        if self.tracker is not None:
            unrealized += self.tracker.unrealized(self.last_price)
        return BotSnapshot(
            name=self.name, mode=self.mode.value, symbol=self.symbol, strategy=self.strategy.name,
            updated_at=now_ms, last_candle_time=self.last_candle_time, last_price=self.last_price,
            candles_seen=self.candles_seen, control=ControlRecord.of(self.control),
            effective_state=self.state_of(self), quote_asset=self.portfolio.quote_asset,
            starting_balance=self.portfolio.starting_balance, quote_balance=self.portfolio.quote,
            base_balance=pos.quantity, equity=eq, high_water=self.high_water,
            realized_pnl=self.portfolio.realized_pnl, unrealized_pnl=unrealized,
            fees_paid=self.portfolio.fees_paid, position=view, trade_count=self.trade_count, wins=self.wins,
            win_rate_pct=100.0 * self.wins / self.trade_count if self.trade_count else 0.0,
            trade_pnls=self.trade_pnls, signal_stats=signal_stats, last_signal=self.last_signal,
            denials=dict(self.denials), orders_sent=self.orders_sent, max_drawdown_pct=self.max_drawdown_pct,
            daily_equity=self.daily_equity, signals_total=self.signals_total, hold_candles=self.hold_candles,
            open_signal_id=self.open_signal_id, entry_fees_open=pos.entry_fees,
            open_signals=self.tracker.dump() if self.tracker is not None else [],
            risk=self.risk_view(eq),
        )

    def drain(self, now_ms: int) -> BotUpdate:
        out = self._out
        out.snapshot = self.snapshot(now_ms)
        self._out = BotUpdate(snapshot=None)  # type: ignore[arg-type]
        return out

    def restore(self, snap: BotSnapshot) -> None:
        """Continue from a persisted snapshot (after a restart or a crash)."""
        pf = self.portfolio
        pf.quote = snap.quote_balance
        pf.realized_pnl = snap.realized_pnl
        pf.fees_paid = snap.fees_paid
        pf.positions.clear()
        if snap.position is not None:
            p = snap.position
            # Older snapshots have no tranches: the position then stands as one (held_tranches).
            pf.positions[self.symbol] = Position(
                self.symbol, p.quantity, p.avg_entry, p.opened_at, p.entry_fees, p.stop_loss, p.take_profit,
                [Tranche(t.price, t.quantity, t.time, t.fee, t.order_id) for t in p.tranches], p.realized_pnl)
        self.last_price = snap.last_price
        self.last_candle_time = snap.last_candle_time
        self.candles_seen = snap.candles_seen
        self.trade_count, self.wins = snap.trade_count, snap.wins
        self.trade_pnls = list(snap.trade_pnls)
        self.high_water = snap.high_water or pf.starting_balance
        self.max_drawdown_pct = snap.max_drawdown_pct
        self.daily_equity = dict(snap.daily_equity)
        self.signals_total = snap.signals_total
        self.hold_candles = snap.hold_candles
        self.open_signal_id = snap.open_signal_id
        self.last_signal = snap.last_signal
        self.denials = Counter(snap.denials)
        self.orders_sent = snap.orders_sent
        if self.tracker is not None:
            self.tracker.load(snap.open_signals)
        if self.monitor is not None:
            self.monitor.load(snap.risk.monitor)
        self._breaches = list(snap.risk.breaches)
