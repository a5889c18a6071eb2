"""Resting orders of one bot on a real venue: the live counterpart of executors.venue.SimVenue.

A DCA bot keeps its safety-order ladder and take-profit steps resting here exactly as it does on
the simulated venue (same interface: place / cancel / open_orders / reserved_quote / match /
dump / load), but every order is a GTC LIMIT order on the exchange sent through the
LiveExecutor (intent recorded first, deterministic client order id).

Fills arrive from the venue's user-data stream (`on_event`, called on the stream's thread; the
intent in Redis is updated at once) or, as the fallback, from REST (`poll`). An order is handed
to the bot once, when it is complete: FILLED, or canceled/expired after a partial fill, as one
fill at its average price with its summed fee, so a safety order is one tranche however many
trades it took. Until then its executed part is "unbooked" (reconciliation adds it to what the
bot expects the venue to hold). After a restart `load` asks the venue for every order the bot
believed resting and adopts open LIMIT intents the last snapshot missed.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import asdict
from decimal import Decimal
from typing import TYPE_CHECKING, Callable

from core.order_status import RESTING
from core.types import Candle, Fill, Order, OrderPurpose, OrderType, Side
from exchange.client import VenueTrade
from exchange.rules import ZERO, dec
from executors.intent_records import fills_qty, trade_of
from executors.live import LiveExecutor
from executors.venue import RestingOrder
from state.intents import IntentRecord

if TYPE_CHECKING:
    from exchange.userdata import OrderEvent

log = logging.getLogger(__name__)



class LiveBook:
    def __init__(self, executor: LiveExecutor, bot: str,
                 convert: Callable[[list[Fill]], list[Fill]] = lambda fills: fills) -> None:
        self.executor = executor
        self.bot = bot
        self.convert = convert  # spot: fee paid in the base asset -> quantity held (executors.spot_fees.spot_fills)
        self.book: dict[str, RestingOrder] = {}
        self._recs: dict[str, IntentRecord] = {}
        self._trades: dict[str, list[VenueTrade]] = {}  # per order, until it is complete
        self._pending: list[tuple[RestingOrder, Fill]] = []
        self._lock = threading.RLock()
        self.wake: Callable[[], None] | None = None  # the worker's "fills waiting" signal
        self.last_reason = ""
        self.lost: list[RestingOrder] = []  # believed resting, found gone at load (for the log)

    # ---- the SimVenue interface ----------------------------------------------------------------
    def place(self, order: RestingOrder, purpose: OrderPurpose = OrderPurpose.ENTRY) -> bool:
        """Send it; False (with last_reason) when the venue or the filters refused it."""
        # On futures every exit rests reduce-only: a take-profit can never open a position.
        o = Order(order.client_order_id, self.bot, order.symbol, Side(order.side), order.quantity, purpose,
                  order_type=OrderType.LIMIT, price=order.price, created_at=order.placed_at,
                  reduce_only=self.executor.client.futures and purpose is not OrderPurpose.ENTRY)
        with self._lock:
            rec, trades = self.executor.place_limit(o, order.tag)
            if rec.status in ("REJECTED", "EXPIRED"):
                self.last_reason = rec.reason or rec.status
                return False
            # What was sent, after rounding to the venue's filters.
            order.quantity, order.price = float(dec(rec.quantity)), float(dec(rec.price or order.price))
            self.book[order.client_order_id] = order
            self._recs[order.client_order_id] = rec
            self._trades[order.client_order_id] = []
            self._absorb(order.client_order_id, trades)
        return True

    def cancel(self, client_order_id: str) -> RestingOrder | None:
        """Cancel on the venue. None when it is not resting any more (it filled: the fill is booked
        through match()/take(), not lost)."""
        with self._lock:
            order, rec = self.book.get(client_order_id), self._recs.get(client_order_id)
            if order is None or rec is None:
                return None
            trades = self.executor.cancel_limit(rec)
            self._absorb(client_order_id, trades)
            if rec.status == "FILLED":
                return None
            if rec.status in RESTING:  # the cancel did not take (venue unreachable): still resting
                log.warning("cancel of %s not confirmed; still %s", client_order_id, rec.status)
                return None
            return order

    def open_orders(self, symbol: str | None = None) -> list[RestingOrder]:
        with self._lock:
            return [o for o in self.book.values() if symbol is None or o.symbol == symbol]

    def reserved_quote(self, symbol: str | None = None) -> float:
        return sum(o.quantity * o.price for o in self.open_orders(symbol) if o.side == "BUY")

    def match(self, c: Candle) -> list[tuple[RestingOrder, Fill]]:
        """Fills the venue reported for this symbol (the candle's prices play no part: the venue matched)."""
        return self.take(c.symbol)

    def take(self, symbol: str | None = None) -> list[tuple[RestingOrder, Fill]]:
        with self._lock:
            out = [(o, f) for o, f in self._pending if symbol is None or o.symbol == symbol]
            self._pending = [(o, f) for o, f in self._pending if not (symbol is None or o.symbol == symbol)]
            return out

    def dump(self) -> list[dict[str, object]]:
        """The orders to ask the venue for after a restart: those resting, and those complete but not
        yet handed to the bot (the stream thread absorbs a fill outside the trading lock: a snapshot
        built before the bot takes it must still name the order, or a crash then loses the fill)."""
        with self._lock:
            return [asdict(o) for o in self.book.values()] + [asdict(o) for o, _ in self._pending]

    def load(self, rows: list[dict[str, object]]) -> None:
        """After a restart: ask the venue for each order, book what filled meanwhile, drop what is
        gone, and adopt open LIMIT intents the last snapshot did not list yet."""
        with self._lock:
            self.book, self._recs, self._trades = {}, {}, {}
            believed = {str(r["client_order_id"]): RestingOrder(**r) for r in rows}  # type: ignore[arg-type]
            for rec in self.executor.store.open(self.bot):
                if rec.order_type == "LIMIT" and rec.client_order_id not in believed:
                    believed[rec.client_order_id] = RestingOrder(
                        rec.client_order_id, self.bot, rec.symbol, rec.side, float(dec(rec.quantity)),
                        float(dec(rec.price or "0")), rec.tag, rec.created_at)
                    log.warning("adopting resting order %s (%s) the last snapshot missed", rec.client_order_id,
                                rec.tag)
            for coid, order in believed.items():
                rec = self.executor.store.get(self.bot, coid)
                if rec is None:
                    self.lost.append(order)
                    continue
                self.book[coid], self._recs[coid] = order, rec
                # Trades already recorded but never handed to the bot are booked again from the record
                # (the snapshot that would have removed the order was not written).
                self._trades[coid] = [trade_of(rec, f) for f in rec.fills]
                queued = len(self._pending)
                # A final record whose fills do not cover what it executed (its trades were not fetched
                # before the crash) is asked again: otherwise the order would leave the book unbooked.
                ask = not rec.final or fills_qty(rec) < dec(rec.executed_qty)
                self._absorb(coid, self.executor.refresh(rec, "restart") if ask else [])
                if coid not in self.book and len(self._pending) == queued:
                    self.lost.append(order)  # canceled or expired on the venue with nothing filled
            for o in self.lost:
                log.warning("resting order %s (%s %s) is no longer on the venue", o.client_order_id, o.tag, o.symbol)

    def unsellable(self, symbol: str, quantity: float, price: float) -> bool:
        """A remainder the venue's filters cannot trade (below a lot step, min qty or min notional)."""
        rules = self.executor.client.rules(symbol)
        qty = rules.round_qty(abs(quantity), market_order=True)
        return qty <= 0 or bool(rules.problems(qty, dec(price) if price > 0 else None, market_order=True))

    # ---- fills from the venue ------------------------------------------------------------------
    def on_event(self, ev: "OrderEvent") -> bool:
        """A user-data event (stream thread). True if the order is one of ours."""
        with self._lock:
            rec = self._recs.get(ev.client_order_id)
            if rec is None:
                return False
            self._absorb(ev.client_order_id, self.executor.apply_event(rec, ev))
            return True

    def poll(self) -> int:
        """REST fallback: refresh every resting order; returns how many completed."""
        done = 0
        with self._lock:
            for coid in list(self.book):
                rec = self._recs[coid]
                before = len(self._pending)
                self._absorb(coid, self.executor.refresh(rec, "poll"))
                done += len(self._pending) > before
        return done

    def unbooked(self, symbol: str) -> Decimal:
        """Signed base quantity executed on the venue but not yet handed to the bot."""
        with self._lock:
            total = ZERO
            client = self.executor.client
            base = "" if client.futures else client.rules(symbol).base_asset
            for coid, trades in self._trades.items():
                o, rec = self.book.get(coid), self._recs.get(coid)
                if o is not None and o.symbol == symbol:
                    # A spot buy's fee paid in the base asset is not held.
                    q = sum((t.qty - (t.commission if base and t.commission_asset == base else ZERO)
                             for t in trades), ZERO)
                    if not base and rec is not None:  # futures: what it executed, even before its trades came
                        q = max(q, dec(rec.executed_qty))
                    total += q if o.side == "BUY" else -q
            for o, f in self._pending:
                if o.symbol == symbol:
                    total += dec(f.quantity) if o.side == "BUY" else -dec(f.quantity)
            return total

    def _absorb(self, coid: str, trades: list[VenueTrade]) -> None:
        """New trades of an order; when the order is complete, its one aggregated fill is queued."""
        order, rec = self.book.get(coid), self._recs.get(coid)
        if order is None or rec is None:
            return
        acc = self._trades.setdefault(coid, [])
        acc.extend(trades)
        if rec.status in RESTING or rec.status == "INTENT":
            return
        if sum((t.qty for t in acc), ZERO) < dec(rec.executed_qty):
            # Complete on the venue, but its trades are not all here (the request for them failed, or a
            # USD-M answer carried none): it stays in the book until the next poll fetches them, rather
            # than leaving it with its fill never handed to the bot.
            log.info("order %s %s; waiting for its trades", coid, rec.status)
            return
        if acc:
            qty = sum((t.qty for t in acc), ZERO)
            price = sum((t.qty * t.price for t in acc), ZERO) / qty
            fee = sum((t.commission for t in acc), ZERO)
            raw = Fill(coid, self.bot, order.symbol, Side(order.side), float(qty), float(price), float(fee),
                       acc[-1].commission_asset, max(t.time for t in acc))
            # Converted before the order leaves the book: if this raises (exchangeInfo refresh), the
            # next poll finds it still here and books it then.
            fill = self.convert([raw])[0]
            if rec.status != "FILLED":
                log.warning("order %s %s after a partial fill of %s", coid, rec.status, qty)
            self._pending.append((RestingOrder(coid, self.bot, order.symbol, order.side, fill.quantity, order.price,
                                               order.tag, order.placed_at), fill))
        self.book.pop(coid, None)
        self._recs.pop(coid, None)
        self._trades.pop(coid, None)
        if acc and self.wake is not None:
            self.wake()
