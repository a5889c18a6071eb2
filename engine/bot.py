"""A signal bot: strategy + risk + executor + portfolio, fed one closed candle at a time.

The same class runs in ghost, paper, live and backtest; only the executor and the feed differ.
Per candle: the position's exits (stop, take-profit, time horizon), then the strategy's signal
(an exit on the opposite signal, an entry, or a tranche added to the position), then the mark.
Every order, exits and flattening included, goes through the risk engine (``engine.ledger``
holds that bookkeeping, shared with DCA bots). Ghost bots follow every signal as its own
hypothetical trade (``engine.ghost``).
"""
from __future__ import annotations

import hashlib
import logging
from collections import deque
from typing import TYPE_CHECKING

from core.exits import ExitCheck, touch_exit_check
from core.ids import client_order_id
from core.portfolio import Portfolio
from core.types import (
    INTERVAL_MS,
    NO_SIGNAL,
    Candle,
    Fill,
    Mode,
    Order,
    OrderPurpose,
    OrderStatus,
    OrderType,
    Position,
    Side,
    Signal,
)
from engine.exits import PositionExits
from engine.ghost import GhostSignals
from engine.ledger import Ledger, RiskEnv, StateOf
from engine.signal_policy import SignalPolicy
from engine.bot_state import BotState
from engine.venue_exits import VenueExits
from risk.engine import RiskEngine
from risk.monitor import RiskMonitor
from risk.sizing import SizingInputs, SizingPolicy, size_quote
from state.models import SignalRecord
from strategy.base import Strategy, history_window
from strategy.incremental import stepper_for

if TYPE_CHECKING:
    from executors.base import Executor
    from executors.protection import VenueProtection
    from strategy.incremental import Stepper

log = logging.getLogger(__name__)

# Enum members looked up once: on Python 3.11 each `Side.BUY` costs ~100 ns, many times per order.
_BUY = Side.BUY
_SELL = Side.SELL
_NONE = Side.NONE
_P_ENTRY = OrderPurpose.ENTRY
_P_EXIT = OrderPurpose.EXIT
_P_FLATTEN = OrderPurpose.FLATTEN
_MARKET_ORDER = OrderType.MARKET
_LIMIT_ORDER = OrderType.LIMIT


def _reanchor(level: float | None, ref: float, old_level: float | None, old_avg: float,
              avg: float) -> float | None:
    """A protective level moved to a new average entry, keeping its relative distance."""
    if level is not None and ref > 0:
        return avg * level / ref
    if old_level is not None and old_avg > 0:
        return avg * old_level / old_avg
    return None


class Bot(BotState, VenueExits, Ledger):
    def __init__(
        self,
        name: str,
        mode: Mode,
        symbol: str,
        strategy: Strategy,
        executor: "Executor",
        risk: RiskEngine,
        portfolio: Portfolio,
        sizing: "tuple[str, float] | SizingPolicy",
        state_of: StateOf,
        allow_short: bool = False,
        max_hold_candles: int | None = None,
        interval: str = "1m",
        exit_check: ExitCheck = touch_exit_check,
        records: bool = True,
        monitor: RiskMonitor | None = None,
        env: RiskEnv | None = None,
        max_tranches: int = 1,
        policy: SignalPolicy | None = None,
        exits: PositionExits | None = None,
    ) -> None:
        if max_tranches < 1:
            raise ValueError(f"bot {name}: max_tranches must be >= 1, got {max_tranches}")
        super().__init__(name, mode, portfolio, risk, executor, state_of, monitor, env, records)
        self.symbol = symbol
        self.strategy = strategy
        self.sizing = sizing if isinstance(sizing, SizingPolicy) else SizingPolicy(kind=sizing[0], value=sizing[1])
        self.allow_short = allow_short
        # Entries a position may hold: 1 ignores a same-direction signal while in a position;
        # more lets each such signal add a tranche (ghost bots follow every signal anyway).
        self.max_tranches = max_tranches
        self.max_hold_candles = max_hold_candles
        self.interval_ms = INTERVAL_MS[interval]
        self.exit_check = exit_check
        self.signal_log: list[tuple[int, Side, bool]] = []  # backtests: (candle open_time, side, acted)
        self.history: deque[Candle] = deque(maxlen=history_window(strategy))
        self.stepper = stepper_for(strategy)  # opt-in running indicators (strategy.incremental), else evaluate()
        self.last_price = 0.0
        self.last_candle_time = 0
        self.candles_seen = 0
        self.hold_candles = 0
        self.open_signal_id = ""
        self._last_signal: "str | tuple[Side, float, str]" = ""  # formatted on read (see last_signal)
        self.signals_total = 0
        # Ghost bots follow every signal as its own hypothetical trade instead of one position.
        self.ghost = GhostSignals(self, max_hold_candles) if mode is Mode.GHOST else None
        # Venue bots: the position's stop and take-profit also rest on the exchange (set by the assembly)
        self.guard: "VenueProtection | None" = None
        self._protective_saved: dict[str, list[int]] = {}  # from the restored snapshot, for resume_protection
        self.policy = policy or SignalPolicy()  # confirmation and temperature (engine.signal_policy)
        self.exits = exits or PositionExits(None, exit_check)  # ATR / trailing / scale-out exits (engine.exits)

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
        self.apply(c, self._policy_signal(c, self.stepper), now)

    def _policy_signal(self, c: Candle, step: "Stepper | None") -> Signal:
        """The strategy's signal on the history (ending with closed candle ``c``), through the signal policy."""
        if len(self.history) < self.strategy.warmup:
            return NO_SIGNAL
        # a stepper proves NONE without building the reference's Signal, so no ``bias``: a policy
        # that confirms runs on the bias reads every signal from evaluate()
        if step is not None and step.strategy is self.strategy and self.policy.plain:
            sig = step.signal(self.history)
        else:
            sig = self.strategy.evaluate(tuple(self.history))
        sig = self.policy.observe(sig, c, self.trade_pnls)
        self.policy.tighten(self.portfolio.positions.get(self.symbol), self.trade_pnls)
        return sig

    def on_event(self, c: Candle, sig: Signal, skipped: int = 0, evaluate: bool = False) -> None:
        """The backtester's fast path: candle ``c`` with its strategy signal computed beforehand
        (vectorised, proven equal to evaluate() on each closed prefix). ``skipped`` candles since
        the last call produced no signal and no exit, so only counters move for them. The order
        path (exits, risk, executor, portfolio) is the one on_candle() runs. History is not kept
        by the bot: with ``evaluate`` the caller has put the closed candles up to ``c`` in
        ``history`` and ``sig`` is ignored: the strategy's evaluate() and the signal policy run as in
        on_candle() (the fast path's visits for a confirming / temperature policy, backtest.fast_visits).
        """
        if c.open_time <= self.last_candle_time:
            return
        self.candles_seen += skipped
        if skipped and (self.portfolio.positions.get(self.symbol) or self.position).quantity != 0.0:
            self.hold_candles += skipped
        now = self._open_bar(c)
        self.apply(c, self._policy_signal(c, None) if evaluate else sig, now)

    def _open_bar(self, c: Candle) -> int:
        """Advance to closed candle c and run the position's exits; returns the bot's 'now'."""
        self.last_price = c.close
        self.last_candle_time = c.open_time
        self.candles_seen += 1
        self._seq = 0
        now = c.open_time + self.interval_ms  # the candle's close: the bot's 'now'
        if self.ghost is not None:
            self.ghost.on_candle(c, now)
        elif (self.portfolio.positions.get(self.symbol) or self.position).quantity != 0.0:
            self.hold_candles += 1
            if self.guard is not None:
                self._venue_exits(c)  # what the venue's stop or take-profit did comes first
            if self.position.quantity != 0.0:
                self._check_exits(c, now)
        if self.funding_model is not None:
            self.settle_funding(self.symbol, now, c.close)  # after the intrabar exits, before the close's orders
        return now

    def apply(self, c: Candle, sig: Signal, now: int) -> None:
        """Act on the strategy's signal for candle c (after its exits), then mark equity."""
        if sig.side is not _NONE:
            self._on_signal(sig, c, now)
        if self.guard is not None:
            self._protect(now)
        self._mark(now)

    def flatten(self, reason: str) -> bool:
        """Close the position at market (allowed by the state, checked by risk). True if flat after."""
        now = self.last_candle_time + self.interval_ms
        if self.ghost is not None:
            self.ghost.close_all(self.last_price, now, reason)
            self._mark(now)
            return True
        pos = self.position
        if not pos.is_open or self.last_price <= 0:
            return True
        side = _SELL if pos.quantity > 0 else _BUY
        self._submit(_P_FLATTEN, side, abs(pos.quantity), self.last_price, now, reason)
        if self.guard is not None:
            self._protect(now)  # a flatten the venue refused leaves the position protected
        self._mark(now)
        return not self.position.is_open

    def act_on(self, sig: Signal, sid: str) -> str:
        """A signal from outside the candles (a webhook alert): acted on at once, at the last price, through
        the same path as a candle's signal (exits, tranches, risk, executor). Returns the signal's note."""
        last = self.history[-1] if self.history else None
        if last is None or self.last_price <= 0:
            raise ValueError(f"{self.name} has no market price yet")
        now = self.last_candle_time + self.interval_ms
        # Its orders' client ids come from the alert's own id, so the same alert can never become two
        # orders (across a restart as well), and two alerts in one candle never share an id.
        self._seq = 1000 + int(hashlib.sha1(sid.encode()).hexdigest()[:8], 16) % 9_000_000
        self._on_signal(sig, last, now, sid)
        if self.guard is not None:
            self._protect(now)
        self._mark(now)
        recs = self._out.signals
        return recs[-1].note if recs else ""

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
        if self.ghost is not None:
            n = len(self.ghost.tracker.open)
            return f"{n} hypothetical signal trade(s)" if n else ""
        pos = self.position
        return f"{pos.quantity:+.6g} {self.symbol}" if pos.is_open else ""

    def equity(self) -> float:
        eq = self.portfolio.equity_at(self.symbol, self.last_price)
        return eq + (self.ghost.tracker.unrealized(self.last_price) if self.ghost is not None else 0.0)

    def _check_exits(self, c: Candle, now: int) -> None:
        pos = self.portfolio.positions.get(self.symbol) or self.position
        long = pos.quantity > 0
        exit_side = _SELL if long else _BUY
        if self.exits.active(pos):
            self.exits.check(c, pos, lambda q, p, why, ot: self._submit(_P_EXIT, exit_side, q, p, now, why, ot))
            hit, pos = None, self.position
        else:
            hit = self.exit_check(c, long, pos.stop_loss, pos.take_profit)
        if hit is not None:
            reason, price, order_type = hit
            self._submit(_P_EXIT, exit_side, abs(pos.quantity), price, now, reason, order_type)
        elif self.max_hold_candles and self.hold_candles >= self.max_hold_candles and pos.quantity != 0.0:
            self._submit(_P_EXIT, exit_side, abs(pos.quantity), c.close, now, "time_horizon")

    def _on_signal(self, sig: Signal, c: Candle, now: int, sid: str = "") -> None:
        self.signals_total += 1
        side, close = sig.side, c.close
        self._last_signal = (side, close, sig.reason)
        sid = sid or f"{self.name}:{c.open_time}"
        if self.ghost is not None:
            self.ghost.on_signal(sig, c, now, sid)
            return
        notes: list[str] = []
        acted = False
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
                notes.append(f"add denied: {self.last_denial}")
        elif side is _SELL and not self.allow_short:
            notes.append("spot: no short entries")
        else:
            equity = self.portfolio.equity_at(symbol, close)
            qty = self.entry_quote(sig, close, equity) / close * self.policy.size_scale(sig)
            if self._submit(_P_ENTRY, side, qty, close, now, sig.reason, stop=self.exits.entry_stop(sig, close,
                                                                                                 self.history)):
                acted = True
                pos = positions.get(symbol) or self.position
                pos.stop_loss, pos.take_profit = sig.stop_loss, sig.take_profit
                self.exits.opened(pos, self.history)
                self.policy.opened(sig, close, pos)
                self.hold_candles = 0
                self.open_signal_id = sid
            else:
                notes.append(f"entry denied: {self.last_denial}")
        self._record_signal(sig, c, acted, "; ".join(notes), sid)

    def _record_signal(self, sig: Signal, c: Candle, acted: bool, note: str, sid: str) -> None:
        if not self.records:
            self.signal_log.append((c.open_time, sig.side, acted))
            return
        self._out.signals.append(SignalRecord(
            id=sid, bot=self.name, symbol=self.symbol, time=c.open_time, price=c.close,
            side=sig.side.value, confidence=sig.confidence, reason=sig.reason, stop_loss=sig.stop_loss,
            take_profit=sig.take_profit, acted=acted, note=note, temperature=sig.temperature, regime=sig.regime,
        ))

    def _add_tranche(self, sig: Signal, c: Candle, now: int, pos: Position) -> bool:
        """Add to the open position on a same-direction signal: sized by the sizing policy and
        checked by the risk engine like any entry. On a fill the stop-loss and take-profit are
        re-anchored to the new average entry at the same relative distance: the add signal's
        own (level / its close) when it gives one, else the position's (level / old average).
        The time horizon and the opening signal id stay those of the first tranche."""
        close = c.close
        old_avg, old_stop, old_take = pos.avg_entry, pos.stop_loss, pos.take_profit
        qty = self.entry_quote(sig, close, self.portfolio.equity_at(self.symbol, close)) / close
        if not self._submit(_P_ENTRY, sig.side, qty, close, now, sig.reason, stop=sig.stop_loss):
            return False
        pos = self.position
        avg = pos.avg_entry
        pos.stop_loss = _reanchor(sig.stop_loss, close, old_stop, old_avg, avg)
        pos.take_profit = _reanchor(sig.take_profit, close, old_take, old_avg, avg)
        return True

    def entry_quote(self, sig: Signal, price: float, equity: float) -> float:
        """The quote an entry on ``sig`` uses under the bot's sizing policy (before the risk caps)."""
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

    def _submit(self, purpose: OrderPurpose, side: Side, qty: float, ref_price: float, now: int, reason: str,
                order_type: OrderType = _MARKET_ORDER, stop: float | None = None) -> bool:
        """One order: risk check, executor, portfolio. True if anything filled."""
        symbol, pf = self.symbol, self.portfolio
        if purpose is _P_EXIT and self._refused and self.exit_waits(symbol):
            return False  # the venue refused the last exits: wait before the next attempt
        if purpose is not _P_ENTRY and self.guard is not None and self.guard.active:
            # The venue's protective orders go first (they hold the coins, and two exits must never
            # both close one position): what they executed meanwhile is booked, the rest is exited.
            if self._book_venue_exits(self.guard.release()):
                left = pf.positions.get(symbol) or self.position
                if left.quantity == 0.0:
                    return True
                qty = min(qty, abs(left.quantity))
        self._seq += 1
        order = Order(client_order_id(self.name, now, purpose, self._seq), self.name, symbol, side, qty,
                      purpose, order_type, ref_price if order_type is _LIMIT_ORDER else None,
                      self.reduce_only_exits and purpose is not _P_ENTRY, OrderStatus.INTENT, now, reason)
        pos = pf.positions.get(symbol) or self.position
        equity = pf.equity_at(symbol, self.last_price or ref_price)
        ctx = self.context(symbol, pos, ref_price, equity, pf.quote, now, stop, abs(pos.quantity) * ref_price,
                           purpose is _P_ENTRY)
        if not self.decide(order, ctx):
            return False
        fills = self.executor.execute(order, ref_price, now)
        if not fills:
            self._why_not = f"not filled: {order.reason or order.status.value}"
        self.orders_sent += 1
        self.record_order(order)
        if purpose is not _P_ENTRY:
            self.exit_outcome(symbol, order, bool(fills))
        for f in fills:
            if self.book(f, reason, self.open_signal_id) is not None and (
                    pf.positions.get(symbol) or self.position).quantity == 0.0:
                self.open_signal_id = ""
                self.hold_candles = 0
        if purpose is not _P_ENTRY and fills:
            self._write_off_dust(ref_price)
        # A venue may refuse or lose an order the risk engine allowed: only a fill counts.
        return bool(fills)

    def _write_off_dust(self, price: float) -> None:
        """After an exit on a venue: a rest below the minimum notional (a lot size would not let us
        sell it) is written off as the user's holding."""
        left = self.position
        if self.dust_key is not None and left.is_open and abs(left.quantity) * price < self.risk.limits.min_notional:
            self.write_off(self.symbol, price)

    def book_fills(self, fills: list[Fill], reason: str) -> None:
        """Fills found later (recovery of an ambiguous order after a crash): booked like any other."""
        for f in fills:
            self.book(f, reason, self.open_signal_id)
        self._mark(self.last_candle_time + self.interval_ms)

    def _mark(self, now: int) -> None:
        self.mark(now, self.equity())
