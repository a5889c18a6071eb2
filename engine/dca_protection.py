"""A live DCA deal's stop-loss resting on the venue (``executors.protection``), so the deal is not
naked while the worker is down: on USD-M, a STOP_MARKET reduce-only for the deal's quantity at the
deal's stop price, on the Algo service, one guard per pair. Mixed into ``engine.dca_bot.DcaBot``.

* **In step with the deal** (``_protect_deal``, after every step): placed when a deal with a stop
  opens, re-placed when a safety fill (or a take-profit step) changes the quantity or moves the
  stop measured from the average, cancelled when the deal ends. A placement is an exit order: the
  risk engine decides it first, before anything that rests is cancelled.
* **Released before the bot's own exit** (``_release_stop``, from ``_close_market``: software stop,
  trailing take-profit, flatten, kill switches): what the stop executed meanwhile is booked first.
* **A stop that fired closes the deal** (``_book_stop_fills``): booked once as the deal's stop exit
  (the trade ids booked are saved with the books), the deal's take-profit and safety orders cancelled.
* **After a restart** the guards are loaded from the saved books when the supervisor starts the bot
  (``resume_protection``; else at its first step or command): a stop that fired while the worker was
  down is booked then, once.

A stop with ``stop_loss_timeout_candles`` is left to the bot (a venue stop cannot wait N candles).
Spot deals have no venue stop (their base is locked in the take-profit sell): see docs/operations.md.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from core.types import Candle, Fill, Order, OrderPurpose, OrderStatus, OrderType, Side, TradingState
from engine.deal import Deal, DealStatus
from risk.monitor import Breach

if TYPE_CHECKING:
    from executors.protection import VenueProtection, Wanted

log = logging.getLogger("engine.dca_bot")
VENUE_CHECK_EVERY = 10  # candles: a resting stop is asked for at least this often (besides events, its level)


class DcaProtection:
    """Venue-stop steps of a DCA bot (a mixin: the other attributes are the bot's)."""

    guards: "dict[str, VenueProtection]"  # pair -> its deal's resting stop (USD-M venue bots only)
    _protective_saved: dict[str, dict[str, list[int]]]
    _guards_loaded: bool
    deals: dict[str, Deal]
    candles_seen: int
    saved_at: Any

    def _stop_wanted(self, g: "VenueProtection", deal: Deal | None) -> "Wanted | None":
        if deal is None or not deal.active or deal.quantity <= 0 or deal.stop_price is None:
            return None
        if int(deal.config.get("stop_loss_timeout_candles") or 0):  # type: ignore[arg-type]
            return None  # the bot waits N candles through its stop: the venue cannot
        return g.wanted(deal.quantity if deal.long else -deal.quantity, deal.stop_price, None)

    def resume_protection(self) -> None:
        """Once after a start (engine.supervisor calls it before the bot trades; the first step or command
        otherwise): the stops the saved books knew of (and any recorded after them) asked for again; what
        fired while the worker was down is booked now, once."""
        if self._guards_loaded:
            return
        self._guards_loaded = True
        now = self.last_candle_time + self.interval_ms  # type: ignore[attr-defined]
        for symbol, g in self.guards.items():
            try:
                got = g.load(self._protective_saved.get(symbol, {}), self.saved_at)
            except Exception as exc:  # noqa: BLE001 - the venue unreachable: its periodic check asks again
                g.dirty = True
                log.warning("bot %s: resting stop of %s not loaded: %s", self.name, symbol, exc)  # type: ignore[attr-defined]
                continue
            self._book_stop_fills(symbol, got, now)

    def _venue_stop(self, symbol: str, c: Candle | None, now: int) -> bool:
        """Ask the venue what the deal's stop did — after a user-data event or when a reconciliation
        disagrees (both mark it dirty), when the candle reached its level, every few candles — and book
        it. True if booked. ``c`` None: a sync between candles, which asks only when it is dirty."""
        g = self.guards.get(symbol)
        if g is None or not g.active:
            return False
        if not g.dirty and (c is None or (not g.reached(c.low, c.high) and self.candles_seen % VENUE_CHECK_EVERY)):
            return False
        try:
            return self._book_stop_fills(symbol, g.check(), now)
        except Exception as exc:  # noqa: BLE001 - venue trouble: the next step asks again
            g.dirty = True
            log.warning("bot %s: resting stop of %s not checked: %s", self.name, symbol, exc)  # type: ignore[attr-defined]
            return False

    def _release_stop(self, deal: Deal, now: int) -> None:
        """Before an exit of the bot's own: the venue's stop is cancelled and what it executed booked."""
        self.resume_protection()  # a command before the first step after a start: the stop the books knew of
        g = self.guards.get(deal.symbol)
        if g is not None and g.active:
            self._book_stop_fills(deal.symbol, g.release(), now)

    def _book_stop_fills(self, symbol: str, got: "list[tuple[Fill, str]]", now: int) -> bool:
        """Book what the venue's stop executed as the deal's stop exit; a deal it emptied is closed
        (its resting take-profit and safety orders cancelled)."""
        if not got:
            return False
        deal = self.deals.get(symbol)
        for fill, reason in got:
            log.warning("bot %s: %s %s %.8g %s at %.8g", self.name, reason, fill.side.value,  # type: ignore[attr-defined]
                        fill.quantity, fill.symbol, fill.price)
            if deal is None or not deal.active:
                self.book(fill, f"{reason} after its deal ended", "")  # type: ignore[attr-defined]
                continue
            trade = self.book(fill, reason, deal.id)  # type: ignore[attr-defined]
            if trade is not None:
                deal.realized_pnl += trade.pnl
            deal.reduce(fill.quantity)
        if deal is not None and deal.active and (
                deal.quantity <= 0 or self._write_off_dust(deal, got[-1][0].price)):  # type: ignore[attr-defined]
            # cancels the take-profit and safety orders, books what filled meanwhile, closes the deal
            self._close_market(deal, got[-1][0].price, now, got[-1][1], DealStatus.STOPPED)  # type: ignore[attr-defined]
            if not deal.active and deal.config.get("stop_and_disable"):
                self.queue_breaches([Breach("stop_and_disable", TradingState.PAUSED,  # type: ignore[attr-defined]
                                            f"deal {deal.id} stopped on the venue: stop-and-disable")])
        return True

    def _protect_deal(self, symbol: str, now: int) -> None:
        """Keep the venue's stop in step with the pair's deal (after every step)."""
        g = self.guards.get(symbol)
        if g is None or not self._guards_loaded:
            return
        try:
            deal = self.deals.get(symbol)
            want = self._stop_wanted(g, deal)
            if g.matches(want) or not g.due(self.candles_seen, want):
                return
            if want is not None and deal is not None and not self._stop_allowed(deal, float(want.orders[0].stop_price or 0), now):
                return
            if g.active:
                self._book_stop_fills(symbol, g.release(), now)
                if g.active:
                    return  # not cancelled (venue unreachable): the next step tries again
                want = self._stop_wanted(g, self.deals.get(symbol))
            if want is None:
                g.problem = ""
                return
            g.place(want, now, self.candles_seen)
        except Exception as exc:  # noqa: BLE001 - exchangeInfo or the venue unreachable: the next step tries again
            g.problem = f"{type(exc).__name__}: {exc}"
            log.warning("bot %s: resting stop of %s not kept in step: %s", self.name, symbol, exc)  # type: ignore[attr-defined]

    def _stop_allowed(self, deal: Deal, stop: float, now: int) -> bool:
        """The risk engine's word on the stop as an exit order (a HALTED bot keeps what rests)."""
        g = self.guards[deal.symbol]
        side = Side.SELL if deal.long else Side.BUY
        order = Order(f"{self.name}:{deal.symbol}:protect", self.name, deal.symbol, side,  # type: ignore[attr-defined]
                      deal.quantity, OrderPurpose.EXIT, OrderType.LIMIT, stop, self.reduce_only_exits,  # type: ignore[attr-defined]
                      OrderStatus.INTENT, now, f"{deal.id} resting stop")
        reserved = self.venue.reserved_quote()  # type: ignore[attr-defined]
        ctx = self.context(deal.symbol, self.portfolio.position(deal.symbol), stop, self.equity(),  # type: ignore[attr-defined]
                           self.portfolio.quote - reserved, now, deal.stop_price,  # type: ignore[attr-defined]
                           self._exposure_value() + reserved, False)  # type: ignore[attr-defined]
        if self.decide(order, ctx, order_record=False, count_entry=False):  # type: ignore[attr-defined]
            return True
        g.problem = f"risk: {self.last_denial}"  # type: ignore[attr-defined]
        return False

    # ---- snapshot ------------------------------------------------------------------------------
    def protection_view(self) -> str:
        return "; ".join(f"{s}: {v}" for s, g in self.guards.items() if (v := g.view()))

    def protection_dump(self) -> dict[str, dict[str, list[int]]]:
        if not self._guards_loaded:  # restored, not asked for yet: the saved books stand as they were
            return dict(self._protective_saved)
        return {s: g.dump() for s, g in self.guards.items()}
