"""A ghost bot's signals: every signal becomes its own hypothetical trade (``executors.ghost.
SignalTracker``), judged by the risk engine as if it were the only one, and closed on its own terms;
the statistics describe the signals (accuracy, expectancy, profit factor, drawdown, Sharpe)."""
from __future__ import annotations

import math
from typing import Protocol

from core import metrics
from core.ids import client_order_id
from core.portfolio import Portfolio
from core.types import (
    Candle,
    Order,
    OrderPurpose,
    Position,
    PositionSide,
    Side,
    Signal,
    Trade,
)
from engine.ledger import finite
from executors.ghost import ClosedSignal, Hypothetical, SignalTracker
from risk.engine import RiskContext
from state.models import SignalRecord, SignalStats
from state.models import BotUpdate

_ENTRY = OrderPurpose.ENTRY


class GhostHost(Protocol):
    """What of its signal bot (``engine.bot.Bot``, a ``Ledger``) a ghost's signals use."""

    name: str
    symbol: str
    records: bool
    signals_total: int
    signal_log: list[tuple[int, Side, bool]]
    portfolio: Portfolio
    trade_count: int
    trade_pnls: list[float]
    daily_equity: dict[str, float]
    max_drawdown_pct: float
    last_denial: str
    _seq: int
    _out: BotUpdate

    def equity(self) -> float: ...

    def entry_quote(self, sig: Signal, price: float, equity: float) -> float: ...

    def context(self, symbol: str, pos: Position, price: float, equity: float, quote: float, now: int,
                stop: float | None, exposure: float, entry: bool, last_entry: bool = True) -> RiskContext: ...

    def decide(self, order: Order, ctx: RiskContext, order_record: bool = True, count_entry: bool = True) -> bool: ...

    def record_trade(self, trade: Trade, tag: str) -> None: ...


class GhostSignals:
    def __init__(self, bot: GhostHost, horizon_candles: int | None) -> None:
        self.bot = bot
        self.tracker = SignalTracker(bot.name, bot.symbol, horizon_candles)
        self._stats: tuple[int, metrics.TradeStats | None] = (-1, None)

    def on_candle(self, c: Candle, now: int) -> None:
        self._book(self.tracker.on_candle(c, now))

    def close_all(self, price: float, now: int, reason: str) -> None:
        self._book(self.tracker.close_all(price, now, reason))

    def on_signal(self, sig: Signal, c: Candle, now: int, sid: str) -> None:
        """Close opposite hypotheticals, then open this signal's own if the risk check allows it."""
        bot = self.bot
        self._book(self.tracker.close_opposite(sig.side, c.close, now))
        eq = bot.equity()
        qty = bot.entry_quote(sig, c.close, eq) / c.close
        bot._seq += 1
        order = Order(client_order_id(bot.name, now, _ENTRY, bot._seq), bot.name, bot.symbol, sig.side, qty, _ENTRY,
                      created_at=now, reason=sig.reason)
        # Each signal is judged alone: an empty position, the bot's hypothetical equity.
        ctx = bot.context(bot.symbol, Position(bot.symbol), c.close, eq, eq, now, sig.stop_loss, 0.0, True)
        allowed = bot.decide(order, ctx, order_record=False)
        if allowed:
            side = PositionSide.LONG if sig.side is Side.BUY else PositionSide.SHORT
            self.tracker.add(Hypothetical(sid, side.value, qty, c.close, now, sig.stop_loss, sig.take_profit))
        if not bot.records:
            bot.signal_log.append((c.open_time, sig.side, allowed))
            return
        bot._out.signals.append(SignalRecord(
            id=sid, bot=bot.name, symbol=bot.symbol, time=c.open_time, price=c.close, side=sig.side.value,
            confidence=sig.confidence, reason=sig.reason, stop_loss=sig.stop_loss, take_profit=sig.take_profit,
            acted=allowed, note="" if allowed else f"not taken: {bot.last_denial}",
        ))

    def _book(self, closed: list[ClosedSignal]) -> None:
        bot = self.bot
        for cs in closed:
            t = cs.trade
            bot.portfolio.quote += t.pnl
            bot.portfolio.realized_pnl += t.pnl
            bot.record_trade(t, cs.signal_id)

    def stats(self) -> SignalStats:
        """Signal quality; recomputed only when a trade closed (this runs on every drain, and the
        list holds up to TRADE_PNLS_KEPT trades)."""
        bot = self.bot
        if self._stats[0] != bot.trade_count:
            self._stats = (bot.trade_count, metrics.trade_stats(bot.trade_pnls))
        stats = self._stats[1]
        assert stats is not None
        days = [bot.daily_equity[k] for k in sorted(bot.daily_equity)]
        rets = [b / a - 1.0 for a, b in zip(days, days[1:]) if a > 0]
        pf = stats.profit_factor
        return SignalStats(
            total_signals=bot.signals_total, closed=stats.count, accuracy_pct=100.0 * stats.win_rate,
            avg_win=stats.avg_win, avg_loss=stats.avg_loss, expectancy=stats.expectancy,
            profit_factor=pf if pf is not None and math.isfinite(pf) else None, max_drawdown_pct=bot.max_drawdown_pct,
            sharpe=finite(metrics.sharpe(rets)),
        )
