"""ccxt's view of the local exchange's spot order lists (OCO), a client independent of python-binance.

ccxt 4.5.90 has no unified OCO call for Binance spot; it reaches the endpoints through its implicit
API (``privatePostOrderListOco``, ``privateGetOrderList``, ``privateGetOpenOrderList``,
``privateDeleteOrderList``), signing them as Binance's, and sees the legs as ordinary orders in
``fetchOpenOrders`` / ``fetchOrder`` (a LIMIT_MAKER leg as a post-only limit order, the STOP_LOSS_LIMIT leg as a limit order
with its trigger price). The exchange is a real subprocess, paused; prices move through ``/admin/price``.
"""
from __future__ import annotations

from typing import Iterator

import ccxt
import pytest

import ccxt_sim
from sim_process import SimProcess

pytestmark = pytest.mark.timeout(120)
SPOT = "BTC/USDT"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    proc = SimProcess(tmp_path_factory.mktemp("ccxt-oco") / "exchange.log", "--speed", "0", "--seed", "7",
                      "--balances", "USDT=100000,BTC=1")
    proc.set_price("BTCUSDT", "60000")
    try:
        yield proc
    finally:
        proc.close()
    assert "Traceback" not in proc.log(), proc.log()


@pytest.fixture(scope="module")
def spot(sim: SimProcess) -> ccxt.binance:
    ex = ccxt_sim.spot(sim)
    ex.load_markets()
    return ex


def test_ccxt_places_reads_and_cancels_an_oco(sim: SimProcess, spot: ccxt.binance) -> None:
    r = spot.privatePostOrderListOco({
        "symbol": "BTCUSDT", "side": "SELL", "quantity": "0.1", "listClientOrderId": "cx-1",
        "aboveType": "LIMIT_MAKER", "abovePrice": "62000", "aboveClientOrderId": "cx-1-tp",
        "belowType": "STOP_LOSS_LIMIT", "belowStopPrice": "58000", "belowPrice": "57900", "belowTimeInForce": "GTC",
        "belowClientOrderId": "cx-1-sl"})
    assert (r["listClientOrderId"], r["listOrderStatus"], len(r["orderReports"])) == ("cx-1", "EXECUTING", 2)
    legs = {o["clientOrderId"]: o for o in spot.fetch_open_orders(SPOT)}
    assert set(legs) == {"cx-1-tp", "cx-1-sl"}
    tp, sl = legs["cx-1-tp"], legs["cx-1-sl"]
    assert (tp["type"], tp["postOnly"], tp["price"], tp["amount"]) == ("limit", True, 62000.0, 0.1)
    assert (sl["type"], sl["triggerPrice"], sl["price"], sl["info"]["type"]) == (
        "limit", 58000.0, 57900.0, "STOP_LOSS_LIMIT")
    assert {o["info"]["orderListId"] for o in legs.values()} == {r["orderListId"]}
    assert spot.privateGetOrderList({"origClientOrderId": "cx-1"})["orderListId"] == r["orderListId"]
    assert [x["listClientOrderId"] for x in spot.privateGetOpenOrderList()] == ["cx-1"]
    done = spot.privateDeleteOrderList({"symbol": "BTCUSDT", "listClientOrderId": "cx-1"})
    assert [o["status"] for o in done["orderReports"]] == ["CANCELED", "CANCELED"]
    assert spot.fetch_open_orders(SPOT) == []


def test_ccxt_sees_one_leg_fill_and_the_other_expire(sim: SimProcess, spot: ccxt.binance) -> None:
    spot.privatePostOrderListOco({
        "symbol": "BTCUSDT", "side": "SELL", "quantity": "0.1", "listClientOrderId": "cx-2",
        "aboveType": "LIMIT_MAKER", "abovePrice": "62000", "aboveClientOrderId": "cx-2-tp",
        "belowType": "STOP_LOSS_LIMIT", "belowStopPrice": "58000", "belowPrice": "57900", "belowTimeInForce": "GTC",
        "belowClientOrderId": "cx-2-sl"})
    sim.set_price("BTCUSDT", "62100")
    tp = spot.fetch_order(None, SPOT, params={"origClientOrderId": "cx-2-tp"})
    sl = spot.fetch_order(None, SPOT, params={"origClientOrderId": "cx-2-sl"})
    assert (tp["status"], tp["filled"], sl["status"]) == ("closed", 0.1, "expired")
    assert spot.privateGetOrderList({"origClientOrderId": "cx-2"})["listOrderStatus"] == "ALL_DONE"
    with pytest.raises(ccxt.OrderNotFound):  # -2013 Order list does not exist.
        spot.privateGetOrderList({"origClientOrderId": "never"})
    with pytest.raises(ccxt.InvalidOrder):  # -2010 the relationship of the prices
        spot.privatePostOrderListOco({
            "symbol": "BTCUSDT", "side": "SELL", "quantity": "0.1", "aboveType": "LIMIT_MAKER", "abovePrice": "61000",
            "belowType": "STOP_LOSS", "belowStopPrice": "62500"})
    sim.set_price("BTCUSDT", "60000")
