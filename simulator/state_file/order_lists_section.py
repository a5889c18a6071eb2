"""The state file's ``order_lists`` section: the spot order lists (OCOs), open and past.

``{"next_id": int, "lists": [order list records]}``. A list names its legs by order id; each leg
is a spot order in the ``spot`` section carrying the list's id (``order_list_id``), so a restored
open list keeps cancelling its other leg when one leg goes off, as before the restart. The
section is optional: a file written before order lists existed loads with none.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from simulator.order_lists import OrderList
from simulator.spot_orders import SpotOrder
from simulator.state_file.codec import _Bad, _Codec, _decode, _int, _known_symbol, _list, _obj

if TYPE_CHECKING:
    from simulator.state import SimExchange

_LIST = _Codec(OrderList)


def capture_order_lists(ex: SimExchange) -> dict[str, Any]:
    book = ex.order_lists
    return {"next_id": book._next_id, "lists": [_LIST.values(lst) for lst in book.lists.values()]}


def render_order_lists(cap: dict[str, Any]) -> dict[str, Any]:
    return {"next_id": cap["next_id"], "lists": [_LIST.encode(v) for v in cap["lists"]]}


def decode_order_lists(ex: SimExchange, raw: object,
                       spot_orders: dict[tuple[str, int], SpotOrder]) -> Callable[[], None]:
    """Check the section against the decoded spot orders (absent: no lists) and return what applies it."""
    lists: dict[int, OrderList] = {}
    by_client: dict[str, OrderList] = {}
    next_id = 1
    if raw is not None:
        top = _obj(raw, "order_lists")
        next_id = _int(top.get("next_id"), "order_lists.next_id")
        for i, l_raw in enumerate(_list(top.get("lists"), "order_lists.lists")):
            where = f"order_lists.lists[{i}]"
            lst = _decode(OrderList, l_raw, where)
            _known_symbol(lst.symbol, ex.specs, where)
            if lst.order_list_id in lists:
                raise _Bad(f"{where}: duplicate order list id {lst.order_list_id}")
            if lst.order_list_id >= next_id:
                raise _Bad(f"order_lists.next_id: {next_id} but order list {lst.order_list_id} exists "
                           "(ids would repeat)")
            for oid in lst.order_ids:
                leg = spot_orders.get((lst.symbol, oid))
                if leg is None or leg.order_list_id != lst.order_list_id:
                    raise _Bad(f"{where}: leg {lst.symbol} {oid} is not a spot order of this list")
            lists[lst.order_list_id] = lst
            by_client[lst.list_client_order_id] = lst
    for (sym, oid), order in spot_orders.items():
        if order.order_list_id >= 0 and order.order_list_id not in lists:
            raise _Bad(f"spot.orders: order {sym} {oid} is a leg of order list {order.order_list_id}, "
                       "which is not in order_lists")

    def apply() -> None:
        book = ex.order_lists
        book.lists, book.by_client_id, book._next_id = lists, by_client, next_id

    return apply
