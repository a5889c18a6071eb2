"""Spot order lists (OCO) in the local exchange, without HTTP: simulator/order_lists.py and
order_list_params.py on a real SimExchange (matching, accounts, the state file)."""
from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from simulator.errors import ApiError
from simulator.order_list_params import parse_legacy_oco, parse_order_list_oco
from simulator.order_lists import OrderList
from simulator.params import parse_new_order
from simulator.spot_orders import SpotOrder, TradeRecord
from simulator.state import SimConfig, SimExchange
from simulator.state_file import load, save, snapshot

SYM = "BTCUSDT"


def make(btc: str = "1", usdt: str = "100000") -> tuple[SimExchange, list[tuple[Any, ...]]]:
    ex = SimExchange(SimConfig(seed=3, speed=0, balances={"USDT": D(usdt), "BTC": D(btc)}))
    ex.move_price(SYM, D("60000"))
    events: list[tuple[Any, ...]] = []

    def on_order(o: SpotOrder, t: TradeRecord | None) -> None:
        events.append(("order", o.order_id, o.type, o.status, o.order_list_id, t is not None))

    ex.engine.listeners.append(on_order)
    ex.order_lists.listeners.append(lambda lst: events.append(("list", lst.order_list_id, lst.list_order_status)))
    return ex, events


def oco(**kw: str) -> dict[str, str]:
    """A SELL OCO exit of a long: LIMIT_MAKER 62000 above, STOP_LOSS_LIMIT 58000/57900 below."""
    return {"symbol": SYM, "side": "SELL", "quantity": "0.5", "aboveType": "LIMIT_MAKER", "abovePrice": "62000",
            "belowType": "STOP_LOSS_LIMIT", "belowStopPrice": "58000", "belowPrice": "57900",
            "belowTimeInForce": "GTC", "listClientOrderId": "pos-1", "aboveClientOrderId": "pos-1-tp",
            "belowClientOrderId": "pos-1-sl", **kw}


def place(ex: SimExchange, **kw: str) -> OrderList:
    return ex.order_lists.place_oco(parse_order_list_oco(oco(**kw)))


def legs(ex: SimExchange, lst: OrderList) -> dict[str, SpotOrder]:
    return {o.client_order_id: o for o in ex.order_lists.legs(lst)}


def btc(ex: SimExchange) -> tuple[D, D]:
    b = ex.account.get("BTC")
    return b.free, b.locked


def err(fn: Any, *a: Any) -> tuple[int, str]:
    with pytest.raises(ApiError) as e:
        fn(*a)
    return e.value.code, e.value.msg


def test_placing_locks_the_quantity_once_and_starts_the_list() -> None:
    ex, events = make()
    lst = place(ex)
    sl, tp = ex.order_lists.legs(lst)  # the stop-loss leg first, as Binance numbers them
    assert (sl.client_order_id, sl.type, sl.pending, sl.order_list_id) == ("pos-1-sl", "STOP_LOSS_LIMIT", True, 1)
    assert (tp.client_order_id, tp.type, tp.pending, tp.working_time > 0) == ("pos-1-tp", "LIMIT_MAKER", False, True)
    assert (lst.list_status_type, lst.list_order_status, lst.list_client_order_id) == ("EXEC_STARTED", "EXECUTING", "pos-1")
    assert btc(ex) == (D("0.5"), D("0.5"))  # one lock for the list, not one per leg
    assert events == [("order", sl.order_id, "STOP_LOSS_LIMIT", "NEW", 1, False),
                      ("order", tp.order_id, "LIMIT_MAKER", "NEW", 1, False), ("list", 1, "EXECUTING")]


def test_take_profit_fill_expires_the_stop_and_ends_the_list() -> None:
    ex, events = make()
    lst = place(ex)
    events.clear()
    ex.move_price(SYM, D("62100"))
    legs_ = legs(ex, lst)
    assert legs_["pos-1-tp"].status == "FILLED" and legs_["pos-1-tp"].executed_qty == D("0.5")
    assert legs_["pos-1-sl"].status == "EXPIRED" and not legs_["pos-1-sl"].pending
    assert (lst.list_status_type, lst.list_order_status) == ("ALL_DONE", "ALL_DONE")
    assert btc(ex) == (D("0.5"), D(0))
    kinds = [(e[0], e[3] if e[0] == "order" else e[2]) for e in events]
    assert kinds == [("order", "FILLED"), ("order", "EXPIRED"), ("list", "ALL_DONE")]
    assert ex.engine.open_orders(SYM) == [] and ex.order_lists.open_lists() == []


def test_stop_trigger_expires_the_take_profit_and_the_lock_moves_to_the_stop() -> None:
    ex, events = make()
    lst = place(ex, belowPrice="58100")  # a limit above its stop: triggered in a falling bar, it rests
    events.clear()
    ex.move_price(SYM, D("57950"))
    legs_ = legs(ex, lst)
    sl, tp = legs_["pos-1-sl"], legs_["pos-1-tp"]
    assert tp.status == "EXPIRED"
    assert (sl.status, sl.pending, sl.working_time > 0, sl.locked) == ("NEW", False, True, D("0.5"))
    assert lst.list_order_status == "ALL_DONE"
    assert btc(ex) == (D("0.5"), D("0.5"))  # still locked: by the working stop leg now
    assert [e[:4] for e in events] == [("order", tp.order_id, "LIMIT_MAKER", "EXPIRED"), ("list", 1, "ALL_DONE")]
    # the list is finished: DELETE orderList is refused, the working leg is canceled as an order
    assert err(ex.order_lists.cancel, SYM, None, "pos-1") == (-2011, "Unknown order sent.")
    assert ex.engine.cancel(SYM, None, "pos-1-sl").status == "CANCELED"
    assert btc(ex) == (D("1"), D(0))


def test_stop_trigger_then_fill_at_its_limit() -> None:
    ex, _ = make()
    lst = place(ex)
    ex.move_price(SYM, D("57800"))  # through the stop (58000) and the limit (57900)
    sl = legs(ex, lst)["pos-1-sl"]
    assert sl.status == "FILLED" and all(t.price == D("57900") for t in sl.fills)
    assert btc(ex) == (D("0.5"), D(0))
    usdt = ex.account.get("USDT").free
    assert usdt == D("100000") + D("57900") * D("0.5") * (1 - ex.account.maker_rate)


def test_canceling_a_leg_cancels_the_list_and_releases_the_lock() -> None:
    ex, events = make()
    lst = place(ex)
    events.clear()
    o = ex.engine.cancel(SYM, None, "pos-1-tp", "cxl-1")
    assert o.status == "CANCELED" and o.cancel_client_id == "cxl-1"
    assert {c: x.status for c, x in legs(ex, lst).items()} == {"pos-1-sl": "CANCELED", "pos-1-tp": "CANCELED"}
    assert lst.list_order_status == "ALL_DONE" and btc(ex) == (D("1"), D(0))
    assert [e[3] if e[0] == "order" else e[2] for e in events] == ["CANCELED", "CANCELED", "ALL_DONE"]


def test_cancel_list_by_id_or_client_id() -> None:
    ex, _ = make()
    lst = place(ex)
    assert err(ex.order_lists.cancel, "ETHUSDT", lst.order_list_id, None)[0] == -2011  # another symbol
    assert ex.order_lists.cancel(SYM, lst.order_list_id, None) is lst
    assert err(ex.order_lists.cancel, SYM, None, "pos-1") == (-2011, "Unknown order sent.")
    again = place(ex)  # the client id is free again once the list is done
    assert again.order_list_id == 2 and ex.order_lists.find(None, "pos-1") is again


def test_cancel_all_open_orders_cancels_the_list_once() -> None:
    ex, _ = make()
    place(ex)
    ex.engine.place(parse_new_order({"symbol": SYM, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                                     "quantity": "0.01", "price": "50000"}))
    done = ex.engine.cancel_all(SYM)
    assert len(done) == 2 and {o.order_list_id for o in done} == {1, -1}
    assert ex.engine.open_orders(SYM) == [] and btc(ex) == (D("1"), D(0))


@pytest.mark.parametrize("kw,expected", [
    ({"abovePrice": "59000"}, (-2010, "The relationship of the prices for the orders is not correct.")),
    ({"belowStopPrice": "60500", "belowPrice": "60400"},
     (-2010, "The relationship of the prices for the orders is not correct.")),
    ({"aboveType": "STOP_LOSS_LIMIT", "aboveStopPrice": "61000", "aboveTimeInForce": "GTC"},
     (-1197, "A stop loss order in a sell OCO must be below.")),
    ({"belowType": "TAKE_PROFIT", "belowStopPrice": "58000", "belowPrice": "", "belowTimeInForce": ""},
     (-1199, "A take profit order in a sell OCO must be above.")),
    ({"belowType": "LIMIT"}, (-1158, "Order type not supported in OCO.")),
    ({"belowType": "LIMIT_MAKER"}, (-1158, "Order type not supported in OCO.")),
    ({"aboveType": "BOGUS"}, (-1116, "Invalid orderType.")),
    ({"aboveTimeInForce": "GTC"}, (-1106, "Parameter 'aboveTimeInForce' sent when not required.")),
    ({"belowTimeInForce": ""}, (-1102, "Mandatory parameter 'belowTimeInForce' was not sent, was empty/null, "
                                       "or malformed.")),
    ({"abovePrice": ""}, (-1102, "Mandatory parameter 'abovePrice' was not sent, was empty/null, or malformed.")),
    ({"abovePrice": "62000.001"}, (-1013, "Filter failure: PRICE_FILTER")),
    ({"quantity": "0.000001"}, (-1013, "Filter failure: LOT_SIZE")),
    ({"quantity": "0.50000001"}, (-1013, "Filter failure: LOT_SIZE")),
    ({"quantity": "0.00005"}, (-1013, "Filter failure: NOTIONAL")),
    ({"quantity": "2"}, (-2010, "Account has insufficient balance for requested action.")),
    ({"belowClientOrderId": "pos-1-tp"}, (-2010, "Duplicate order sent.")),
    ({"listClientOrderId": "bad id!"}, (-1100, "Illegal characters found in parameter 'listClientOrderId'; legal "
                                               "range is '^[a-zA-Z0-9-_]{1,36}$'.")),
    ({"side": "HOLD"}, (-1117, "Invalid side.")),
])
def test_rejections_name_the_rule_and_change_nothing(kw: dict[str, str], expected: tuple[int, str]) -> None:
    ex, events = make()
    before = snapshot(ex, saved_at=0)
    code_msg = None
    try:
        ex.order_lists.place_oco(parse_order_list_oco(oco(**kw)))
    except ApiError as e:
        code_msg = (e.code, e.msg)
    assert code_msg == expected
    assert snapshot(ex, saved_at=0) == before and events == []


def test_duplicates_of_open_orders_and_lists_are_refused() -> None:
    ex, _ = make()
    place(ex)
    assert err(ex.order_lists.place_oco, parse_order_list_oco(oco(aboveClientOrderId="x1", belowClientOrderId="x2"))) \
        == (-2010, "Duplicate order sent.")  # the list's client id
    assert err(ex.order_lists.place_oco, parse_order_list_oco(oco(listClientOrderId="pos-2"))) \
        == (-2010, "Duplicate order sent.")  # a leg's client id


def test_max_num_algo_orders_counts_the_stop_legs() -> None:
    ex, _ = make(btc="10")
    for i in range(5):  # Binance's BTCUSDT allows 5 open stop-loss/take-profit orders
        place(ex, quantity="0.1", listClientOrderId=f"p{i}", aboveClientOrderId=f"p{i}-tp",
              belowClientOrderId=f"p{i}-sl")
    assert err(ex.order_lists.place_oco, parse_order_list_oco(oco(
        quantity="0.1", listClientOrderId="p5", aboveClientOrderId="p5-tp", belowClientOrderId="p5-sl"))) == \
        (-1013, "Filter failure: MAX_NUM_ALGO_ORDERS")
    assert err(ex.engine.place, parse_new_order({"symbol": SYM, "side": "SELL", "type": "STOP_LOSS_LIMIT",
                                                 "timeInForce": "GTC", "quantity": "0.1", "price": "50000",
                                                 "stopPrice": "50000"}))[1] == "Filter failure: MAX_NUM_ALGO_ORDERS"


def test_buy_oco_locks_the_larger_quote_and_mirrors_the_rules() -> None:
    ex, _ = make(btc="0", usdt="10000")
    req = parse_order_list_oco({"symbol": SYM, "side": "BUY", "quantity": "0.1", "aboveType": "STOP_LOSS_LIMIT",
                                "aboveStopPrice": "61000", "abovePrice": "61100", "aboveTimeInForce": "GTC",
                                "belowType": "TAKE_PROFIT_LIMIT", "belowStopPrice": "59000", "belowPrice": "58900",
                                "belowTimeInForce": "GTC"})
    lst = ex.order_lists.place_oco(req)
    usdt = ex.account.get("USDT")
    assert (usdt.free, usdt.locked) == (D("10000") - D("6110"), D("6110"))
    stop, tp = ex.order_lists.legs(lst)
    assert (stop.type, tp.type) == ("STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
    ex.move_price(SYM, D("58950"))  # the take profit (stop 59000) triggers; the lock shrinks to its 5890
    assert stop.status == "EXPIRED" and tp.locked == D("5890") and usdt.locked == D("5890")
    assert lst.list_order_status == "ALL_DONE"
    with pytest.raises(ApiError) as e:
        parse_order_list_oco({**oco(), "side": "BUY"})
    assert (e.value.code, e.value.msg) == (-1165, "A limit order in a buy OCO must be below.")


def test_legacy_order_oco_builds_the_same_legs() -> None:
    ex, _ = make()
    req = parse_legacy_oco({"symbol": SYM, "side": "SELL", "quantity": "0.5", "price": "62000", "stopPrice": "58000",
                            "stopLimitPrice": "57900", "stopLimitTimeInForce": "GTC", "listClientOrderId": "old",
                            "limitClientOrderId": "old-tp", "stopClientOrderId": "old-sl"})
    lst = ex.order_lists.place_oco(req)
    assert [(o.client_order_id, o.type, o.price, o.stop_price) for o in ex.order_lists.legs(lst)] == [
        ("old-sl", "STOP_LOSS_LIMIT", D("57900"), D("58000")), ("old-tp", "LIMIT_MAKER", D("62000"), D(0))]
    market_stop = parse_legacy_oco({"symbol": SYM, "side": "SELL", "quantity": "0.1", "price": "62000",
                                    "stopPrice": "58000"})
    assert market_stop.below.type == "STOP_LOSS"
    with pytest.raises(ApiError) as e:
        parse_legacy_oco({"symbol": SYM, "side": "SELL", "quantity": "0.1", "price": "62000", "stopPrice": "58000",
                          "stopLimitTimeInForce": "GTC"})
    assert (e.value.code, e.value.msg) == (-1106, "Parameter 'stopLimitTimeInForce' sent when not required.")


def test_market_stop_leg_sells_at_the_book_when_triggered() -> None:
    ex, _ = make()
    lst = place(ex, belowType="STOP_LOSS", belowPrice="", belowTimeInForce="")
    ex.move_price(SYM, D("57990"))
    sl = legs(ex, lst)["pos-1-sl"]
    assert sl.status == "FILLED" and not sl.fills[0].is_maker and btc(ex) == (D("0.5"), D(0))


def test_state_file_keeps_open_lists_and_they_keep_working(tmp_path: Path) -> None:
    ex, _ = make()
    place(ex)
    done = place(ex, quantity="0.1", listClientOrderId="pos-2", aboveClientOrderId="p2-tp",
                 belowClientOrderId="p2-sl", abovePrice="65000")
    ex.order_lists.cancel(SYM, done.order_list_id, None)
    path = tmp_path / "state.json"
    save(ex, path)
    again, events = make()
    assert load(again, path) is True
    assert snapshot(again, saved_at=0) == snapshot(ex, saved_at=0)
    got = again.order_lists.find(None, "pos-1")
    assert got is not None and got.is_open and again.order_lists.find(None, "pos-2").list_order_status == "ALL_DONE"
    again.move_price(SYM, D("62100"))  # the restored list still cancels its other leg
    assert {o.client_order_id: o.status for o in again.order_lists.legs(got)} == {"pos-1-sl": "EXPIRED",
                                                                                  "pos-1-tp": "FILLED"}
    assert got.list_order_status == "ALL_DONE" and ("list", got.order_list_id, "ALL_DONE") in events
    new = again.order_lists.place_oco(parse_order_list_oco(oco(listClientOrderId="pos-3", aboveClientOrderId="p3-tp",
                                                               belowClientOrderId="p3-sl", quantity="0.1",
                                                               abovePrice="64000", belowStopPrice="60000",
                                                               belowPrice="59900")))
    assert new.order_list_id == 3  # ids continue


def test_a_file_without_order_lists_still_loads_and_a_dangling_leg_is_refused(tmp_path: Path) -> None:
    import json

    ex, _ = make()
    place(ex)
    doc = snapshot(ex)
    path = tmp_path / "state.json"
    old = json.loads(json.dumps({k: v for k, v in doc.items() if k != "order_lists"}))
    for o in old["spot"]["orders"]:
        o.pop("order_list_id")
    old["spot"]["open"] = {}
    for o in old["spot"]["orders"]:
        o["status"] = "CANCELED"
    path.write_text(json.dumps(old))
    fresh, _ = make()
    assert load(fresh, path) is True and fresh.order_lists.lists == {}
    bad = {k: v for k, v in doc.items() if k != "order_lists"}  # legs that name a list the file lacks
    path.write_text(json.dumps(bad))
    with pytest.raises(Exception) as e:
        load(make()[0], path)
    assert "leg of order list 1, which is not in order_lists" in str(e.value)
