"""Spot order-list REST handlers (``order_lists.py`` is the book): Binance's paths, weights, shapes.

    POST   /api/v3/orderList/oco   weight 1, 2 orders   new OCO (aboveType/belowType)
    POST   /api/v3/order/oco       weight 1, 2 orders   new OCO, deprecated form (price/stopPrice/stopLimitPrice)
    GET    /api/v3/orderList       weight 4             one list by orderListId or origClientOrderId
    DELETE /api/v3/orderList       weight 1             cancel a working list (symbol + orderListId or listClientOrderId)
    GET    /api/v3/openOrderList   weight 6             the working lists
    GET    /api/v3/allOrderList    weight 20            every list (fromId, startTime, endTime, limit <= 1000)

A list is ``{orderListId, contingencyType, listStatusType, listOrderStatus, listClientOrderId,
transactionTime, symbol, orders: [{symbol, orderId, clientOrderId}]}``; placing and canceling add
``orderReports`` (the legs as order objects: RESULT fields on placement, ``fills`` too with
``newOrderRespType=FULL``; cancel reports as ``DELETE /api/v3/order`` gives them).
"""
from __future__ import annotations

from simulator import errors, responses
from simulator.errors import ApiError
from simulator.order_list_params import parse_legacy_oco, parse_order_list_oco
from simulator.order_lists import OrderList
from simulator.params import int_param, str_param
from simulator.registry import Params, endpoint, limit_param, symbol_param
from simulator.state import SimExchange


def order_list_json(ex: SimExchange, lst: OrderList) -> dict[str, object]:
    return {
        "orderListId": lst.order_list_id,
        "contingencyType": lst.contingency_type,
        "listStatusType": lst.list_status_type,
        "listOrderStatus": lst.list_order_status,
        "listClientOrderId": lst.list_client_order_id,
        "transactionTime": lst.transaction_time,
        "symbol": lst.symbol,
        "orders": [{"symbol": o.symbol, "orderId": o.order_id, "clientOrderId": o.client_order_id}
                   for o in ex.order_lists.legs(lst)],
    }


def order_list_canceled(ex: SimExchange, lst: OrderList) -> dict[str, object]:
    now = ex.now_ms()
    return {**order_list_json(ex, lst),
            "orderReports": [responses.order_canceled(o, now) for o in ex.order_lists.legs(lst)]}


def _placed(ex: SimExchange, lst: OrderList, resp_type: str) -> dict[str, object]:
    render = responses.order_full if resp_type == "FULL" else responses.order_result
    return {**order_list_json(ex, lst), "orderReports": [render(o) for o in ex.order_lists.legs(lst)]}


@endpoint("POST", "/api/v3/orderList/oco", weight=1, signed=True, order_change=True, new_order=True, order_count=2)
def new_order_list_oco(ex: SimExchange, params: Params) -> object:
    symbol_param(ex, params)
    req = parse_order_list_oco(params)
    return _placed(ex, ex.order_lists.place_oco(req), req.resp_type)


@endpoint("POST", "/api/v3/order/oco", weight=1, signed=True, order_change=True, new_order=True, order_count=2)
def new_legacy_oco(ex: SimExchange, params: Params) -> object:
    symbol_param(ex, params)
    req = parse_legacy_oco(params)
    return _placed(ex, ex.order_lists.place_oco(req), req.resp_type)


@endpoint("GET", "/api/v3/orderList", weight=4, signed=True)
def get_order_list(ex: SimExchange, params: Params) -> object:
    list_id, cid = int_param(params, "orderListId"), str_param(params, "origClientOrderId")
    if list_id is None and cid is None:
        raise ApiError(-1128, "Combination of optional parameters invalid. Recommendation: 'orderListId' should "
                              "also be sent.")
    lst = ex.order_lists.find(list_id, cid)
    if lst is None:
        raise ApiError(-2013, "Order list does not exist.")
    return order_list_json(ex, lst)


@endpoint("DELETE", "/api/v3/orderList", weight=1, signed=True, order_change=True)
def cancel_order_list(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params)
    assert sym is not None
    list_id, cid = int_param(params, "orderListId"), str_param(params, "listClientOrderId")
    if list_id is None and cid is None:
        raise errors.one_of_missing("orderListId", "listClientOrderId")
    return order_list_canceled(ex, ex.order_lists.cancel(sym, list_id, cid))


@endpoint("GET", "/api/v3/openOrderList", weight=6, signed=True)
def open_order_lists(ex: SimExchange, params: Params) -> object:
    return [order_list_json(ex, lst) for lst in ex.order_lists.open_lists()]


@endpoint("GET", "/api/v3/allOrderList", weight=20, signed=True)
def all_order_lists(ex: SimExchange, params: Params) -> object:
    rows = ex.order_lists.all_lists(int_param(params, "fromId"), int_param(params, "startTime"),
                                    int_param(params, "endTime"), limit_param(params, 500, 1000))
    return [order_list_json(ex, lst) for lst in rows]
