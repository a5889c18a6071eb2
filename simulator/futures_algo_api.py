"""USD-M conditional orders on the Algo service (``/fapi/v1/algoOrder``, ``openAlgoOrders``,
``allAlgoOrders``, ``algoOpenOrders``; reference/binance-api.md §0.5); the book is ``algo.py``."""
from __future__ import annotations

from simulator import errors
from simulator.algo import AlgoOrder
from simulator.filters import fmt_fixed as _fmt
from simulator.params import int_param, str_param
from simulator.registry import Params, endpoint, limit_param, symbol_param
from simulator.state import SimExchange


def algo_json(ex: SimExchange, a: AlgoOrder) -> dict[str, object]:
    spec = ex.futures_specs[a.symbol]
    actual = ex.futures.orders.get((a.symbol, a.actual_order_id)) if a.actual_order_id else None
    status = "FINISHED" if a.status == "TRIGGERED" and actual is not None and not actual.is_open else a.status
    out: dict[str, object] = {
        "algoId": a.algo_id, "clientAlgoId": a.client_algo_id, "algoType": "CONDITIONAL", "orderType": a.type,
        "symbol": a.symbol, "side": a.side, "positionSide": "BOTH", "timeInForce": a.time_in_force,
        "quantity": spec.fmt_qty(a.quantity), "algoStatus": status,
        "actualOrderId": str(a.actual_order_id) if a.actual_order_id else "",
        "actualPrice": _fmt(actual.avg_price, 5) if actual else "0.00000",
        "triggerPrice": spec.fmt_price(a.trigger_price), "price": spec.fmt_price(a.price),
        "icebergQuantity": None, "selfTradePreventionMode": "EXPIRE_MAKER", "workingType": a.working_type,
        "priceMatch": "NONE", "closePosition": a.close_position, "priceProtect": a.price_protect,
        "reduceOnly": a.reduce_only, "createTime": a.create_time, "updateTime": a.update_time,
        "triggerTime": a.trigger_time, "goodTillDate": 0,
    }
    if a.type == "TRAILING_STOP_MARKET":
        out["activatePrice"] = spec.fmt_price(a.activation_price)
        out["callbackRate"] = str(a.callback_rate)
    return out


def _algo_ref(params: Params) -> tuple[int | None, str | None]:
    aid = int_param(params, "algoId")
    cid = str_param(params, "clientAlgoId")
    if aid is None and cid is None:
        raise errors.one_of_missing("algoId", "clientAlgoId")
    return aid, cid


@endpoint("POST", "/fapi/v1/algoOrder", weight=0, signed=True, order_change=True, new_order=True)
def new_algo_order(ex: SimExchange, params: Params) -> object:
    symbol_param(ex, params)
    return algo_json(ex, ex.algo.place(params))


@endpoint("GET", "/fapi/v1/algoOrder", weight=1, signed=True)
def get_algo_order(ex: SimExchange, params: Params) -> object:
    a = ex.algo.find(*_algo_ref(params))
    if a is None:
        raise errors.order_does_not_exist()
    return algo_json(ex, a)


@endpoint("DELETE", "/fapi/v1/algoOrder", weight=1, signed=True, order_change=True)
def cancel_algo_order(ex: SimExchange, params: Params) -> object:
    a = ex.algo.cancel(*_algo_ref(params))
    return {"algoId": a.algo_id, "clientAlgoId": a.client_algo_id, "code": "200", "msg": "success"}


@endpoint("GET", "/fapi/v1/openAlgoOrders", weight=lambda p: 1 if p.get("symbol") else 40, signed=True)
def open_algo_orders(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params, required=False)
    return [algo_json(ex, a) for a in ex.algo.open_orders(sym)]


@endpoint("GET", "/fapi/v1/allAlgoOrders", weight=5, signed=True)
def all_algo_orders(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params)
    limit = limit_param(params, 500, 1000)
    rows = [a for a in ex.algo.orders.values() if a.symbol == sym]
    return [algo_json(ex, a) for a in rows[-limit:]]


@endpoint("DELETE", "/fapi/v1/algoOpenOrders", weight=1, signed=True, order_change=True)
def cancel_all_algo(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params)
    for a in ex.algo.open_orders(sym):
        ex.algo.cancel(a.algo_id, None)
    return {"code": 200, "msg": "The operation of cancel all open order is done."}
