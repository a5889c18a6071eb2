"""Spot order lists: the OCO (one-cancels-the-other), with Binance's contingency rules.

An OCO has an *above* leg and a *below* leg of the same side and quantity (``POST
/api/v3/orderList/oco``; the older ``POST /api/v3/order/oco`` builds the same two legs from a
LIMIT_MAKER and a STOP_LOSS[_LIMIT]):

* SELL: above LIMIT_MAKER / TAKE_PROFIT / TAKE_PROFIT_LIMIT, below STOP_LOSS / STOP_LOSS_LIMIT,
  with take-profit level > last price > stop price; BUY the mirror (stop above, take profit below).
  Which leg may sit where is checked in ``order_list_params.py``; the prices against the last
  price here (-2010 "The relationship of the prices for the orders is not correct."), then each
  leg passes every single-order rule (filters, LIMIT_MAKER would take, would trigger, duplicate
  client id, MAX_NUM_ORDERS and MAX_NUM_ALGO_ORDERS counting both legs).
* The funds are locked once for the list (SELL: the quantity of base; BUY: the larger of the two
  legs' quote amounts), on the leg that can execute first: the LIMIT_MAKER leg, else the first leg.
  When a stop/take-profit leg triggers, the lock moves to it.
* When one leg trades or triggers, the other EXPIRES and the list is ALL_DONE. A triggered
  ``*_LIMIT`` leg then works on as an ordinary order (it keeps its ``orderListId``), so it is
  canceled with ``DELETE /api/v3/order``; ``DELETE /api/v3/orderList`` answers -2011 for a list
  that is ALL_DONE.
* Canceling the list, or any open leg of a working list, cancels both legs (Binance's rule).
* Legs are placed (and listed) stop-loss leg first, as in Binance's examples. Events: each leg's
  ``executionReport`` (``g`` = the list id) and a ``listStatus`` when the list starts
  (EXEC_STARTED / EXECUTING) and when it ends (ALL_DONE / ALL_DONE).

List ids are account-wide (``GET /api/v3/orderList`` takes no symbol); ``listClientOrderId`` must
be unique among open lists.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

from simulator import errors
from simulator.matching import SpotEngine
from simulator.order_list_params import OcoRequest
from simulator.spot_orders import CONDITIONAL_TYPES, SpotOrder, generate_client_id

ZERO = Decimal(0)


@dataclass(slots=True)
class OrderList:
    order_list_id: int
    list_client_order_id: str
    symbol: str
    first_order_id: int  # the legs, in Binance's order (stop-loss leg first)
    second_order_id: int
    transaction_time: int
    contingency_type: str = "OCO"
    list_status_type: str = "EXEC_STARTED"  # EXEC_STARTED | ALL_DONE (RESPONSE is for failed actions)
    list_order_status: str = "EXECUTING"  # EXECUTING | ALL_DONE | REJECT

    @property
    def is_open(self) -> bool:
        return self.list_order_status == "EXECUTING"

    @property
    def order_ids(self) -> tuple[int, int]:
        return self.first_order_id, self.second_order_id


class OrderListBook:
    def __init__(self, engine: SpotEngine, clock: Callable[[], int]) -> None:
        self.engine = engine
        self.clock = clock
        self.lists: dict[int, OrderList] = {}
        self.by_client_id: dict[str, OrderList] = {}  # the latest list with a client id wins, as for orders
        self._next_id = 1
        self.listeners: list[Callable[[OrderList], None]] = []
        engine.contingency = self

    def _emit(self, lst: OrderList) -> None:
        for listener in self.listeners:
            listener(lst)

    def legs(self, lst: OrderList) -> list[SpotOrder]:
        return [self.engine.orders[(lst.symbol, oid)] for oid in lst.order_ids]

    # -- placing -----------------------------------------------------------------------------------

    def place_oco(self, req: OcoRequest) -> OrderList:
        eng = self.engine
        if req.symbol not in eng.specs:
            raise errors.invalid_symbol()
        cid = req.list_client_order_id
        if cid is not None and (prev := self.by_client_id.get(cid)) is not None and prev.is_open:
            raise errors.duplicate_order()
        _check_price_relationship(req, eng.price(req.symbol))
        # the stop-loss leg first (Binance lists and numbers it first)
        first, second = (req.below, req.above) if req.side == "SELL" else (req.above, req.below)
        a = eng.check(first)
        b = eng.check(second, placed_legs=(first.type,))
        if a.client_order_id == b.client_order_id:
            raise errors.duplicate_order()
        holder, other = (b, a) if b.type == "LIMIT_MAKER" else (a, b)
        spec = eng.specs[req.symbol]
        amount = max(eng.lock_amount(a), eng.lock_amount(b))
        eng.account.lock(spec.quote_asset if req.side == "BUY" else spec.base_asset, amount, a.time)  # -2010
        holder.locked, other.locked = amount, ZERO
        self._next_id += 1
        list_id = self._next_id - 1
        a.order_list_id = b.order_list_id = list_id
        eng.add_leg(a, pending=a.type in CONDITIONAL_TYPES)
        eng.add_leg(b, pending=b.type in CONDITIONAL_TYPES)
        lst = OrderList(list_id, cid or generate_client_id(), req.symbol, a.order_id, b.order_id, a.time)
        self.lists[list_id] = lst
        self.by_client_id[lst.list_client_order_id] = lst
        self._emit(lst)
        return lst

    # -- the engine's hooks (simulator.spot_orders.Contingency) ------------------------------------

    def _other(self, order: SpotOrder) -> tuple[OrderList, SpotOrder] | None:
        lst = self.lists.get(order.order_list_id)
        if lst is None or not lst.is_open:
            return None
        other_id = lst.second_order_id if order.order_id == lst.first_order_id else lst.first_order_id
        return lst, self.engine.orders[(lst.symbol, other_id)]

    def before_trigger(self, order: SpotOrder) -> None:
        found = self._other(order)
        if found is None:
            return
        lst, other = found
        total = order.locked + other.locked
        need = min(self.engine.lock_amount(order), total)
        order.locked, other.locked = need, ZERO
        if total > need:  # BUY: the list held the larger leg's amount
            spec = self.engine.specs[order.symbol]
            self.engine.account.unlock(spec.quote_asset if order.side == "BUY" else spec.base_asset,
                                       total - need, self.clock())
        if other.is_open:
            self.engine.expire(other)
        self._done(lst)

    def after_fill(self, order: SpotOrder) -> None:
        found = self._other(order)
        if found is None:
            return
        lst, other = found
        if other.is_open:
            self.engine.expire(other)  # holds no lock: the trading leg holds it (or took it on trigger)
        self._done(lst)

    def cancel_leg(self, order: SpotOrder, cancel_client_id: str | None) -> bool:
        lst = self.lists.get(order.order_list_id)
        if lst is None or not lst.is_open:
            return False  # a triggered leg of a finished list is an ordinary order now
        self._cancel(lst, {order.order_id: cancel_client_id})
        return True

    # -- canceling and queries ---------------------------------------------------------------------

    def find(self, list_id: int | None, list_client_id: str | None) -> OrderList | None:
        if list_id is not None:
            return self.lists.get(list_id)
        if list_client_id is not None:
            return self.by_client_id.get(list_client_id)
        return None

    def cancel(self, symbol: str, list_id: int | None, list_client_id: str | None) -> OrderList:
        """Cancel a working list (both legs); -2011 if it is unknown, of another symbol or finished."""
        lst = self.find(list_id, list_client_id)
        if lst is None or lst.symbol != symbol or not lst.is_open:
            raise errors.unknown_order_cancel()
        self._cancel(lst)
        return lst

    def _cancel(self, lst: OrderList, cancel_ids: dict[int, str | None] | None = None) -> None:
        for leg in self.legs(lst):
            if leg.is_open:
                self.engine.cancel_open(leg, (cancel_ids or {}).get(leg.order_id))
        self._done(lst)

    def _done(self, lst: OrderList) -> None:
        lst.list_status_type = lst.list_order_status = "ALL_DONE"
        lst.transaction_time = self.clock()
        self._emit(lst)

    def open_lists(self) -> list[OrderList]:
        return [lst for lst in self.lists.values() if lst.is_open]

    def all_lists(self, from_id: int | None, start: int | None, end: int | None, limit: int) -> list[OrderList]:
        rows = sorted(self.lists.values(), key=lambda x: x.order_list_id)
        if from_id is not None:
            return [x for x in rows if x.order_list_id >= from_id][:limit]
        first_time = {x.order_list_id: self.legs(x)[0].time for x in rows}  # the list's creation time
        if start is not None:
            rows = [x for x in rows if first_time[x.order_list_id] >= start]
        if end is not None:
            rows = [x for x in rows if first_time[x.order_list_id] <= end]
        return rows[:limit] if start is not None else rows[-limit:]


def _check_price_relationship(req: OcoRequest, last: Decimal) -> None:
    """SELL: take-profit level > last > stop; BUY: stop > last > take-profit level. The take-profit
    level is a LIMIT_MAKER's / TAKE_PROFIT_LIMIT's price or a TAKE_PROFIT's stop price."""

    def level(leg_type: str, price: Decimal | None, stop: Decimal | None) -> Decimal:
        value = stop if leg_type in ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT") else price
        assert value is not None  # the parser made sure each leg has what its type needs
        return value

    above = level(req.above.type, req.above.price, req.above.stop_price)
    below = level(req.below.type, req.below.price, req.below.stop_price)
    if not below < last < above:
        raise errors.new_order_rejected("The relationship of the prices for the orders is not correct.")
