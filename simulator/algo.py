"""USD-M conditional orders on the Algo service (``/fapi/v1/algoOrder``, since 2025-12-09, §0.5).

Types: STOP_MARKET, TAKE_PROFIT_MARKET, STOP, TAKE_PROFIT, TRAILING_STOP_MARKET, with
``algoType=CONDITIONAL``. Trigger rules (§5): STOP* BUY fires when the price reaches
``triggerPrice`` from below, SELL from above; TAKE_PROFIT* the reverse; a trailing stop tracks the
best price since activation and fires on a ``callbackRate`` % pull-back. The price tested is the
bar's range (mark = last price here, so ``workingType`` MARK_PRICE and CONTRACT_PRICE behave
alike). An order that would fire at once is rejected (-2021). When it fires, the actual order
(MARKET, or LIMIT at ``price`` for STOP/TAKE_PROFIT) goes to the futures engine;
``closePosition=true`` closes the whole position. Algo orders reserve no margin until they fire.
Statuses: NEW -> TRIGGERED (actual order resting) / FINISHED (actual order done), CANCELED,
REJECTED (the actual order was refused, e.g. nothing left to close).
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

from simulator import errors
from simulator.errors import ApiError
from simulator.filters import is_multiple
from simulator.futures import FuturesEngine, FuturesNewOrder, sign
from simulator.params import decimal_param, str_param
from simulator.prices import Bar

ZERO = Decimal(0)
ALGO_TYPES = ("STOP_MARKET", "TAKE_PROFIT_MARKET", "STOP", "TAKE_PROFIT", "TRAILING_STOP_MARKET")
MAX_OPEN_ALGO = 10


@dataclass(slots=True)
class AlgoOrder:
    algo_id: int
    client_algo_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    quantity: Decimal
    price: Decimal
    trigger_price: Decimal
    working_type: str
    close_position: bool
    reduce_only: bool
    price_protect: bool
    create_time: int
    activation_price: Decimal = ZERO
    callback_rate: Decimal = ZERO
    status: str = "NEW"
    update_time: int = 0
    trigger_time: int = 0
    actual_order_id: int | None = None
    extreme: Decimal = ZERO  # trailing stop: best price since activation
    activated: bool = False

    @property
    def is_open(self) -> bool:
        return self.status == "NEW"


def _fires(a: AlgoOrder, low: Decimal, high: Decimal) -> bool:
    stop = a.type in ("STOP", "STOP_MARKET")
    if a.side == "BUY":
        return high >= a.trigger_price if stop else low <= a.trigger_price
    return low <= a.trigger_price if stop else high >= a.trigger_price


class AlgoBook:
    def __init__(self, futures: FuturesEngine, clock: Callable[[], int]) -> None:
        self.futures = futures
        self.clock = clock
        self.orders: dict[int, AlgoOrder] = {}
        self.by_client_id: dict[str, AlgoOrder] = {}
        self._next_id = 3_000_000_000
        self.listeners: list[Callable[[AlgoOrder], None]] = []

    def _emit(self, a: AlgoOrder) -> None:
        for listener in self.listeners:
            listener(a)

    def place(self, params: dict[str, str]) -> AlgoOrder:
        symbol = str_param(params, "symbol", True)
        assert symbol is not None
        spec = self.futures.specs.get(symbol)
        if spec is None:
            raise errors.invalid_symbol()
        algo_type = str_param(params, "algoType", True)
        if algo_type != "CONDITIONAL":
            raise errors.illegal_param("Invalid algoType.")
        side = str_param(params, "side", True)
        if side not in ("BUY", "SELL"):
            raise errors.invalid_side()
        otype = str_param(params, "type", True)
        if otype not in ALGO_TYPES:
            raise errors.invalid_order_type()
        if (params.get("positionSide") or "BOTH") != "BOTH":
            raise ApiError(-4061, "Order's position side does not match user's setting.")
        close_position = (params.get("closePosition") or "").lower() == "true"
        reduce_only = (params.get("reduceOnly") or "").lower() == "true"
        qty = decimal_param(params, "quantity", required=not close_position)
        if close_position and qty is not None:
            raise errors.not_required("quantity")
        price = decimal_param(params, "price", required=otype in ("STOP", "TAKE_PROFIT"))
        mark = self.futures.mark(symbol)
        trigger = decimal_param(params, "triggerPrice", required=otype != "TRAILING_STOP_MARKET")
        activation = decimal_param(params, "activationPrice")
        callback = decimal_param(params, "callbackRate", required=otype == "TRAILING_STOP_MARKET")
        if callback is not None and not Decimal("0.1") <= callback <= Decimal("10"):
            raise ApiError(-2007, "Invalid callBack rate.")
        for value in (price, trigger, activation):
            if value is not None and not is_multiple(value, spec.tick_size):
                raise ApiError(-4014, "Price not increased by tick size.")
        if qty is not None:
            if qty <= 0:
                raise ApiError(-4003, "Quantity less than or equal to zero.")
            if not is_multiple(qty, spec.step_size):
                raise ApiError(-4023, "Qty not increased by step size.")
            if qty < spec.min_qty:
                raise ApiError(-4004, "Quantity less than min qty.")
        if trigger is not None:
            probe = AlgoOrder(0, "", symbol, side, otype, "GTC", ZERO, ZERO, trigger, "", False, False, False, 0)
            if _fires(probe, mark, mark):
                raise ApiError(-2021, "Order would immediately trigger.")
        if len([a for a in self.orders.values() if a.is_open and a.symbol == symbol]) >= MAX_OPEN_ALGO:
            raise errors.filter_failure("MAX_NUM_ALGO_ORDERS")
        cid = params.get("clientAlgoId") or "web_" + secrets.token_hex(10)
        prev = self.by_client_id.get(cid)
        if prev is not None and prev.is_open:
            raise ApiError(-4116, "ClientOrderId is duplicated.")
        now = self.clock()
        self._next_id += 1
        a = AlgoOrder(
            algo_id=self._next_id, client_algo_id=cid, symbol=symbol, side=side, type=otype,
            time_in_force=params.get("timeInForce") or "GTC", quantity=qty or ZERO, price=price or ZERO,
            trigger_price=trigger or ZERO, working_type=params.get("workingType") or "CONTRACT_PRICE",
            close_position=close_position, reduce_only=reduce_only or close_position,
            price_protect=(params.get("priceProtect") or "").lower() == "true", create_time=now, update_time=now,
            activation_price=activation or ZERO, callback_rate=callback or ZERO,
        )
        if otype == "TRAILING_STOP_MARKET" and (activation is None or
                                                 (side == "SELL" and mark >= activation) or
                                                 (side == "BUY" and mark <= activation)):
            a.activated, a.extreme = True, mark
        self.orders[a.algo_id] = a
        self.by_client_id[cid] = a
        self._emit(a)
        return a

    def find(self, algo_id: int | None, client_algo_id: str | None) -> AlgoOrder | None:
        if algo_id is not None:
            return self.orders.get(algo_id)
        if client_algo_id is not None:
            return self.by_client_id.get(client_algo_id)
        return None

    def cancel(self, algo_id: int | None, client_algo_id: str | None) -> AlgoOrder:
        a = self.find(algo_id, client_algo_id)
        if a is None or not a.is_open:
            raise errors.unknown_order_cancel()
        a.status, a.update_time = "CANCELED", self.clock()
        self._emit(a)
        return a

    def open_orders(self, symbol: str | None = None) -> list[AlgoOrder]:
        return [a for a in self.orders.values() if a.is_open and (symbol is None or a.symbol == symbol)]

    # -- triggering ----------------------------------------------------------------------------

    def _trailing_fires(self, a: AlgoOrder, bar: Bar) -> bool:
        if not a.activated:
            if (a.side == "SELL" and bar.high >= a.activation_price) or (a.side == "BUY" and bar.low <= a.activation_price):
                a.activated = True
                a.extreme = a.activation_price
            else:
                return False
        rate = a.callback_rate / 100
        if a.side == "SELL":
            a.extreme = max(a.extreme, bar.high)
            return bar.close <= a.extreme * (1 - rate)
        a.extreme = min(a.extreme, bar.low)
        return bar.close >= a.extreme * (1 + rate)

    def on_bar(self, bar: Bar) -> None:
        for a in self.open_orders(bar.symbol):
            fired = self._trailing_fires(a, bar) if a.type == "TRAILING_STOP_MARKET" else _fires(a, bar.low, bar.high)
            if fired:
                self._trigger(a)

    def _trigger(self, a: AlgoOrder) -> None:
        now = self.clock()
        a.trigger_time = a.update_time = now
        pos = self.futures.positions[a.symbol]
        qty = a.quantity
        if a.close_position:
            closing = pos.amt != 0 and sign(pos.amt) != (1 if a.side == "BUY" else -1)
            qty = abs(pos.amt) if closing else ZERO
        market = a.type.endswith("_MARKET")
        req = FuturesNewOrder(
            symbol=a.symbol, side=a.side, type="MARKET" if market else "LIMIT",
            time_in_force="GTC" if market else a.time_in_force, quantity=qty,
            price=None if market else a.price, reduce_only=a.reduce_only,
            client_order_id=None, resp_type="RESULT",
        )
        try:
            if qty <= 0:
                raise ApiError(-2022, "ReduceOnly Order is rejected.")
            order, _ = self.futures.place(req)
        except ApiError:
            a.status = "REJECTED"
        else:
            a.actual_order_id = order.order_id
            a.status = "TRIGGERED" if order.is_open else "FINISHED"
        self._emit(a)
