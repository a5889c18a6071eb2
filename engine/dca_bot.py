"""A DCA bot: 3Commas-style deals with a resting safety-order ladder, on one or several pairs.

Per candle and pair: the venue matches resting orders (safety orders, take-profit steps);
each safety fill re-places the take-profit for the new average and places the next safety
order so that `active_safety_orders` stay resting; stops and trailing exits are checked on the
close (``Deal.track``); then a new deal may start (start condition, cooldown, price range, max
active deals). Every order — base, safety, take-profit, stop — passes the risk engine when it is
placed, with the same context a signal bot's order gets (``engine.ledger``: the mode's exposure,
concurrency, correlation, market health, margin), and quote reserved by resting buys counts as
exposure. Deals, their config snapshot and the venue's resting orders are part of the bot's
snapshot, so a restart continues every deal.
"""
from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from core.portfolio import Portfolio
from core.types import (
    INTERVAL_MS,
    Candle,
    Fill,
    Mode,
    OrderPurpose,
    OrderStatus,
    Side,
    TradingState,
    Tranche,
)
from engine.dca_orders import DcaOrders
from engine.dca_protection import DcaProtection
from engine.deal import Deal, DealStatus
from engine.ledger import RiskEnv, StateOf
from executors.venue import RestingOrder, SimVenue
from risk.engine import RiskEngine
from risk.monitor import Breach, RiskMonitor
from state.models import BotSnapshot, OrderRecord, PositionView, TrancheView
from strategy.base import NoStrategy, Strategy, history_window
from strategy.dca import stop_loss_price
from strategy.dca_params import DcaParams
from strategy.dca_settings import DcaConfig

if TYPE_CHECKING:
    from executors.base import Executor
    from executors.protection import VenueProtection

_ENTRY, _EXIT, _FLATTEN = OrderPurpose.ENTRY, OrderPurpose.EXIT, OrderPurpose.FLATTEN


class DcaBot(DcaOrders, DcaProtection):
    def __init__(self, name: str, mode: Mode, pairs: list[str], settings: "DcaConfig",
                 strategy: Strategy | None, executor: "Executor", venue: SimVenue, risk: RiskEngine,
                 portfolio: Portfolio, state_of: StateOf, interval: str = "1m",
                 monitor: RiskMonitor | None = None, env: RiskEnv | None = None) -> None:
        super().__init__(name, mode, portfolio, risk, executor, state_of, monitor, env)
        self.symbols = list(pairs)
        self.symbol = self.symbols[0]
        self.settings = settings  # strategy.dca_settings.DcaConfig; deals copy it at start
        self.strategy = strategy or NoStrategy()
        self.venue = venue
        self.leverage = float(settings.leverage)
        self.interval_ms = INTERVAL_MS[interval]
        self.history: dict[str, deque[Candle]] = {s: deque(maxlen=history_window(self.strategy))
                                                  for s in self.symbols}
        self.last_price: dict[str, float] = {}
        self.last_time: dict[str, int] = {}
        self.deals: dict[str, Deal] = {}  # active deal per pair
        self.last_closed_at: dict[str, int] = {}
        self.deal_seq = 0
        self.candles_seen = 0
        self._closed_deals: list[Deal] = []
        self._deal_params: dict[str, DcaParams] = {}
        self._ladders: dict[str, list] = {}  # type: ignore[type-arg]
        self._unladdered: set[str] = set()  # pairs whose deal lost its resting orders to a halt
        self.guards: dict[str, "VenueProtection"] = {}  # USD-M venue bots: each deal's stop resting on the venue
        self._protective_saved: dict[str, dict[str, list[int]]] = {}
        self._guards_loaded = False

    # ---- properties the worker uses -------------------------------------------------------
    @property
    def last_candle_time(self) -> int:  # type: ignore[override]
        return max(self.last_time.values(), default=0)

    @property
    def exposure(self) -> str:
        parts = [f"{d.symbol} deal {d.id} {'+' if d.long else '-'}{d.quantity:.6g}" for d in self.deals.values()
                 if d.quantity]
        n = len(self.venue.book)
        if n:
            parts.append(f"{n} resting order(s)")
        return "; ".join(parts)

    def equity(self) -> float:
        return self.portfolio.equity(self.last_price)

    # ---- inputs ---------------------------------------------------------------------------
    def warm(self, candles: list[Candle]) -> None:
        for c in candles:
            if c.symbol in self.history:
                self.history[c.symbol].append(c)
                self.last_price[c.symbol] = c.close
                self.last_time[c.symbol] = max(self.last_time.get(c.symbol, 0), c.open_time)

    def on_candle(self, c: Candle) -> None:
        if c.symbol not in self.history or c.open_time <= self.last_time.get(c.symbol, -1):
            return
        self.history[c.symbol].append(c)
        self.last_price[c.symbol] = c.close
        self.last_time[c.symbol] = c.open_time
        self.candles_seen += 1
        self._seq = 0
        now = c.open_time + self.interval_ms
        self.resume_protection()
        deal = self.deals.get(c.symbol)
        if deal is not None:
            self._on_fills(deal, self.venue.match(c), now)
            self._venue_stop(c.symbol, c, now)  # what the venue's stop did comes before the bot's own exits
        self.settle_funding(c.symbol, now, c.close)  # USD-M simulated: after the ladder's fills in the candle
        deal = self.deals.get(c.symbol)
        if deal is not None:
            self._track(deal, c, now)
        deal = self.deals.get(c.symbol)
        if deal is not None and c.symbol in self._unladdered:
            self._relay(deal, now)
        elif deal is not None and deal.blocked and self.state().allows_entries:
            self._place_safety_orders(deal, now)  # the rule that refused it may have lifted
        if c.symbol not in self.deals:
            self._maybe_start(c, now)
        self._protect_deal(c.symbol, now)
        self._mark(now)

    def sync_venue(self) -> bool:
        """Book fills the venue reported between candles (a live venue's user-data stream), at once.
        True when there was something to book. Deal times stay on the market's clock (the last
        candle's close or the venue's trade time, whichever is later), as on the candle path."""
        got = False
        self.resume_protection()
        for symbol in self.symbols:
            fills = self.venue.take(symbol)
            now = max([self.last_candle_time + self.interval_ms, *(f.time for _, f in fills)])
            if fills:
                deal = self.deals.get(symbol)
                if deal is not None:
                    self._on_fills(deal, fills, now)
                else:
                    self._orphan_fills(fills)
            # the venue's stop is asked for when an event or a reconciliation that disagrees marked it
            # dirty: a stop that fired is booked before a difference is called drift
            stopped = self._venue_stop(symbol, None, now)
            if fills or stopped:
                got = True
                self._protect_deal(symbol, now)
                self._mark(now)
        return got

    def book_fills(self, fills: list[Fill], reason: str) -> None:
        """Fills found later (recovery of an ambiguous market order after a crash): booked so the
        bot's books match the venue; they belong to no deal."""
        self._orphan_fills([(RestingOrder(f.client_order_id, self.name, f.symbol, f.side.value, f.quantity, f.price,
                                          reason), f) for f in fills])

    def _orphan_fills(self, fills: list[tuple[RestingOrder, Fill]]) -> None:
        """A fill of an order whose deal already ended (it filled while being canceled): booked, so the
        bot's books match the venue, and said so."""
        for order, fill in fills:
            self.book(fill, f"{order.tag} filled after its deal ended", "")

    def cancel_resting(self, reason: str) -> int:
        """Cancel every resting order (HALTED: no order may stay working). Fills that raced the
        cancels are booked. The deals keep running: their ladder and take-profit are placed again
        on the first candle the state allows it (_relay). Returns how many were canceled."""
        n = 0
        for o in self.venue.open_orders():
            if self.venue.cancel(o.client_order_id) is None:
                continue
            self._record_cancel(o, reason)
            n += 1
            deal = self.deals.get(o.symbol)
            if deal is not None:
                self._unladdered.add(o.symbol)
                if o.tag.startswith("SO"):
                    deal.safety_placed -= 1  # the highest levels rest: they go back on the list
        self.sync_venue()
        return n

    def _relay(self, deal: Deal, now: int) -> None:
        """Put back what cancel_resting took off, once the state allows it."""
        state = self.state()
        if not state.allows_exits:
            return
        if not any(o.tag.startswith("TP") for o in self.venue.open_orders(deal.symbol)):
            self._place_take_profit(deal, now)
        if state.allows_entries:
            self._place_safety_orders(deal, now)
            self._unladdered.discard(deal.symbol)

    def flatten(self, reason: str) -> bool:
        now = self.last_candle_time + self.interval_ms
        for deal in list(self.deals.values()):
            self._close_market(deal, self.last_price.get(deal.symbol, deal.average), now, reason, DealStatus.CLOSED)
        for o in self.venue.open_orders():
            self._cancel(o)
        for symbol in list(self.deals):
            self._protect_deal(symbol, now)  # a close the venue refused leaves the deal protected
        self._mark(now)
        return not self.deals

    # ---- deal lifecycle ---------------------------------------------------------------------
    def _maybe_start(self, c: Candle, now: int) -> None:
        cfg = self.settings
        if not self.state().allows_entries or len(self.deals) >= cfg.max_active_deals:
            return
        if now - self.last_closed_at.get(c.symbol, -10**15) < cfg.cooldown_s * 1000:
            return
        if (cfg.price_min and c.close < cfg.price_min) or (cfg.price_max and c.close > cfg.price_max):
            return
        want = Side.BUY if cfg.side == "long" else Side.SELL
        if cfg.start_condition == "signal":
            hist = self.history[c.symbol]
            if len(hist) < self.strategy.warmup or self.strategy.evaluate(tuple(hist)).side is not want:
                return
        self.deal_seq += 1
        deal = Deal(id=f"{self.name}-{self.deal_seq}", bot=self.name, symbol=c.symbol, side=cfg.side,
                    config=cfg.model_dump(), opened_at=now)
        deal.move(DealStatus.BASE_ORDER, now)
        qty = cfg.base_order / c.close
        # The stop the deal will have, so the per-trade loss is judged at it (not at the whole notional).
        sl = stop_loss_price(c.close, c.close, cfg.params())
        deal.stop_price = float(sl) if sl is not None else None
        fills = self._market(deal, _ENTRY, want, qty, c.close, now, "base order")
        if not fills:
            return  # denied by risk: no deal (the denial is recorded)
        if self.monitor is not None:
            self.monitor.on_entry(now)  # the minimum entry interval runs between deals
        deal.base_price = fills[0].price
        for f in fills:
            deal.add_tranche(Tranche(f.price, f.quantity, f.time, f.fee, f.client_order_id, "BO"))
        sl = stop_loss_price(deal.average, deal.base_price, cfg.params())
        deal.stop_price = float(sl) if sl is not None else None
        self.deals[c.symbol] = deal
        deal.move(DealStatus.AVERAGING if cfg.max_safety_orders else DealStatus.TAKING_PROFIT, now)
        self._place_safety_orders(deal, now)
        self._place_take_profit(deal, now)

    def _on_fills(self, deal: Deal, fills: list[tuple[RestingOrder, Fill]], now: int) -> None:
        """Book a batch of resting-order fills. Safety fills first, then take-profit fills; the
        take-profit is re-placed once, after the batch, for what the deal then holds: a candle (or
        a stream burst) that fills a safety order *and* the old take-profit must not leave a new
        take-profit bigger than the position."""
        fills = sorted(fills, key=lambda of: not of[0].tag.startswith("SO"))
        replace_tp = False
        for i, (order, fill) in enumerate(fills):
            if not deal.active:  # closed by an earlier fill of this batch: book the rest, lose nothing
                self._orphan_fills(fills[i:])
                return
            self._out.orders.append(OrderRecord(
                client_order_id=order.client_order_id, bot=self.name, symbol=order.symbol, side=order.side,
                quantity=order.quantity, purpose="ENTRY" if order.tag.startswith("SO") else "EXIT",
                order_type="LIMIT", price=order.price, status=OrderStatus.FILLED.value, created_at=now,
                reason=f"{deal.id} {order.tag} filled"))
            if order.tag.startswith("SO"):
                self.book(fill, "", deal.id)
                deal.add_tranche(Tranche(fill.price, fill.quantity, fill.time, fill.fee, fill.client_order_id,
                                         order.tag))
                deal.safety_filled += 1
                if deal.config.get("stop_loss_reference") == "average" and deal.config.get("stop_loss_pct"):
                    sl = stop_loss_price(deal.average, deal.base_price, self._params(deal))
                    deal.stop_price = float(sl) if sl is not None else None
                deal.move(DealStatus.AVERAGING, now)
                self._place_safety_orders(deal, now)
                replace_tp = True
            else:
                deal.reduce(fill.quantity)
                deal.tp_steps_filled += 1
                deal.fees += fill.fee
                trade = self.book(fill, f"take_profit {order.tag}", deal.id)
                if trade is not None:
                    deal.realized_pnl += trade.pnl
                if deal.config.get("move_stop_to_breakeven") and deal.tp_steps_filled == 1 and deal.tranches:
                    deal.stop_price = deal.entry_average()
                if deal.quantity <= 0 or self._write_off_dust(deal, fill.price):
                    self._finish(deal, now, DealStatus.CLOSED, "take profit")
                    continue
                if replace_tp:  # the old take-profit was sized before this batch's safety fills
                    deal.tp_steps_filled = 0
                deal.move(DealStatus.TAKING_PROFIT, now)
        if replace_tp and deal.active:
            self._place_take_profit(deal, now)

    def _track(self, deal: Deal, c: Candle, now: int) -> None:
        exit_ = deal.track(c, self._params(deal))
        if exit_ is None:
            return
        reason, status = exit_
        self._close_market(deal, c.close, now, reason, status)
        if status is DealStatus.STOPPED and deal.config.get("stop_and_disable"):
            # the bot is paused until an operator resumes it (applied by the owner, as any breach)
            self.queue_breaches([Breach("stop_and_disable", TradingState.PAUSED,
                                        f"deal {deal.id} stopped at {c.close:.8g}: stop-and-disable")])

    def _close_market(self, deal: Deal, price: float, now: int, reason: str, status: DealStatus) -> None:
        self._release_stop(deal, now)  # the venue's stop first: the venue never closes the deal twice
        if not deal.active:
            return
        for o in self.venue.open_orders(deal.symbol):
            self._cancel(o)
        late = self.venue.take(deal.symbol)  # filled on a live venue while being canceled
        if late:
            self._on_fills(deal, late, now)  # booked first, so the close is sized on what is held
            if not deal.active:
                return
            for o in self.venue.open_orders(deal.symbol):
                self._cancel(o)
        if deal.quantity > 0:
            side = Side.SELL if deal.long else Side.BUY
            purpose = _FLATTEN if status is DealStatus.CLOSED and reason != "trailing take profit" else _EXIT
            fills = self._market(deal, purpose, side, deal.quantity, price, now, reason)
            for f in fills:
                deal.reduce(f.quantity)
            if fills and deal.quantity > 0:
                self._write_off_dust(deal, fills[-1].price)
        if deal.quantity <= 0:
            self._finish(deal, now, status, reason)

    def _finish(self, deal: Deal, now: int, status: DealStatus, reason: str) -> None:
        for o in self.venue.open_orders(deal.symbol):
            self._cancel(o)  # take profit or stop cancels every resting order
        deal.move(status, now)
        deal.closed_at, deal.close_reason = now, reason
        self.deals.pop(deal.symbol, None)
        self._deal_params.pop(deal.id, None)
        self._ladders.pop(deal.id, None)
        self._unladdered.discard(deal.symbol)
        self.last_closed_at[deal.symbol] = now
        self._closed_deals.append(deal)

    def _mark(self, now: int) -> None:
        self.mark(now, self.equity())

    # ---- outputs --------------------------------------------------------------------------
    def snapshot(self, now_ms: int) -> BotSnapshot:
        views = []
        for s, p in self.portfolio.positions.items():
            if p.is_open:
                mark = self.last_price.get(s, p.avg_entry)
                deal = self.deals.get(s)
                views.append(PositionView(symbol=s, side=p.side.value if p.side else "", quantity=p.quantity,
                                          avg_entry=p.avg_entry, mark=mark, unrealized_pnl=p.unrealized_pnl(mark),
                                          opened_at=p.opened_at, entry_fees=p.entry_fees,
                                          stop_loss=deal.stop_price if deal else None,
                                          tranches=[TrancheView(price=t.price, quantity=t.quantity, time=t.time,
                                                                fee=t.fee, order_id=t.tag)
                                                    for t in (deal.tranches if deal else [])]))
        eq = self.equity()
        lim = self.risk.limits
        exposure = self._exposure_value() + self.venue.reserved_quote()
        caps = [x for x in (lim.max_position_value,
                            None if lim.max_bot_exposure_pct is None else lim.max_bot_exposure_pct / 100 * eq) if x]
        return self.base_snapshot(
            now_ms, eq, exposure, min(caps) if caps else None,
            symbol=self.symbol, strategy="dca", last_price=self.last_price.get(self.symbol, 0.0),
            candles_seen=self.candles_seen, base_balance=sum(p.quantity for p in self.portfolio.positions.values()),
            unrealized_pnl=self.portfolio.unrealized(self.last_price),
            position=views[0] if len(views) == 1 else None, positions=views,
            dca={"deals": [d.dump() for d in self.deals.values()], "resting": self.venue.dump(),
                 "deal_seq": self.deal_seq, "last_closed_at": self.last_closed_at,
                 "last_time": self.last_time, "last_price": self.last_price,
                 "unladdered": sorted(self._unladdered), "protective_booked": self.protection_dump()},
            **({"protection": self.protection_view()} if self.guards else {}),
        )

    def drain(self, now_ms: int):  # type: ignore[no-untyped-def]
        out = super().drain(now_ms)
        out.deals = [d.dump() for d in self._closed_deals]
        self._closed_deals = []
        return out

    def restore(self, snap: BotSnapshot) -> None:
        from core.types import Position

        self.restore_books(snap)
        self.portfolio.positions = {p.symbol: Position(p.symbol, p.quantity, p.avg_entry, p.opened_at, p.entry_fees)
                                    for p in snap.positions}
        d = snap.dca or {}
        self.deals = {x["symbol"]: Deal.load(x) for x in d.get("deals", [])}  # type: ignore[index,union-attr]
        self.venue.load(d.get("resting", []))  # type: ignore[arg-type]
        for deal in self.deals.values():
            # A live venue may adopt a safety order placed after the last snapshot: count it as placed.
            placed = [int(o.tag[2:]) for o in self.venue.open_orders(deal.symbol)
                      if o.tag.startswith("SO") and o.tag[2:].isdigit()]
            deal.safety_placed = max([deal.safety_placed, *placed])
        self.deal_seq = int(d.get("deal_seq", 0))  # type: ignore[arg-type]
        self._unladdered = set(d.get("unladdered", []))  # type: ignore[arg-type]
        self._protective_saved = dict(d.get("protective_booked", {}))  # type: ignore[arg-type]
        self._guards_loaded = False  # asked for again at the first step (resume_protection)
        self.last_closed_at = dict(d.get("last_closed_at", {}))  # type: ignore[arg-type]
        self.last_time = {k: int(v) for k, v in dict(d.get("last_time", {})).items()}  # type: ignore[arg-type]
        self.last_price = {k: float(v) for k, v in dict(d.get("last_price", {})).items()}  # type: ignore[arg-type]
        self.candles_seen = snap.candles_seen
