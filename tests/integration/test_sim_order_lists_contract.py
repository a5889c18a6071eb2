"""Contract test: spot order lists (OCO) on the local exchange, driven by an UNMODIFIED python-binance.

The exchange is a real subprocess (``python -m simulator``), paused (``--speed 0``); prices move only
through ``POST /admin/price``. python-binance 1.0.37 has ``create_oco_order`` (``POST
/api/v3/orderList/oco``), ``get_open_oco_orders`` (``GET openOrderList``) and the generated
``v3_get_order_list`` / ``v3_delete_order_list`` / ``v3_get_all_order_list``; the deprecated ``POST
/api/v3/order/oco`` is sent with the client's own signed ``_post``. A restart with ``--state-file``
keeps the open lists, and they keep working.
"""
from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from typing import Any, Iterator

import pytest
from binance.client import Client
from binance.exceptions import BinanceAPIException

from exchange.venues import client_class, venue_urls
from sim_process import KEY, SECRET, SimProcess

pytestmark = pytest.mark.timeout(120)
SYM = "BTCUSDT"
LIST_KEYS = {"orderListId", "contingencyType", "listStatusType", "listOrderStatus", "listClientOrderId",
             "transactionTime", "symbol", "orders"}
REPORT_KEYS = {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime", "price", "origQty",
               "executedQty", "origQuoteOrderQty", "cummulativeQuoteQty", "status", "timeInForce", "type", "side",
               "workingTime", "selfTradePreventionMode"}


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    p = SimProcess(Path(tmp_path_factory.mktemp("sim")) / "exchange.log", "--seed", "3", "--speed", "0",
                   "--balances", "USDT=100000,BTC=2")
    yield p
    p.close()
    assert "Traceback" not in p.log(), p.log()


@pytest.fixture()
def c(sim: SimProcess) -> Iterator[Client]:
    sim.set_price(SYM, "60000")
    client = client_class(venue_urls("local", sim.url))(KEY, SECRET)
    yield client
    for lst in client.get_open_oco_orders():  # leave nothing working for the next test
        client.v3_delete_order_list(symbol=lst["symbol"], orderListId=lst["orderListId"])
    for o in client.get_open_orders(symbol=SYM):
        client.cancel_order(symbol=SYM, orderId=o["orderId"])


def oco(c: Client, cid: str, **kw: Any) -> dict[str, Any]:
    params = {"symbol": SYM, "side": "SELL", "quantity": "0.1", "aboveType": "LIMIT_MAKER", "abovePrice": "62000",
              "aboveClientOrderId": f"{cid}-tp", "belowType": "STOP_LOSS_LIMIT", "belowStopPrice": "58000",
              "belowPrice": "57900", "belowTimeInForce": "GTC", "belowClientOrderId": f"{cid}-sl",
              "listClientOrderId": cid, **kw}
    return c.create_oco_order(**params)


def api_error(fn: Any, **kw: Any) -> tuple[int, str]:
    with pytest.raises(BinanceAPIException) as e:
        fn(**kw)
    return e.value.code, e.value.message


def btc(c: Client) -> tuple[str, str]:
    b = next(x for x in c.get_account()["balances"] if x["asset"] == "BTC")
    return b["free"], b["locked"]


def test_oco_place_query_list_and_cancel_shapes(c: Client) -> None:
    free_before = D(btc(c)[0])
    r = oco(c, "shape-1")
    assert set(r) == LIST_KEYS | {"orderReports"}
    assert (r["contingencyType"], r["listStatusType"], r["listOrderStatus"], r["listClientOrderId"], r["symbol"]) == (
        "OCO", "EXEC_STARTED", "EXECUTING", "shape-1", SYM)
    sl, tp = r["orderReports"]  # the stop-loss leg first, as in Binance's examples
    assert set(tp) == REPORT_KEYS and set(sl) == REPORT_KEYS | {"stopPrice"}
    assert (sl["clientOrderId"], sl["type"], sl["price"], sl["stopPrice"], sl["workingTime"]) == (
        "shape-1-sl", "STOP_LOSS_LIMIT", "57900.00000000", "58000.00000000", -1)
    assert (tp["clientOrderId"], tp["type"], tp["price"], tp["status"]) == (
        "shape-1-tp", "LIMIT_MAKER", "62000.00000000", "NEW")
    assert tp["workingTime"] > 0 and {sl["orderListId"], tp["orderListId"]} == {r["orderListId"]}
    assert r["orders"] == [{"symbol": SYM, "orderId": o["orderId"], "clientOrderId": o["clientOrderId"]}
                           for o in (sl, tp)]
    assert (D(btc(c)[0]), D(btc(c)[1])) == (free_before - D("0.1"), D("0.1"))  # locked once for the list

    by_id = c.v3_get_order_list(orderListId=r["orderListId"])
    assert set(by_id) == LIST_KEYS and by_id == c.v3_get_order_list(origClientOrderId="shape-1")
    assert by_id["orders"] == r["orders"] and by_id["listOrderStatus"] == "EXECUTING"
    used = int(c.response.headers["X-MBX-USED-WEIGHT-1M"])
    c.v3_get_order_list(orderListId=r["orderListId"])
    assert int(c.response.headers["X-MBX-USED-WEIGHT-1M"]) == used + 4  # GET orderList weighs 4
    assert [x["listClientOrderId"] for x in c.get_open_oco_orders()] == ["shape-1"]
    assert c.v3_get_all_order_list()[-1]["listClientOrderId"] == "shape-1"
    leg = c.get_order(symbol=SYM, origClientOrderId="shape-1-sl")
    assert (leg["orderListId"], leg["isWorking"], leg["stopPrice"]) == (r["orderListId"], False, "58000.00000000")
    assert {o["orderListId"] for o in c.get_open_orders(symbol=SYM)} == {r["orderListId"]}

    x = c.v3_delete_order_list(symbol=SYM, listClientOrderId="shape-1")
    assert set(x) == LIST_KEYS | {"orderReports"}
    assert (x["listStatusType"], x["listOrderStatus"]) == ("ALL_DONE", "ALL_DONE")
    assert [(o["origClientOrderId"], o["status"], o["orderListId"]) for o in x["orderReports"]] == [
        ("shape-1-sl", "CANCELED", r["orderListId"]), ("shape-1-tp", "CANCELED", r["orderListId"])]
    assert c.get_open_oco_orders() == [] and D(btc(c)[1]) == 0


def test_an_oco_counts_as_two_orders(c: Client) -> None:
    c.order_limit_buy(symbol=SYM, quantity="0.001", price="50000")
    n = int(c.response.headers["X-MBX-ORDER-COUNT-10S"])
    oco(c, "count-1")
    assert int(c.response.headers["X-MBX-ORDER-COUNT-10S"]) == n + 2


def test_take_profit_fill_expires_the_stop(sim: SimProcess, c: Client) -> None:
    r = oco(c, "tp-1")
    sim.set_price(SYM, "62100")
    lst = c.v3_get_order_list(origClientOrderId="tp-1")
    assert (lst["listStatusType"], lst["listOrderStatus"]) == ("ALL_DONE", "ALL_DONE")
    tp = c.get_order(symbol=SYM, origClientOrderId="tp-1-tp")
    sl = c.get_order(symbol=SYM, origClientOrderId="tp-1-sl")
    assert (tp["status"], tp["executedQty"], sl["status"], sl["executedQty"]) == (
        "FILLED", "0.10000000", "EXPIRED", "0.00000000")
    trades = c.get_my_trades(symbol=SYM, orderId=tp["orderId"])
    assert [(t["price"], t["qty"], t["orderListId"], t["isMaker"]) for t in trades] == [
        ("62000.00000000", "0.10000000", r["orderListId"], True)]
    assert c.get_open_oco_orders() == []
    assert api_error(c.v3_delete_order_list, symbol=SYM, listClientOrderId="tp-1") == (-2011, "Unknown order sent.")


def test_a_triggered_stop_leg_works_on_as_an_order(sim: SimProcess, c: Client) -> None:
    oco(c, "trig-1", belowPrice="58100")  # a limit above its stop: the fall leaves it unfilled
    sim.set_price(SYM, "57950")
    assert c.v3_get_order_list(origClientOrderId="trig-1")["listOrderStatus"] == "ALL_DONE"
    sl = c.get_order(symbol=SYM, origClientOrderId="trig-1-sl")
    assert (sl["status"], sl["isWorking"], sl["workingTime"] > 0) == ("NEW", True, True)
    assert c.get_order(symbol=SYM, origClientOrderId="trig-1-tp")["status"] == "EXPIRED"
    assert c.get_open_oco_orders() == [] and D(btc(c)[1]) == D("0.1")  # still locked, by the working leg
    assert api_error(c.v3_delete_order_list, symbol=SYM, listClientOrderId="trig-1")[0] == -2011
    assert c.cancel_order(symbol=SYM, origClientOrderId="trig-1-sl")["status"] == "CANCELED"
    assert D(btc(c)[1]) == 0


def test_canceling_one_leg_cancels_the_list_and_cancel_all_returns_it_once(c: Client) -> None:
    oco(c, "leg-1")
    out = c.cancel_order(symbol=SYM, origClientOrderId="leg-1-tp")
    assert (out["status"], out["orderListId"] >= 0) == ("CANCELED", True)
    assert c.get_order(symbol=SYM, origClientOrderId="leg-1-sl")["status"] == "CANCELED"
    assert c.v3_get_order_list(origClientOrderId="leg-1")["listOrderStatus"] == "ALL_DONE"
    r = oco(c, "all-1")
    c.order_limit_buy(symbol=SYM, quantity="0.001", price="50000", newClientOrderId="plain-1")
    gone = c.cancel_all_open_orders(symbol=SYM)
    lists = [x for x in gone if "orderReports" in x]
    assert len(gone) == 2 and len(lists) == 1 and lists[0]["orderListId"] == r["orderListId"]
    assert [x["origClientOrderId"] for x in gone if "orderReports" not in x] == ["plain-1"]
    assert c.get_open_orders(symbol=SYM) == []


def test_deprecated_order_oco_endpoint(sim: SimProcess, c: Client) -> None:
    r = c._post("order/oco", True, data={"symbol": SYM, "side": "SELL", "quantity": "0.1", "price": "62000",
                                         "stopPrice": "58000", "stopLimitPrice": "57900",
                                         "stopLimitTimeInForce": "GTC", "listClientOrderId": "old-1",
                                         "limitClientOrderId": "old-1-tp", "stopClientOrderId": "old-1-sl"})
    assert set(r) == LIST_KEYS | {"orderReports"}
    assert [(o["clientOrderId"], o["type"]) for o in r["orderReports"]] == [
        ("old-1-sl", "STOP_LOSS_LIMIT"), ("old-1-tp", "LIMIT_MAKER")]
    sim.set_price(SYM, "57800")  # through the stop and its limit
    assert c.get_order(symbol=SYM, origClientOrderId="old-1-sl")["status"] == "FILLED"
    assert c.get_order(symbol=SYM, origClientOrderId="old-1-tp")["status"] == "EXPIRED"
    e = api_error(c._post, path="order/oco", signed=True, data={
        "symbol": SYM, "side": "SELL", "quantity": "0.1", "price": "57000", "stopPrice": "56000"})
    assert e == (-2010, "The relationship of the prices for the orders is not correct.")  # limit below the market


@pytest.mark.parametrize("kw,expected", [
    ({"abovePrice": "59000"}, (-2010, "The relationship of the prices for the orders is not correct.")),
    ({"belowStopPrice": "61000", "belowPrice": "60900"},
     (-2010, "The relationship of the prices for the orders is not correct.")),
    ({"aboveType": "STOP_LOSS", "aboveStopPrice": "61000", "abovePrice": ""},
     (-1197, "A stop loss order in a sell OCO must be below.")),
    ({"belowType": "LIMIT"}, (-1158, "Order type not supported in OCO.")),
    ({"belowTimeInForce": ""}, (-1102, "Mandatory parameter 'belowTimeInForce' was not sent, was empty/null, or "
                                       "malformed.")),
    ({"aboveTimeInForce": "GTC"}, (-1106, "Parameter 'aboveTimeInForce' sent when not required.")),
    ({"abovePrice": "62000.005"}, (-1013, "Filter failure: PRICE_FILTER")),
    ({"quantity": "0.000001"}, (-1013, "Filter failure: LOT_SIZE")),
    ({"abovePrice": "350000"}, (-1013, "Filter failure: PERCENT_PRICE_BY_SIDE")),
    ({"quantity": "5"}, (-2010, "Account has insufficient balance for requested action.")),
])
def test_rejections_through_python_binance(c: Client, kw: dict[str, str], expected: tuple[int, str]) -> None:
    params = {k: v for k, v in kw.items() if v != ""}
    drop = [k for k, v in kw.items() if v == ""]
    base = {"symbol": SYM, "side": "SELL", "quantity": "0.1", "aboveType": "LIMIT_MAKER", "abovePrice": "62000",
            "belowType": "STOP_LOSS_LIMIT", "belowStopPrice": "58000", "belowPrice": "57900",
            "belowTimeInForce": "GTC", "listClientOrderId": "rej-1"}
    for k in drop:
        base.pop(k, None)
    assert api_error(c.create_oco_order, **{**base, **params}) == expected
    assert c.get_open_oco_orders() == [] and c.get_open_orders(symbol=SYM) == []


def test_duplicates_and_unknown_lists(c: Client) -> None:
    oco(c, "dup-1")
    assert api_error(oco, c=c, cid="dup-1") == (-2010, "Duplicate order sent.")
    assert api_error(c.v3_get_order_list, origClientOrderId="never") == (-2013, "Order list does not exist.")
    assert api_error(c.v3_get_order_list)[0] == -1128
    assert api_error(c.v3_delete_order_list, symbol=SYM, listClientOrderId="never") == (-2011, "Unknown order sent.")
    assert api_error(c.v3_delete_order_list, symbol=SYM)[0] == -1102


def test_max_num_algo_orders(c: Client) -> None:
    info = c.get_symbol_info(SYM)
    algo = next(f for f in info["filters"] if f["filterType"] == "MAX_NUM_ALGO_ORDERS")["maxNumAlgoOrders"]
    assert info["ocoAllowed"] is True and algo == 5
    for i in range(algo):
        oco(c, f"max-{i}", quantity="0.01")
    assert api_error(oco, c=c, cid="max-5", quantity="0.01") == (-1013, "Filter failure: MAX_NUM_ALGO_ORDERS")


def test_restart_keeps_open_order_lists(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    # a paused synthetic market resumed at 60000 (as `make run` does): only the test moves the price
    args = ("--source", "synthetic", "--symbols", SYM, "--seed", "3", "--speed", "0", "--warmup", "10",
            "--resume", f"{SYM}=60000", "--balances", "USDT=100000,BTC=2", "--state-file", str(state))
    sim = SimProcess(tmp_path / "exchange-0.log", *args)
    try:
        sim.set_price(SYM, "60000")
        c = client_class(venue_urls("local", sim.url))(KEY, SECRET)
        r = oco(c, "keep-1")
        before = (c.get_open_oco_orders(), c.get_open_orders(symbol=SYM), btc(c))
    finally:
        sim.close()
    sim = SimProcess(tmp_path / "exchange-1.log", *args, port=sim.port)
    try:
        assert (c.get_open_oco_orders(), c.get_open_orders(symbol=SYM), btc(c)) == before
        sim.set_price(SYM, "57800")  # the restored stop leg fires and the take profit expires
        assert c.v3_get_order_list(orderListId=r["orderListId"])["listOrderStatus"] == "ALL_DONE"
        assert c.get_order(symbol=SYM, origClientOrderId="keep-1-sl")["status"] == "FILLED"
        assert c.get_order(symbol=SYM, origClientOrderId="keep-1-tp")["status"] == "EXPIRED"
        assert oco(c, "keep-2", abovePrice="60000", belowStopPrice="56000", belowPrice="55900")[
            "orderListId"] == r["orderListId"] + 1
    finally:
        sim.close()
    assert "Traceback" not in sim.log(), sim.log()
