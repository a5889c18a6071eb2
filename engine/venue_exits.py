"""The signal bot's side of protective orders resting on the venue (``executors.protection``):
asking what they did and booking it as the exit it is, keeping them in step with the position
(through the risk engine), and resuming them after a restart. Mixed into ``engine.bot.Bot``; it
uses the bot's ledger (``book``, ``context``, ``decide``, ``mark``) and its ``guard``."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from core.types import Candle, Fill, Order, OrderPurpose, OrderStatus, OrderType, Side

if TYPE_CHECKING:
    from executors.protection import VenueProtection

log = logging.getLogger("engine.bot")
VENUE_CHECK_EVERY = 10  # candles: a protective order is asked for at least this often (besides events, levels)


class VenueExits:
    """Protective-order steps of a signal bot (a mixin: the attributes are the bot's)."""

    guard: "VenueProtection | None"
    _protective_saved: Any

    def _book_venue_exits(self, got: "list[tuple[Fill, str]]") -> bool:
        """Book what a protective order executed on the venue, as the exit it is."""
        for fill, reason in got:
            if self.book(fill, reason, self.open_signal_id) is not None and self.position.quantity == 0.0:
                self.open_signal_id = ""
                self.hold_candles = 0
            log.warning("bot %s: %s %s %.8g %s at %.8g", self.name, reason, fill.side.value, fill.quantity,
                        fill.symbol, fill.price)
        if got:
            self._write_off_dust(got[-1][0].price)
        return bool(got)

    def _venue_exits(self, c: Candle | None) -> bool:
        """Ask the venue what the protective orders did — after a user-data event, when the candle
        reached one of their levels, every few candles otherwise — and book it. True if booked."""
        g = self.guard
        if g is None or not g.active:
            return False
        if c is not None and not g.dirty and not g.reached(c.low, c.high) and self.candles_seen % VENUE_CHECK_EVERY:
            return False
        try:
            return self._book_venue_exits(g.check())
        except Exception as exc:  # noqa: BLE001 - venue trouble: the next candle asks again
            log.warning("bot %s: protective orders not checked: %s", self.name, exc)
            return False

    def _protect(self, now: int) -> None:
        """Keep the venue's protective orders in step with the position (after every step): placed
        when a position opens, replaced when its quantity or levels change, cancelled when it is
        flat. A placement is an exit order: the risk engine decides it first, before anything that
        rests is cancelled (a HALTED bot keeps what protects it)."""
        g = self.guard
        if g is None:
            return
        try:
            pos = self.position
            want = g.wanted(pos.quantity, pos.stop_loss, pos.take_profit)
            if g.matches(want) or not g.due(self.candles_seen, want):
                return
            if want is not None:
                first = want.orders[0]
                order = Order(f"{self.name}:protect", self.name, self.symbol, Side(first.side), abs(pos.quantity),
                              OrderPurpose.EXIT, OrderType.LIMIT, float(first.stop_price or 0), self.reduce_only_exits,
                              OrderStatus.INTENT, now, "protective order")
                equity = self.portfolio.equity_at(self.symbol, self.last_price)
                ctx = self.context(self.symbol, pos, self.last_price, equity, self.portfolio.quote, now, None,
                                   abs(pos.quantity) * self.last_price, False)
                if not self.decide(order, ctx, order_record=False):
                    g.problem = f"risk: {self.last_denial}"
                    return
            if g.active:
                if self._book_venue_exits(g.release()):
                    pos = self.position
                    want = g.wanted(pos.quantity, pos.stop_loss, pos.take_profit)
                if g.active:
                    return  # not cancelled (venue unreachable): the next step tries again
            if want is None:
                g.problem = ""
                return
            g.place(want, now, self.candles_seen)
        except Exception as exc:  # noqa: BLE001 - exchangeInfo or the venue unreachable: the next step tries again
            g.problem = f"{type(exc).__name__}: {exc}"
            log.warning("bot %s: protective orders not kept in step: %s", self.name, exc)

    def sync_venue(self) -> bool:
        """Between candles (the worker's fills loop, woken by a user-data event): book what the
        protective orders executed, at once. True when something was booked."""
        g = self.guard
        if g is None or not g.dirty:
            return False
        now = self.last_candle_time + self.interval_ms
        if not self._venue_exits(None):
            return False
        self._protect(now)
        self._mark(now)
        return True

    def resume_protection(self) -> None:
        """At start, after the books are restored: the protective orders the books knew of asked for
        again (a stop that fired on the venue while the worker was down is booked now, once), then
        kept in step with the position."""
        g = self.guard
        if g is None:
            return
        now = self.last_candle_time + self.interval_ms
        self._book_venue_exits(g.load(self._protective_saved, self.saved_at))
        self._protect(now)
        if self.last_candle_time:  # a fresh bot has no market time yet: its first equity point comes with a candle
            self._mark(now)

