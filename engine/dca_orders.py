"""A DCA bot's orders: the ladder's safety orders and take-profit steps resting on its venue, market
orders (base order, stops, closes), cancels, and the dust a real venue cannot sell — each through the
risk engine with the shared ledger's context (``engine.ledger``). ``engine.dca_bot.DcaBot`` runs the
deals on top of it."""
from __future__ import annotations

from core.ids import client_order_id
from core.types import Fill, Order, OrderPurpose, OrderStatus, OrderType, Side
from engine.deal import Deal, DealStatus
from engine.ledger import Ledger
from executors.venue import RestingOrder, SimVenue
from state.models import OrderRecord
from strategy.dca import ladder, take_profit_plan
from strategy.dca_params import DcaParams
from strategy.dca_settings import DcaConfig

_ENTRY, _EXIT = OrderPurpose.ENTRY, OrderPurpose.EXIT


class DcaOrders(Ledger):
    """Set by the DCA bot: its venue, its prices and the validated params of each running deal."""

    venue: SimVenue
    last_price: dict[str, float]
    _deal_params: dict[str, DcaParams]
    _ladders: dict[str, list]  # type: ignore[type-arg]
    last_reason: str = ""  # why the last resting order was not placed

    def _exposure_value(self) -> float:
        return sum(abs(p.quantity) * self.last_price.get(s, p.avg_entry) for s, p in self.portfolio.positions.items())

    def _params(self, deal: Deal) -> DcaParams:
        """The deal's own settings (its config snapshot), validated once per deal, not per candle."""
        cached = self._deal_params.get(deal.id)
        if cached is None:
            cached = self._deal_params[deal.id] = DcaConfig.model_validate(deal.config).params()
        return cached

    def _place_safety_orders(self, deal: Deal, now: int) -> None:
        """Keep ``active_safety_orders`` resting, as 3Commas does. One a rule refuses (blackout hours, a
        cooldown, a limit) is marked ``deal.blocked`` with the rule and placed on the first candle the
        rule lets it (DcaBot.on_candle tries again while the deal is blocked)."""
        cfg = deal.config
        active = cfg["active_safety_orders"] if cfg["active_safety_orders"] is not None else min(1, cfg["max_safety_orders"])
        levels = self._levels(deal)
        resting = sum(1 for o in self.venue.open_orders(deal.symbol) if o.tag.startswith("SO"))
        while deal.safety_placed < len(levels) and resting < int(active):  # type: ignore[arg-type]
            lv = levels[deal.safety_placed]
            side = Side.BUY if deal.long else Side.SELL
            if not self._rest(deal, _ENTRY, side, float(lv.base_qty), float(lv.price), lv.name, now):
                deal.blocked = f"{lv.name} not resting: {self.last_reason or 'refused'}"
                return
            deal.safety_placed += 1
            resting += 1
        deal.blocked = ""

    def _levels(self, deal: Deal) -> list:  # type: ignore[type-arg]
        """SO1..SON of the deal's ladder, worked out once per deal."""
        cached = self._ladders.get(deal.id)
        if cached is None:
            cached = self._ladders[deal.id] = ladder(self._params(deal), deal.base_price).levels[1:]
        return cached

    def _place_take_profit(self, deal: Deal, now: int) -> None:
        for o in self.venue.open_orders(deal.symbol):
            if o.tag.startswith("TP"):
                self._cancel(o)
        late = self.venue.take(deal.symbol)
        if late:
            # The old take-profit (or a safety order) filled on the venue while we replaced it: book that
            # first, so the new take-profit is sized on what the deal holds now (not on the full position
            # before a take-profit step sold part of it: the venue would refuse it).
            self._on_fills(deal, late, now)
            if not deal.active or any(o.tag.startswith("TP") for o in self.venue.open_orders(deal.symbol)):
                return  # closed, or _on_fills placed the take-profit for what is left
        if deal.quantity <= 0 or deal.config.get("trailing_take_profit_pct"):
            return  # a trailing take-profit exits at market from _track()
        side = Side.SELL if deal.long else Side.BUY
        plan = take_profit_plan(deal.quantity, deal.average, deal.remaining_tp_params(self._params(deal)))
        for i, (qty, price) in enumerate(plan):
            if not self._rest(deal, _EXIT, side, float(qty), float(price), f"TP{deal.tp_steps_filled + i + 1}", now):
                break

    def _write_off_dust(self, deal: Deal, price: float) -> bool:
        """What a real venue cannot sell (below its lot step or minimum notional) leaves the deal and
        the bot's position and goes to the reconciliation baseline with the books (``dust_key``). True if done."""
        if deal.quantity <= 0 or not self.venue.unsellable(deal.symbol, deal.quantity, price):
            return False
        dust = deal.quantity
        deal.reduce(dust)
        pos = self.portfolio.position(deal.symbol)
        if pos.is_open and abs(pos.quantity) <= dust * (1 + 1e-9):
            self.write_off(deal.symbol, price)
        return True

    def _cancel(self, o: RestingOrder) -> None:
        """Cancel a resting order and say so in the orders history."""
        if self.venue.cancel(o.client_order_id) is not None:
            self._record_cancel(o, "")

    def _record_cancel(self, o: RestingOrder, why: str) -> None:
        self._out.orders.append(OrderRecord(
            client_order_id=o.client_order_id, bot=self.name, symbol=o.symbol, side=o.side, quantity=o.quantity,
            purpose="ENTRY" if o.tag.startswith("SO") else "EXIT", order_type="LIMIT", price=o.price,
            status=OrderStatus.CANCELED.value, created_at=self.last_candle_time + self.interval_ms,
            reason=f"{o.tag} canceled" + (f" ({why})" if why else "")))

    def _check(self, order: Order, deal: Deal, now: int) -> bool:
        # A resting order is judged when it is placed, as if it filled at its price; quote reserved
        # by the other resting buys already counts as exposure and is not spendable. The minimum
        # entry interval applies between deals (base orders), not to a ladder planned as one decision.
        price = order.price or self.last_price.get(order.symbol, 0.0)
        reserved = self.venue.reserved_quote()
        ctx = self.context(order.symbol, self.portfolio.position(order.symbol), price, self.equity(),
                           self.portfolio.quote - reserved, now, deal.stop_price, self._exposure_value() + reserved,
                           order.purpose is _ENTRY, last_entry=deal.status is DealStatus.BASE_ORDER)
        return self.decide(order, ctx, count_entry=False)

    def _order(self, deal: Deal, purpose: OrderPurpose, side: Side, qty: float, now: int, reason: str,
               order_type: OrderType = OrderType.MARKET, price: float | None = None) -> Order:
        self._seq += 1
        return Order(client_order_id(f"{self.name}:{deal.symbol}", now, purpose, self._seq), self.name, deal.symbol,
                     side, qty, purpose, order_type=order_type, price=price, created_at=now, reason=reason,
                     reduce_only=self.reduce_only_exits and purpose is not _ENTRY)

    def _market(self, deal: Deal, purpose: OrderPurpose, side: Side, qty: float, price: float, now: int,
                reason: str) -> list[Fill]:
        if purpose is _EXIT and self._refused and self.exit_waits(deal.symbol):
            return []  # the venue refused the last exits: wait before the next attempt
        order = self._order(deal, purpose, side, qty, now, f"{deal.id} {reason}")
        order.price = price
        if not self._check(order, deal, now):
            return []
        order.price = None
        fills = self.executor.execute(order, price, now)
        self.orders_sent += 1
        self.record_order(order)
        if purpose is not _ENTRY:
            self.exit_outcome(deal.symbol, order, bool(fills))
        for f in fills:
            trade = self.book(f, reason, deal.id)
            if trade is not None:
                deal.realized_pnl += trade.pnl
        return fills

    def _rest(self, deal: Deal, purpose: OrderPurpose, side: Side, qty: float, price: float, tag: str, now: int) -> bool:
        order = self._order(deal, purpose, side, qty, now, f"{deal.id} {tag}", OrderType.LIMIT, price)
        if not self._check(order, deal, now):
            self.last_reason = f"risk {self.last_denial}"
            return False
        resting = RestingOrder(order.client_order_id, self.name, deal.symbol, side.value, qty, price, tag, now)
        self.orders_sent += 1
        if not self.venue.place(resting, purpose):
            order.status = OrderStatus.REJECTED
            self.last_reason = getattr(self.venue, "last_reason", "") or "refused by the venue"
            order.reason = f"{order.reason}: {self.last_reason}"
            self.record_order(order)
            if purpose is not _ENTRY:
                self.exit_outcome(deal.symbol, order, False)
            return False
        order.status = OrderStatus.NEW
        order.quantity, order.price = resting.quantity, resting.price  # as sent (venue filters)
        self.record_order(order)
        return True
