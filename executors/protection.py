"""Protective orders of one signal bot's position, resting on the venue (live, and paper on the
testnet): the position's exits keep working on the exchange itself while the worker is down.

* spot long: an OCO (LIMIT_MAKER take-profit above, STOP_LOSS_LIMIT below; its limit
  ``stop_limit_pct`` under the trigger) when the position has both levels, a lone STOP_LOSS_LIMIT
  when it has a stop only;
* USD-M: a STOP_MARKET and a TAKE_PROFIT_MARKET on the Algo service, reduce-only for the bot's
  quantity (never ``closePosition``: another bot, or the user, may hold the same symbol).

The rules (the bot, ``engine.bot``, drives them):

* **Intent first.** Every placement is recorded in the intent store (tag ``protect``) under a
  deterministic client id before it is sent; an ambiguous answer is resolved by asking the venue
  for that id, never by sending again.
* **In step with the position.** ``wanted`` is what the venue should hold for the position's
  quantity and levels, rounded to the filters; when it differs from what rests (a tranche
  re-anchored the levels, a partial exit), the old order is cancelled first, then the new one placed.
* **Booked once.** What a protective order executed (a venue stop that fired, a take-profit that
  filled, a fill that raced a cancel) comes back from ``check``/``release`` as fills, each trade
  once: the trade ids booked are kept per order and saved with the bot's books (``dump``), so a
  crash between the venue's fill and the bot's commit books it at the next start, and never twice.
* **Released before any other exit.** The bot cancels its protective orders before it sends an
  exit of its own (a software stop, an opposite signal, a flatten, a kill switch) and books what
  they executed first: the venue never closes the same position twice.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from core.ids import protective_id
from core.types import Fill
from exchange.errors import AmbiguousError, DuplicateOrderError, ExchangeError, FinalError, WouldTriggerError
from exchange.protective import ProtectiveOrders
from exchange.protective_models import PreparedProtective, ProtectiveOrder
from exchange.rules import dec, fmt
from executors.intent_records import advance_record, trade_of
from executors.live import LiveExecutor
from state.intents import IntentFill, IntentRecord

log = logging.getLogger(__name__)

PROTECT_TAG = "protect"
_TYPE = {"oco": "OCO", "stop_limit": "STOP_LOSS_LIMIT", "stop_market": "STOP_MARKET",
         "take_profit_market": "TAKE_PROFIT_MARKET"}
_KIND = {v: k for k, v in _TYPE.items()}
_STATUS = {"OPEN": "NEW", "FILLED": "FILLED", "CANCELED": "CANCELED", "EXPIRED": "EXPIRED"}
RETRY_CANDLES = (1, 2, 4, 8, 16, 30)
FORGET_AFTER_S = 3600.0  # after a refused placement, the next try waits this many candles


def is_protective(rec: IntentRecord) -> bool:
    return rec.tag == PROTECT_TAG


def leg_ids(list_id: str) -> tuple[str, str]:
    """The OCO legs' client ids (take-profit, stop), derived from the list's."""
    return f"{list_id}t", f"{list_id}s"


def reconcile_ids(rec: IntentRecord) -> dict[str, str]:
    """What reconciliation may see on the venue for a protective intent: client id -> a status that
    marks it known but never required open (a leg of a finished OCO, an algo order, which the open
    orders do not list)."""
    if rec.order_type == "OCO":
        return {rec.client_order_id: "PROTECTIVE", **{i: "PROTECTIVE" for i in leg_ids(rec.client_order_id)}}
    return {rec.client_order_id: "PROTECTIVE"}


@dataclass(frozen=True)
class Wanted:
    """What the venue should hold for the position: one prepared order (spot) or two (USD-M)."""

    orders: tuple[PreparedProtective, ...]

    def key(self) -> tuple[tuple[str, str, str, str, str], ...]:
        return tuple(sorted((p.kind, fmt(p.quantity), fmt(p.take_profit_price or 0), fmt(p.stop_price or 0),
                             fmt(p.stop_limit_price or 0)) for p in self.orders))


def _key_of(rec: IntentRecord) -> tuple[str, str, str, str, str]:
    kind = _KIND.get(rec.order_type, rec.order_type)
    tp = rec.price if kind == "oco" else "0"
    limit = rec.stop_limit_price or "0"
    return kind, fmt(dec(rec.quantity)), fmt(dec(tp or "0")), fmt(dec(rec.stop_price or "0")), fmt(dec(limit))


@dataclass
class VenueProtection:
    executor: LiveExecutor
    bot: str
    symbol: str
    convert: Callable[[list[Fill]], list[Fill]] = lambda fills: fills  # spot: fee paid in the base asset
    stop_limit_pct: float = 0.5
    active: dict[str, IntentRecord] = field(default_factory=dict)  # client id -> what rests
    booked: dict[str, set[int]] = field(default_factory=dict)  # client id -> trade ids booked
    dirty: bool = False  # a user-data event said one of them moved: check before the next candle
    problem: str = ""  # why the position is not protected on the venue (shown on the dashboard)
    wake: Callable[[], None] | None = None
    _failed: tuple[object, int, int] | None = None  # (wanted key, failures, candle of the next try)
    _finished: dict[str, float] = field(default_factory=dict)  # client id -> when it stopped resting
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def __post_init__(self) -> None:
        self.orders = ProtectiveOrders(self.executor.client)

    @property
    def futures(self) -> bool:
        return self.executor.client.futures

    # ---- what should rest --------------------------------------------------------------------
    def wanted(self, quantity: float, stop: float | None, take: float | None) -> Wanted | None:
        """The protective orders for a position (signed ``quantity``) and its levels; None when there
        is nothing to protect (flat, a spot short cannot exist, no stop on spot)."""
        if quantity == 0 or (stop is None and take is None):
            return None
        side = "SELL" if quantity > 0 else "BUY"
        qty = dec(abs(quantity))
        if self.futures:
            out = []
            if stop is not None and stop > 0:
                out.append(self.orders.prepare_algo("stop_market", self.symbol, side, dec(stop), quantity=qty))
            if take is not None and take > 0:
                out.append(self.orders.prepare_algo("take_profit_market", self.symbol, side, dec(take), quantity=qty))
            return Wanted(tuple(out)) if out else None
        if side != "SELL" or stop is None or stop <= 0:
            return None  # spot: a long's stop is what must not be naked; a take-profit alone waits in software
        limit = dec(stop) * (1 - dec(self.stop_limit_pct) / 100)
        if take is not None and take > stop:
            return Wanted((self.orders.prepare_oco_exit(self.symbol, qty, dec(take), dec(stop), limit),))
        return Wanted((self.orders.prepare_stop_limit(self.symbol, qty, dec(stop), limit),))

    def matches(self, want: Wanted | None) -> bool:
        with self._lock:
            held = tuple(sorted(_key_of(r) for r in self.active.values()))
        return held == (want.key() if want is not None else ())

    def due(self, tick: int, want: Wanted | None) -> bool:
        """Whether to (re)place now: not while a refused placement of the same thing backs off."""
        f = self._failed
        return f is None or f[0] != (want.key() if want else None) or tick >= f[2]

    # ---- placing -------------------------------------------------------------------------------
    def place(self, want: Wanted, now_ms: int, tick: int) -> str:
        """Place ``want`` (nothing may rest: ``release`` first). Returns '' or why not."""
        problems = [p for o in want.orders for p in o.problems]
        if problems:
            return self._refused(want, tick, "filters: " + "; ".join(dict.fromkeys(problems)))
        with self._lock:
            for prepared in want.orders:
                why = self._place_one(prepared, now_ms)
                if why:
                    return self._refused(want, tick, why)
        self._failed, self.problem = None, ""
        return ""

    def _refused(self, want: Wanted, tick: int, why: str) -> str:
        key = want.key()
        n = self._failed[1] + 1 if self._failed is not None and self._failed[0] == key else 1
        self._failed = (key, n, tick + RETRY_CANDLES[min(n, len(RETRY_CANDLES)) - 1])
        self.problem = why
        log.warning("bot %s: protective order for %s not placed (%s); the bot's own exit checks still run",
                    self.bot, self.symbol, why)
        return why

    def _new_id(self, now_ms: int) -> str:
        for seq in range(1, 100):
            cid = protective_id(self.bot, now_ms, seq)
            if self.executor.store.get(self.bot, cid) is None:
                return cid
        raise FinalError(f"no free protective client id for {self.bot} at {now_ms}")

    def _place_one(self, p: PreparedProtective, now_ms: int) -> str:
        cid = self._new_id(now_ms)
        rec = IntentRecord(client_order_id=cid, bot=self.bot, venue=self.executor.venue, market=self.executor.client.market,
                           symbol=p.symbol, side=p.side, order_type=_TYPE[p.kind], quantity=fmt(p.quantity),
                           price=fmt(p.take_profit_price) if p.take_profit_price is not None else "",
                           stop_price=fmt(p.stop_price) if p.stop_price is not None else "",
                           stop_limit_price=fmt(p.stop_limit_price) if p.stop_limit_price is not None else "",
                           tag=PROTECT_TAG, reduce_only=self.futures, purpose="exit",
                           created_at=int(time.time() * 1000))
        if not self.executor.store.create(rec):
            return f"client id {cid} already recorded"
        self.active[cid] = rec
        try:
            if p.kind == "oco":
                tp_id, stop_id = leg_ids(cid)
                got = self.orders.place_oco_exit(p, cid, tp_id, stop_id)
            elif p.kind == "stop_limit":
                got = self.orders.place_stop_limit(p, cid)
            else:
                got = self.orders.place_algo(p, cid)
        except (AmbiguousError, DuplicateOrderError) as e:
            log.warning("protective order %s: %s; asking the venue", cid, e)
            got = self._query(rec)
            if got is None:
                self._finish(rec, "EXPIRED", f"not placed: the venue has no order {cid} ({e})")
                return f"not placed ({e})"
        except WouldTriggerError as e:
            self._finish(rec, "REJECTED", f"venue: {e}")
            return f"the market is already through a level ({e}); the bot's own exit checks take it"
        except ExchangeError as e:
            self._finish(rec, "REJECTED", f"venue: {e}")
            return f"venue refused it: {e}"
        self._merge(rec, got)
        log.info("bot %s: protective %s %s %s qty %s resting (%s)", self.bot, rec.order_type, p.side, p.symbol,
                 rec.quantity, cid)
        return ""

    # ---- what the venue did ----------------------------------------------------------------------
    def check(self) -> list[tuple[Fill, str]]:
        """Ask the venue for every protective order: new executions come back as (fill, reason) to
        book; finished orders stop resting. A USD-M pair whose one side executed has the other side
        cancelled. A venue that cannot answer now leaves everything as it is."""
        with self._lock:
            self.dirty = False
            out: list[tuple[Fill, str]] = []
            for cid, rec in list(self.active.items()):
                try:
                    got = self._query(rec)
                except ExchangeError as e:
                    log.warning("protective order %s not checked: %s", cid, e)
                    self.dirty = True
                    continue
                if got is None:
                    self._finish(rec, "EXPIRED", f"not on the venue: it has no order {cid}")
                    continue
                out += self._merge(rec, got)
            if self.futures and out and self.active:
                out += self.release()  # one side fired: the other must not act on a closed position
            return out

    def release(self) -> list[tuple[Fill, str]]:
        """Cancel every protective order (before the bot's own exit, or to replace them). Returns what
        they executed that is not booked yet. One the venue could not cancel stays in ``active``."""
        with self._lock:
            out: list[tuple[Fill, str]] = []
            for cid, rec in list(self.active.items()):
                try:
                    got = self._cancel(rec)
                except ExchangeError as e:
                    log.warning("protective order %s not cancelled: %s", cid, e)
                    continue
                if got is None:
                    self._finish(rec, "EXPIRED", f"not on the venue at cancel: it has no order {cid}")
                    continue
                out += self._merge(rec, got)
            return out

    def reached(self, low: float, high: float) -> bool:
        """Whether a candle traded at or through a resting level (a stop below a long at or above the
        low, ...): then the venue may have executed it. 0.1 % of slack for the venue's own ticks."""
        with self._lock:
            for r in self.active.values():
                long_exit = r.side == "SELL"
                stop = float(dec(r.stop_price or "0"))
                take = float(dec(r.price or "0")) if r.order_type == "OCO" else 0.0
                if r.order_type == "TAKE_PROFIT_MARKET":
                    stop, take = 0.0, stop
                if stop and (low <= stop * 1.001 if long_exit else high >= stop * 0.999):
                    return True
                if take and (high >= take * 0.999 if long_exit else low <= take * 1.001):
                    return True
            return False

    def on_event(self, client_id: str) -> bool:
        """A user-data event (stream thread) about a client id: True if it is one of ours."""
        with self._lock:
            ours = any(client_id == cid or (r.order_type == "OCO" and client_id in leg_ids(cid))
                       for cid, r in self.active.items())
        if ours:
            self.dirty = True
            if self.wake is not None:
                self.wake()
        return ours

    def _query(self, rec: IntentRecord) -> ProtectiveOrder | None:
        o, cid = self.orders, rec.client_order_id
        if rec.order_type == "OCO":
            return o.get_order_list(rec.symbol, cid)
        if rec.order_type == "STOP_LOSS_LIMIT":
            return o.get_stop_limit(rec.symbol, cid)
        return o.get_algo(rec.symbol, cid)

    def _cancel(self, rec: IntentRecord) -> ProtectiveOrder | None:
        o, cid = self.orders, rec.client_order_id
        if rec.order_type == "OCO":
            return o.cancel_order_list(rec.symbol, cid)
        if rec.order_type == "STOP_LOSS_LIMIT":
            return o.cancel_stop_limit(rec.symbol, cid)
        return o.cancel_algo(rec.symbol, cid)

    def _merge(self, rec: IntentRecord, got: ProtectiveOrder) -> list[tuple[Fill, str]]:
        """Fold the venue's view into the record (persisted) and return its trades not booked yet."""
        known = {f.trade_id for f in rec.fills}
        new_trades = [t for t in got.trades if t.trade_id not in known]
        for t in new_trades:
            rec.fills.append(IntentFill(trade_id=t.trade_id, price=fmt(t.price), qty=fmt(t.qty),
                                        commission=fmt(t.commission), commission_asset=t.commission_asset, time=t.time))
        status = _STATUS.get(got.status) or ("PARTIALLY_FILLED" if got.executed_qty > 0 else "NEW")
        changed = advance_record(rec, status) or bool(new_trades) or rec.order_id != got.venue_id
        rec.order_id = got.venue_id
        if got.executed_qty > dec(rec.executed_qty):
            rec.executed_qty = fmt(got.executed_qty)
        if changed:
            rec.updated_at = int(time.time() * 1000)
            self.executor.store.update(rec)
        leg = got.executed_leg
        reason = "take_profit" if leg is not None and leg.role == "take_profit" else "stop_loss"
        if not got.is_active:
            self._done(rec.client_order_id)
        return self._unbooked(rec, f"{reason} (on the venue)")

    def _unbooked(self, rec: IntentRecord, reason: str) -> list[tuple[Fill, str]]:
        seen = self.booked.setdefault(rec.client_order_id, set())
        fresh = [f for f in rec.fills if f.trade_id not in seen]
        if not fresh:
            return []
        fills = self.convert(self.executor.fill_of(rec, [trade_of(rec, f) for f in fresh]))
        seen.update(f.trade_id for f in fresh)
        return [(f, reason) for f in fills]

    def _finish(self, rec: IntentRecord, status: str, reason: str) -> None:
        advance_record(rec, status)
        rec.reason, rec.updated_at = reason, int(time.time() * 1000)
        self.executor.store.update(rec)
        self._done(rec.client_order_id)

    def _done(self, cid: str) -> None:
        if self.active.pop(cid, None) is not None:
            self._finished[cid] = time.monotonic()

    # ---- persistence (in the bot's snapshot, committed with its books) ---------------------------
    def dump(self) -> dict[str, list[int]]:
        """Client id -> trade ids booked, for every order resting or finished within the hour (a
        restart from these books asks the venue for each again; older ones are fully booked)."""
        with self._lock:
            cutoff = time.monotonic() - FORGET_AFTER_S
            for cid in [c for c, at in self._finished.items() if at < cutoff]:
                del self._finished[cid]
                self.booked.pop(cid, None)
            keep = set(self.active) | set(self._finished)
            return {c: sorted(self.booked.get(c, ())) for c in sorted(keep)}

    def load(self, saved: dict[str, list[int]], saved_at: int | None) -> list[tuple[Fill, str]]:
        """After a restart: the orders the last books knew of, and any recorded after them, asked for
        again. What they executed beyond the trades those books hold is returned to book (the venue's
        stop that fired while the worker was down); what still rests is kept resting."""
        with self._lock:
            self.active.clear()
            self.booked = {c: set(ids) for c, ids in saved.items()}
            store = self.executor.store
            recs: dict[str, IntentRecord] = {}
            for cid in saved:
                rec = store.get(self.bot, cid)
                if rec is not None:
                    recs[cid] = rec
            for rec in store.all(self.bot):
                if is_protective(rec) and rec.symbol == self.symbol and (
                        not rec.final or saved_at is None or rec.created_at > saved_at):
                    recs.setdefault(rec.client_order_id, rec)
            out: list[tuple[Fill, str]] = []
            for cid, rec in recs.items():
                self.booked.setdefault(cid, set())
                self.active[cid] = rec
                try:
                    got = self._query(rec)
                except ExchangeError as e:
                    log.warning("protective order %s not checked at start: %s", cid, e)
                    continue
                if got is None:
                    out += self._unbooked(rec, "stop_loss (on the venue)")
                    self._finish(rec, "EXPIRED" if rec.status == "INTENT" else rec.status,
                                 rec.reason or f"not on the venue: it has no order {cid}")
                    continue
                out += self._merge(rec, got)
            return out

    # ---- views -----------------------------------------------------------------------------------
    def view(self) -> str:
        """One line for the dashboard: what rests on the venue, or why nothing does."""
        with self._lock:
            parts = []
            for r in self.active.values():
                if r.order_type == "OCO":
                    parts.append(f"OCO {r.side} {r.quantity}: take-profit {r.price}, stop {r.stop_price} "
                                 f"(limit {r.stop_limit_price})")
                elif r.order_type == "STOP_LOSS_LIMIT":
                    parts.append(f"stop-limit {r.side} {r.quantity}: stop {r.stop_price} (limit {r.stop_limit_price})")
                else:
                    kind = "stop" if r.order_type == "STOP_MARKET" else "take-profit"
                    parts.append(f"{kind} (market) {r.side} {r.quantity} at {r.stop_price}")
            text = "; ".join(parts)
            if self.problem:
                text = (text + "; " if text else "") + f"not protected on the venue: {self.problem}"
            return text

    def ids(self) -> Iterable[str]:
        with self._lock:
            for cid, r in self.active.items():
                yield cid
                if r.order_type == "OCO":
                    yield from leg_ids(cid)
