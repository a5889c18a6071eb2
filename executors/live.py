"""Live executor: MARKET orders on a real venue (local exchange, testnet, Binance) via exchange/.

Money-safety contract (design.md, "Money-safety rules"):
  1. The intent is recorded in the store, under the order's deterministic client order id,
     *before* the request is sent. A second execute() of the same id never sends again: it
     resolves the recorded intent and returns its fills.
  2. An ambiguous outcome (timeout, 5xx, "status unknown", lost response) is resolved by asking
     the venue for that origClientOrderId - never by sending again. Not found after a few
     queries = not placed (EXPIRED with the reason). Queries that keep failing leave the intent
     open (status INTENT); `recover()` resolves it later.
  3. Every transition (INTENT -> NEW -> PARTIALLY_FILLED -> FILLED | CANCELED | REJECTED |
     EXPIRED) is persisted as it is observed.
Market-order fills and fees come from the order response (spot FULL) or from the venue's trade
list by orderId (REST polling until the trades add up to the executed quantity).

Resting GTC LIMIT orders (a DCA ladder, take-profits) follow the same intent-first rule:
`place_limit` records, sends and returns the record without waiting; later fills arrive as
user-data stream events (`apply_event`, the primary path) or from REST (`refresh`, the fallback
after a reconnect and at recovery). Both merge trades by trade id, so an event and a poll of the
same trade are booked once, and a state never moves back from final.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Callable

from core.types import Fill, Mode, Order, OrderStatus, Side
from exchange.client import ExchangeClient, VenueOrder, VenueTrade
from exchange.errors import AmbiguousError, ExchangeError, FinalError, RetryableError
from exchange.rules import ZERO, dec, fmt
from executors.intent_records import advance_record, fills_qty, trade_of  # noqa: F401 (trade_of re-exported)
from state.intents import IntentFill, IntentRecord, IntentStore

if TYPE_CHECKING:
    from exchange.userdata import OrderEvent

log = logging.getLogger(__name__)


def _wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass(slots=True)
class Recovered:
    """The outcome of resolving one open intent (at start-up or periodically)."""

    intent: IntentRecord
    fills: list[Fill]


@dataclass
class LiveExecutor:
    client: ExchangeClient
    store: IntentStore
    mode: Mode = Mode.LIVE
    fill_timeout_s: float = 5.0  # how long to poll for a market order's trades
    poll_every_s: float = 0.1
    resolve_attempts: int = 3  # queries before "not at the venue" is believed
    resolve_delay_s: float = 0.3
    # Called with the persisted intent right before the request goes out (instrumentation, tests).
    before_send: Callable[[IntentRecord], None] | None = None
    now_ms: Callable[[], int] = _wall_ms
    sleep: Callable[[float], None] = time.sleep
    last: IntentRecord | None = field(default=None, init=False)  # the last execute()'s final record
    stream_up: Callable[[], bool] | None = None  # is the market's user-data stream connected?
    stream_wait_s: float = 0.5
    streamed_fills: int = field(default=0, init=False)  # market orders whose trades came from the stream
    # Trades of market orders seen on the user-data stream, by client order id (bounded): used
    # before asking REST for an order's trades.
    _streamed: "OrderedDict[str, list[VenueTrade]]" = field(default_factory=OrderedDict, init=False, repr=False)
    _streamed_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    # Orders whose fills recover() or unbooked() handed to the bot: the same order executed again (its
    # candle or signal replayed after the crash) must not hand them out a second time.
    _handed: set[str] = field(default_factory=set, init=False, repr=False)

    @property
    def venue(self) -> str:
        return self.client.urls.venue.value

    # ---- the Executor interface ----------------------------------------------------------------
    def execute(self, order: Order, ref_price: float, time_ms: int) -> list[Fill]:
        """Send one MARKET order (spot, or USD-M with reduce_only) and return its fills.

        `order.status` and `order.reason` are set to the outcome. Never raises for venue errors:
        a refused or unplaced order comes back with no fills and status REJECTED / EXPIRED.
        """
        existing = self.store.get(order.bot, order.client_order_id)
        if existing is not None:
            return self._replay(order, existing)
        try:
            prepared = self.client.prepare_market(order.symbol, order.side.value, dec(order.quantity),
                                                  dec(ref_price), reduce_only=order.reduce_only)
        except ExchangeError as e:  # exchangeInfo unreachable / unknown symbol: nothing sent
            return self._refuse(order, fmt(dec(order.quantity)), f"not sent: {e}")
        # sent as MARKET whatever the bot called it (a take-profit exit is decided at its level but goes
        # out at market): recovery resolves market orders, a LiveBook its resting ones
        rec = self._intent(order, prepared.quantity_text, order_type="MARKET")
        if not prepared.ok:
            return self._refuse(order, prepared.quantity_text, "filters: " + "; ".join(prepared.problems), rec)
        if not self.store.create(rec):  # another path recorded it meanwhile: never send twice
            existing = self.store.get(order.bot, order.client_order_id)
            assert existing is not None
            return self._replay(order, existing)
        if self.before_send is not None:
            self.before_send(rec)
        try:
            vo = self.client.place_market(prepared, order.client_order_id, reduce_only=order.reduce_only)
        except AmbiguousError as e:
            log.warning("ambiguous outcome for %s (%s): asking the venue", rec.client_order_id, e)
            return self._finish(order, rec, self._resolve(rec, f"ambiguous send ({e})"))
        except (FinalError, RetryableError) as e:
            # Refused or not executed (filters, balance, reduce-only, rate limit): not resent.
            advance_record(rec, "REJECTED")
            rec.reason, rec.updated_at = f"venue: {e}", self.now_ms()
            self.store.update(rec)
            return self._finish(order, rec, [])
        return self._finish(order, rec, self._follow(rec, vo))

    # ---- recovery ------------------------------------------------------------------------------
    def recover(self, bot: str, min_age_ms: int = 0) -> list[Recovered]:
        """Resolve every open intent of a bot by asking the venue (call at start, before trading,
        and periodically with min_age_ms > the longest send so in-flight orders are left alone).

        Not at the venue -> EXPIRED ("never sent", e.g. a crash between intent and send).
        At the venue -> its state and fills are recorded and returned for booking.
        """
        out: list[Recovered] = []
        now = self.now_ms()
        for rec in self.store.open(bot):
            if now - rec.created_at < min_age_ms or rec.order_type != "MARKET":
                continue  # resting orders belong to the bot's LiveBook, protective ones to its VenueProtection
            trades = self._resolve(rec, "recovery", attempts=1)
            fills = [self._fill(rec, t) for t in trades]
            self._handed.add(rec.client_order_id)
            out.append(Recovered(rec, fills))
        return out

    # ---- resting LIMIT orders --------------------------------------------------------------
    def place_limit(self, order: Order, tag: str = "") -> tuple[IntentRecord, list[VenueTrade]]:
        """Send one GTC LIMIT order (intent first) without waiting for fills.

        Returns the persisted record and the trades it already has (a limit that crossed the book
        fills at once). Status NEW/PARTIALLY_FILLED = resting; REJECTED/EXPIRED = not resting,
        with the reason. A known client order id is never sent again: its record is resolved.
        """
        existing = self.store.get(order.bot, order.client_order_id)
        if existing is not None:
            if existing.status == "INTENT":
                return existing, self.refresh(existing, "re-place of a known id")
            return existing, []
        price = dec(order.price or 0)
        try:
            prepared = self.client.prepare_limit(order.symbol, order.side.value, dec(order.quantity), price,
                                                 reduce_only=order.reduce_only)
        except ExchangeError as e:  # exchangeInfo unreachable / unknown symbol: nothing sent
            rec = self._intent(order, fmt(dec(order.quantity)), fmt(price), tag)
            self._refuse(order, rec.quantity, f"not sent: {e}", rec)
            return self.last or rec, []
        rec = self._intent(order, prepared.quantity_text, fmt(prepared.ref_price), tag)
        if not prepared.ok:
            self._refuse(order, prepared.quantity_text, "filters: " + "; ".join(prepared.problems), rec)
            return rec, []
        if not self.store.create(rec):
            known = self.store.get(order.bot, order.client_order_id)
            assert known is not None
            return known, (self.refresh(known, "re-place of a known id") if known.status == "INTENT" else [])
        if self.before_send is not None:
            self.before_send(rec)
        try:
            vo = self.client.place_limit(prepared, order.client_order_id, reduce_only=order.reduce_only)
        except AmbiguousError as e:
            log.warning("ambiguous outcome for %s (%s): asking the venue", rec.client_order_id, e)
            return rec, self.refresh(rec, f"ambiguous send ({e})", attempts=self.resolve_attempts)
        except (FinalError, RetryableError) as e:
            advance_record(rec, "REJECTED")
            rec.reason, rec.updated_at = f"venue: {e}", self.now_ms()
            self.store.update(rec)
            return rec, []
        return rec, self._merge(rec, vo, self._trades_of(rec, vo))

    def _trades_of(self, rec: IntentRecord, vo: VenueOrder) -> list[VenueTrade]:
        """The order's trades: those in the answer, else — when it executed more than they and the record
        hold (a USD-M answer carries none) — asked for; [] when the venue cannot say now (the next poll
        or the user-data stream brings them)."""
        trades: list[VenueTrade] = list(vo.trades)
        if vo.executed_qty > fills_qty(rec) + sum((t.qty for t in trades), ZERO):
            try:
                trades = self.client.trades(rec.symbol, vo.order_id)
            except ExchangeError as e:
                log.warning("trades of %s: %s", rec.client_order_id, e)
                return []
        return trades

    def refresh(self, rec: IntentRecord, cause: str = "poll", attempts: int = 1) -> list[VenueTrade]:
        """REST: the venue's state of a resting order and any trades not yet recorded (the fallback
        when the user-data stream was down, and recovery after a restart). Returns the new trades."""
        for i in range(attempts):
            try:
                vo = self.client.get_order(rec.symbol, rec.client_order_id)
            except ExchangeError as e:
                log.warning("refresh %s: %s", rec.client_order_id, e)
                return []  # unknown for now: the next poll tries again
            if vo is not None:
                return self._merge(rec, vo, self._trades_of(rec, vo))
            if i + 1 < attempts:
                self.sleep(self.resolve_delay_s)
        if rec.status == "INTENT":
            advance_record(rec, "EXPIRED")
            rec.updated_at = self.now_ms()
            rec.reason = f"not placed: the venue has no order {rec.client_order_id} ({cause})"
            self.store.update(rec)
        return []

    def apply_event(self, rec: IntentRecord, ev: "OrderEvent") -> list[VenueTrade]:
        """A user-data stream event for this order: state and the new trade, persisted at once."""
        trade = ev.trade()
        vo = VenueOrder(symbol=ev.symbol, order_id=ev.order_id, client_order_id=ev.client_order_id, side=ev.side,
                        type=ev.order_type, status=ev.status, orig_qty=ev.orig_qty, executed_qty=ev.cum_qty,
                        cum_quote=ev.cum_quote, price=ev.price,
                        avg_price=(ev.cum_quote / ev.cum_qty) if ev.cum_qty else ZERO, reduce_only=ev.reduce_only,
                        update_time=ev.event_time)
        return self._merge(rec, vo, [trade] if trade is not None else [])

    def cancel_limit(self, rec: IntentRecord) -> list[VenueTrade]:
        """Cancel a resting order. Returns trades not yet recorded (it may have filled meanwhile:
        then its status says FILLED, not CANCELED)."""
        try:
            vo = self.client.cancel(rec.symbol, rec.client_order_id)
        except ExchangeError as e:
            log.warning("cancel %s failed (%s); state from a query", rec.client_order_id, e)
            vo = None
        if vo is None:  # not open any more (filled or gone) or the cancel failed: ask
            return self.refresh(rec, "cancel")
        trades: list[VenueTrade] = []
        if vo.executed_qty > fills_qty(rec):
            try:
                trades = self.client.trades(rec.symbol, vo.order_id)
            except ExchangeError as e:
                log.warning("trades of %s: %s", rec.client_order_id, e)
        return self._merge(rec, vo, trades)

    def fill_of(self, rec: IntentRecord, trades: list[VenueTrade]) -> list[Fill]:
        return [self._fill(rec, t) for t in trades]

    def _intent(self, order: Order, qty_text: str, price_text: str = "", tag: str = "",
                order_type: str | None = None) -> IntentRecord:
        """The record of an order about to be sent (or refused before sending), as rounded."""
        return IntentRecord(client_order_id=order.client_order_id, bot=order.bot, venue=self.venue,
                            market=self.client.market, symbol=order.symbol, side=order.side.value,
                            order_type=order_type or order.order_type.value, quantity=qty_text, price=price_text,
                            tag=tag,
                            reduce_only=order.reduce_only, purpose=order.purpose.value, created_at=self.now_ms())

    def _merge(self, rec: IntentRecord, vo: VenueOrder, trades: list[VenueTrade]) -> list[VenueTrade]:
        """Fold the venue's view into the record (never backwards) and persist if anything changed."""
        known = {f.trade_id for f in rec.fills}
        new = [t for t in trades if t.trade_id not in known and t.order_id in (vo.order_id, 0)]
        changed = bool(new) or rec.order_id != vo.order_id
        rec.order_id = vo.order_id
        changed |= advance_record(rec, vo.status)
        if vo.executed_qty > dec(rec.executed_qty):
            rec.executed_qty, rec.cum_quote, rec.avg_price = fmt(vo.executed_qty), fmt(vo.cum_quote), fmt(vo.avg_price)
            changed = True
        for t in new:
            rec.fills.append(IntentFill(trade_id=t.trade_id, price=fmt(t.price), qty=fmt(t.qty),
                                        commission=fmt(t.commission), commission_asset=t.commission_asset,
                                        time=t.time))
        if changed:
            rec.updated_at = self.now_ms()
            self.store.update(rec)
        return new

    # ---- internals -------------------------------------------------------------------------------
    def _refuse(self, order: Order, qty_text: str, reason: str, rec: IntentRecord | None = None) -> list[Fill]:
        """Recorded as REJECTED without any request (so the dashboard shows why)."""
        rec = rec or self._intent(order, qty_text)
        if self.store.create(rec):
            advance_record(rec, "REJECTED")
            rec.reason, rec.updated_at = reason, self.now_ms()
            self.store.update(rec)
        else:
            rec = self.store.get(order.bot, order.client_order_id) or rec
        return self._finish(order, rec, [])

    def _replay(self, order: Order, rec: IntentRecord) -> list[Fill]:
        if rec.client_order_id in self._handed and rec.final:
            return self._finish(order, rec, [])  # booked by recovery at start: never twice
        if not rec.final:
            trades = self._resolve(rec, "re-execute of a known id")
        else:
            trades = [VenueTrade(rec.symbol, f.trade_id, rec.order_id or 0, rec.side, dec(f.price), dec(f.qty),
                                 dec(f.commission), f.commission_asset, f.time) for f in rec.fills]
        return self._finish(order, rec, trades)

    def _finish(self, order: Order, rec: IntentRecord, trades: list[VenueTrade]) -> list[Fill]:
        order.status = OrderStatus(rec.status)
        order.reason = rec.reason or order.reason
        self.last = rec
        return [self._fill(rec, t) for t in trades]

    def _fill(self, rec: IntentRecord, t: VenueTrade) -> Fill:
        return Fill(rec.client_order_id, rec.bot, rec.symbol, Side(rec.side), float(t.qty), float(t.price),
                    float(t.commission), t.commission_asset, t.time)

    def unbooked(self, bot: str, since_ms: int) -> list[Fill]:
        """Fills of market orders that became final with fills after ``since_ms`` (the bot's last saved
        books): a crash between the venue's answer and the commit of the books left them recorded on the
        intent but never booked. Resting orders (tagged) are the LiveBook's; open ones ``recover``'s."""
        out: list[Fill] = []
        for rec in self.store.all(bot):
            # became final after the books were built: its fills cannot be in them
            if rec.final and rec.fills and not rec.tag and rec.order_type == "MARKET" and rec.updated_at > since_ms:
                out.extend(self._fill(rec, trade_of(rec, f)) for f in rec.fills)
                self._handed.add(rec.client_order_id)
        return out

    def _transition(self, rec: IntentRecord, status: str, vo: VenueOrder | None = None, reason: str = "") -> None:
        changed = advance_record(rec, status)
        if vo is not None:
            changed = changed or fmt(vo.executed_qty) != rec.executed_qty or rec.order_id != vo.order_id
            rec.order_id = vo.order_id
            rec.executed_qty, rec.cum_quote, rec.avg_price = fmt(vo.executed_qty), fmt(vo.cum_quote), fmt(vo.avg_price)
        if reason:
            rec.reason = reason
        if changed or reason:
            rec.updated_at = self.now_ms()
            self.store.update(rec)

    def _resolve(self, rec: IntentRecord, cause: str, attempts: int | None = None) -> list[VenueTrade]:
        """Ask the venue for the intent's client order id; never send. Returns the fills."""
        attempts = attempts or self.resolve_attempts
        query_failed: ExchangeError | None = None
        for i in range(attempts):
            try:
                vo = self.client.get_order(rec.symbol, rec.client_order_id)
            except ExchangeError as e:  # venue still unreachable: try again, then leave it open
                query_failed = e
                vo = None
            else:
                query_failed = None
                if vo is not None:
                    rec.reason = f"resolved by query after {cause}"
                    return self._follow(rec, vo)
            if i + 1 < attempts:
                self.sleep(self.resolve_delay_s)
        if query_failed is not None:
            rec.reason, rec.updated_at = f"unresolved after {cause}: {query_failed}", self.now_ms()
            self.store.update(rec)  # stays INTENT and open: recover() tries again later
            return []
        advance_record(rec, "EXPIRED")
        rec.updated_at = self.now_ms()
        rec.reason = f"not placed: the venue has no order {rec.client_order_id} ({cause})"
        self.store.update(rec)
        return []

    def _follow(self, rec: IntentRecord, vo: VenueOrder) -> list[VenueTrade]:
        """From the venue's answer to the final state and its trades, persisting each step."""
        rec.order_id = vo.order_id
        self._transition(rec, "NEW")  # accepted by the venue
        deadline = time.monotonic() + self.fill_timeout_s
        while True:
            if vo.executed_qty > 0 and not vo.final:
                self._transition(rec, "PARTIALLY_FILLED", vo)
            if vo.final or time.monotonic() > deadline:
                break
            self.sleep(self.poll_every_s)
            try:
                vo = self.client.get_order(rec.symbol, rec.client_order_id) or vo
            except ExchangeError as e:
                log.warning("polling %s: %s", rec.client_order_id, e)
        trades = self._trades(rec, vo, deadline)
        advance_record(rec, vo.status if vo.final else ("PARTIALLY_FILLED" if vo.executed_qty > 0 else "NEW"))
        rec.order_id = vo.order_id
        rec.executed_qty, rec.cum_quote, rec.avg_price = fmt(vo.executed_qty), fmt(vo.cum_quote), fmt(vo.avg_price)
        rec.fills = [IntentFill(trade_id=t.trade_id, price=fmt(t.price), qty=fmt(t.qty), commission=fmt(t.commission),
                                commission_asset=t.commission_asset, time=t.time) for t in trades]
        if not vo.final:
            rec.reason = f"not final after {self.fill_timeout_s:.1f} s; recover() follows it up"
        elif rec.status != "FILLED":
            rec.reason = f"venue status {vo.status}, executed {fmt(vo.executed_qty)} of {fmt(vo.orig_qty)}"
        rec.updated_at = self.now_ms()
        self.store.update(rec)  # final state with its fills, one write
        return trades

    def on_stream_trade(self, ev: "OrderEvent") -> None:
        """A user-data event of a market order (stream thread): its trade is kept for _trades()."""
        t = ev.trade()
        if t is None:
            return
        with self._streamed_lock:
            known = self._streamed.setdefault(ev.client_order_id, [])
            if all(k.trade_id != t.trade_id for k in known):
                known.append(t)
            self._streamed.move_to_end(ev.client_order_id)
            while len(self._streamed) > 1000:
                self._streamed.popitem(last=False)

    def _trades(self, rec: IntentRecord, vo: VenueOrder, deadline: float) -> list[VenueTrade]:
        if vo.executed_qty == 0:
            return []
        if vo.trades and sum((t.qty for t in vo.trades), ZERO) == vo.executed_qty:
            return list(vo.trades)  # spot FULL answer: the fills with their commissions
        trades: list[VenueTrade] = []
        # With a live user-data stream its events usually trail the order's answer by a millisecond
        # or two: wait for them briefly before spending request weight on REST.
        stream_until = time.monotonic() + (self.stream_wait_s if self.stream_up is not None and self.stream_up()
                                           else 0.0)
        while True:
            with self._streamed_lock:  # the user-data stream first: no request, no weight
                streamed = sorted(self._streamed.get(rec.client_order_id, []), key=lambda x: x.trade_id)
            if sum((t.qty for t in streamed), ZERO) >= vo.executed_qty:
                self.streamed_fills += 1
                return [VenueTrade(t.symbol, t.trade_id, vo.order_id, t.side, t.price, t.qty, t.commission,
                                   t.commission_asset, t.time, t.realized_pnl) for t in streamed]
            if time.monotonic() < stream_until:
                time.sleep(0.002)
                continue
            try:
                trades = self.client.trades(rec.symbol, vo.order_id)
            except ExchangeError as e:
                log.warning("trades of %s: %s", rec.client_order_id, e)
            if sum((t.qty for t in trades), Decimal(0)) >= vo.executed_qty or time.monotonic() > deadline:
                return trades
            self.sleep(self.poll_every_s)
