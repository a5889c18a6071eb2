"""A signal bot's snapshot and its restore: what the dashboard reads and a restart continues from
(position with its tranches, counters, ghost signals, protective orders' booked trades). Mixed into
``engine.bot.Bot``; the shared part (books, balances, limits) is ``engine.ledger``'s."""
from __future__ import annotations

from typing import Any

from core.types import Position, Tranche
from state.models import BotSnapshot, PositionView, TrancheView


class BotState:
    """Snapshot and restore of a signal bot (a mixin: the attributes are the bot's)."""

    _protective_saved: Any

    def snapshot(self, now_ms: int) -> BotSnapshot:
        pos = self.position
        price = self.last_price
        view = None
        if pos.is_open:
            view = PositionView(
                symbol=self.symbol, side=pos.side.value if pos.side else "", quantity=pos.quantity,
                avg_entry=pos.avg_entry, mark=price, unrealized_pnl=pos.unrealized_pnl(price),
                opened_at=pos.opened_at, entry_fees=pos.entry_fees, stop_loss=pos.stop_loss,
                take_profit=pos.take_profit, realized_pnl=pos.realized_pnl,
                tranches=[TrancheView(price=t.price, quantity=t.quantity, time=t.time, fee=t.fee, order_id=t.order_id)
                          for t in pos.held_tranches()],
            )
        eq = self.equity()
        lim = self.risk.limits
        exposure = abs(pos.quantity) * price
        unrealized = self.portfolio.unrealized({self.symbol: price})
        if self.ghost is not None:
            exposure = sum(h.quantity * price for h in self.ghost.tracker.open)
            unrealized += self.ghost.tracker.unrealized(price)
        caps = [x for x in (lim.max_position_value,
                            None if lim.max_position_pct is None else lim.max_position_pct / 100 * eq) if x]
        return self.base_snapshot(
            now_ms, eq, exposure, min(caps) if caps else None,
            symbol=self.symbol, strategy=self.strategy.name, last_price=price, candles_seen=self.candles_seen,
            base_balance=pos.quantity, unrealized_pnl=unrealized, position=view,
            signal_stats=self.ghost.stats() if self.ghost is not None else None, last_signal=self.last_signal,
            signals_total=self.signals_total, hold_candles=self.hold_candles, open_signal_id=self.open_signal_id,
            entry_fees_open=pos.entry_fees, regime=self.policy.regime, regime_history=list(self.policy.regimes),
            open_signals=self.ghost.tracker.dump() if self.ghost is not None else [],
            **({"protection": self.guard.view(), "protective_booked": self.guard.dump()} if self.guard is not None
               else {}),
        )

    def restore(self, snap: BotSnapshot) -> None:
        """Continue from a persisted snapshot (after a restart or a crash)."""
        self.restore_books(snap)
        pf = self.portfolio
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
        self.signals_total = snap.signals_total
        self.hold_candles = snap.hold_candles
        self.open_signal_id = snap.open_signal_id
        self.last_signal = snap.last_signal
        if self.ghost is not None:
            self.ghost.tracker.load(snap.open_signals)
        self._protective_saved = dict(snap.protective_booked)
