"""Contract test: the local exchange driven by ccxt (REST), a second client independent of python-binance.

``ccxt.binance`` (spot) and ``ccxt.binanceusdm`` (USD-M) run with ccxt's defaults except the URLs and
the switches any Binance-compatible endpoint without /sapi and /dapi needs (tests/integration/ccxt_sim.py,
simulator/README.md "ccxt"). The exchange is a real subprocess with the market paused (``--speed 0``);
prices move only through ``/admin/price``, so every fill below is deterministic. ccxt.pro streams are in
test_ccxt_contract_streams.py, funding in test_sim_funding_clients.py.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import ccxt
import pytest

import ccxt_sim
from sim_process import SimProcess

pytestmark = pytest.mark.timeout(120)

SPOT, SWAP = "BTC/USDT", "ETH/USDT:USDT"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    proc = SimProcess(tmp_path_factory.mktemp("ccxt") / "exchange.log", "--speed", "0", "--seed", "7",
                      "--balances", "USDT=100000,BTC=1", "--futures-balance", "50000")
    proc.set_price("BTCUSDT", "60000")
    proc.set_price("ETHUSDT", "3000")
    try:
        yield proc
    finally:
        proc.close()
    # a handler bug answers -1000 and logs a traceback: the contract run must leave none
    assert "Traceback" not in proc.log(), proc.log()


@pytest.fixture(scope="module")
def spot(sim: SimProcess) -> ccxt.binance:
    ex = ccxt_sim.spot(sim)
    ex.load_markets()
    return ex


@pytest.fixture(scope="module")
def fut(sim: SimProcess) -> ccxt.binanceusdm:
    ex = ccxt_sim.futures(sim)
    ex.load_markets()
    return ex


# -- market data ------------------------------------------------------------------------------------


def test_markets_carry_the_filters(spot: ccxt.binance, fut: ccxt.binanceusdm) -> None:
    assert {"BTC/USDT", "ETH/USDT", "BNB/USDT", "SOL/USDT"} <= set(spot.markets)
    m = spot.market(SPOT)
    assert (m["type"], m["spot"], m["base"], m["quote"]) == ("spot", True, "BTC", "USDT")
    assert (m["precision"]["price"], m["precision"]["amount"]) == (0.01, 0.00001)  # PRICE_FILTER / LOT_SIZE
    assert m["limits"]["cost"]["min"] == 5.0  # NOTIONAL
    f = fut.market(SWAP)
    assert (f["type"], f["linear"], f["settle"], f["contractSize"]) == ("swap", True, "USDT", 1.0)
    assert (f["precision"]["price"], f["precision"]["amount"]) == (0.01, 0.001)
    assert f["limits"]["cost"]["min"] == 20.0  # MIN_NOTIONAL
    assert fut.market("BTC/USDT:USDT")["precision"]["price"] == 0.1


def test_ticker_order_book_ohlcv_and_trades(sim: SimProcess, spot: ccxt.binance, fut: ccxt.binanceusdm) -> None:
    sim.set_price("BTCUSDT", "60000")
    sim.set_price("ETHUSDT", "3000")
    for ex, sym, price in ((spot, SPOT, 60000.0), (fut, SWAP, 3000.0)):
        t = ex.fetch_ticker(sym)
        assert t["last"] == price and t["symbol"] == sym
        assert t["high"] >= price >= t["low"] and t["quoteVolume"] > 0
        assert {SPOT if ex is spot else SWAP, "SOL/USDT" + ("" if ex is spot else ":USDT")} <= set(ex.fetch_tickers())
        book = ex.fetch_order_book(sym, 5)
        bids, asks = book["bids"], book["asks"]
        assert len(bids) == len(asks) == 5 and bids[0][0] < price < asks[0][0]
        assert [b[0] for b in bids] == sorted((b[0] for b in bids), reverse=True)
        assert [a[0] for a in asks] == sorted(a[0] for a in asks)
        candles = ex.fetch_ohlcv(sym, "1m", limit=3)
        assert len(candles) == 3 and candles[-1][4] == price and candles[0][0] < candles[-1][0]
        trades = ex.fetch_trades(sym, limit=5)
        assert trades[-1]["price"] == price and trades[-1]["amount"] > 0  # the last bar, on the public tape
        assert [t["timestamp"] for t in trades] == sorted(t["timestamp"] for t in trades)


def test_balances(spot: ccxt.binance, fut: ccxt.binanceusdm) -> None:
    b = spot.fetch_balance()
    assert (b["USDT"]["free"], b["USDT"]["used"], b["BTC"]["total"]) == (100000.0, 0.0, 1.0)
    f = fut.fetch_balance()
    assert f["USDT"]["total"] == 50000.0 and f["USDT"]["free"] == 50000.0  # a funded wallet is shown at once


# -- spot orders ------------------------------------------------------------------------------------


def test_spot_market_limit_cancel_and_queries(sim: SimProcess, spot: ccxt.binance) -> None:
    sim.set_price("BTCUSDT", "60000")
    mkt = spot.create_order(SPOT, "market", "buy", 0.01, params={"clientOrderId": "ccxt-spot-mkt"})
    assert (mkt["status"], mkt["filled"], mkt["clientOrderId"]) == ("closed", 0.01, "ccxt-spot-mkt")
    assert 60000 < mkt["average"] < 60010 and mkt["fee"]["currency"] == "BTC"  # spot fees come from the bought asset
    rest = spot.create_order(SPOT, "limit", "buy", 0.01, 59000, params={"clientOrderId": "ccxt-spot-rest"})
    assert rest["status"] == "open"
    assert [o["id"] for o in spot.fetch_open_orders(SPOT)] == [rest["id"]]
    by_cid = spot.fetch_order(None, SPOT, params={"origClientOrderId": "ccxt-spot-rest"})
    assert (by_cid["id"], by_cid["status"], by_cid["price"]) == (rest["id"], "open", 59000.0)
    canceled = spot.cancel_order(rest["id"], SPOT)
    assert canceled["status"] == "canceled"
    assert spot.fetch_open_orders(SPOT) == []
    closed = {o["id"]: o["status"] for o in spot.fetch_closed_orders(SPOT)}
    assert closed[mkt["id"]] == "closed" and spot.fetch_order(rest["id"], SPOT)["status"] == "canceled"
    mine = spot.fetch_my_trades(SPOT)
    assert mine[-1]["order"] == mkt["id"] and mine[-1]["takerOrMaker"] == "taker"


def test_spot_resting_limit_fills_on_a_trade_through(sim: SimProcess, spot: ccxt.binance) -> None:
    sim.set_price("BTCUSDT", "60000")
    order = spot.create_order(SPOT, "limit", "buy", 0.002, 59500)
    sim.set_price("BTCUSDT", "59400")
    done = spot.fetch_order(order["id"], SPOT)
    assert (done["status"], done["filled"], done["average"]) == ("closed", 0.002, 59500.0)
    fill = [t for t in spot.fetch_my_trades(SPOT) if t["order"] == order["id"]]
    assert [(t["price"], t["amount"], t["takerOrMaker"]) for t in fill] == [(59500.0, 0.002, "maker")]


def test_spot_time_in_force_and_post_only(sim: SimProcess, spot: ccxt.binance) -> None:
    sim.set_price("BTCUSDT", "60000")
    by_cost = spot.create_market_buy_order_with_cost(SPOT, 100)  # MARKET with quoteOrderQty
    assert by_cost["info"]["origQuoteOrderQty"] == "100.00000000" and 0 < by_cost["cost"] <= 100
    ioc = spot.create_order(SPOT, "limit", "sell", 0.001, 61000, params={"timeInForce": "IOC"})
    fok = spot.create_order(SPOT, "limit", "sell", 0.001, 61000, params={"timeInForce": "FOK"})
    assert (ioc["status"], fok["status"]) == ("expired", "expired")
    maker = spot.create_order(SPOT, "limit", "sell", 0.001, 61000, params={"postOnly": True})
    assert maker["info"]["type"] == "LIMIT_MAKER" and maker["status"] == "open" and maker["postOnly"]
    with pytest.raises(ccxt.InvalidOrder, match="immediately match and take"):
        spot.create_order(SPOT, "limit", "sell", 0.001, 59000, params={"postOnly": True})
    spot.cancel_all_orders(SPOT)
    assert spot.fetch_open_orders(SPOT) == []


def test_spot_stop_and_take_profit_orders(sim: SimProcess, spot: ccxt.binance) -> None:
    sim.set_price("BTCUSDT", "60000")
    sl = spot.create_order(SPOT, "market", "sell", 0.001, params={"stopLossPrice": 59000})
    sll = spot.create_order(SPOT, "limit", "sell", 0.001, 59100, params={"stopLossPrice": 59000})
    tp = spot.create_order(SPOT, "market", "sell", 0.001, params={"takeProfitPrice": 61000})
    tpl = spot.create_order(SPOT, "limit", "sell", 0.001, 61100, params={"takeProfitPrice": 61000})
    types = {o["id"]: o["info"]["type"] for o in spot.fetch_open_orders(SPOT)}
    assert types == {sl["id"]: "STOP_LOSS", sll["id"]: "STOP_LOSS_LIMIT", tp["id"]: "TAKE_PROFIT",
                     tpl["id"]: "TAKE_PROFIT_LIMIT"}
    assert spot.fetch_order(sl["id"], SPOT)["triggerPrice"] == 59000.0
    with pytest.raises(ccxt.InvalidOrder, match="trigger immediately"):
        spot.create_order(SPOT, "market", "sell", 0.001, params={"stopLossPrice": 61000})
    sim.set_price("BTCUSDT", "58950")  # reaches the stops: the market stop fills, the stop-limit rests at 59100
    assert spot.fetch_order(sl["id"], SPOT)["status"] == "closed"
    assert spot.fetch_order(sll["id"], SPOT)["status"] == "open"
    sim.set_price("BTCUSDT", "61050")  # up through the take-profits
    assert spot.fetch_order(tp["id"], SPOT)["status"] == "closed"
    assert spot.fetch_order(sll["id"], SPOT)["status"] == "closed"  # traded through 59100 on the way up
    spot.cancel_all_orders(SPOT)


def test_spot_errors_map_to_ccxt_classes(sim: SimProcess, spot: ccxt.binance) -> None:
    sim.set_price("BTCUSDT", "60000")
    with pytest.raises(ccxt.InsufficientFunds):
        spot.create_order(SPOT, "market", "buy", 5)  # 300 000 USDT
    with pytest.raises(ccxt.OrderNotFound):
        spot.fetch_order("999999", SPOT)
    with pytest.raises(ccxt.OrderNotFound):
        spot.cancel_order("999999", SPOT)
    with pytest.raises(ccxt.BadRequest, match="Filter failure: NOTIONAL"):  # -1013, as ccxt maps it for Binance
        spot.create_order(SPOT, "market", "buy", 0.00001)  # below the 5 USDT notional
    bad = ccxt_sim.spot(sim, secret="not-the-secret")
    bad.markets, bad.markets_by_id = spot.markets, spot.markets_by_id
    with pytest.raises(ccxt.AuthenticationError):
        bad.fetch_balance()


# -- USD-M ------------------------------------------------------------------------------------------


def test_leverage_margin_mode_and_positions(sim: SimProcess, fut: ccxt.binanceusdm) -> None:
    sim.set_price("ETHUSDT", "3000")
    fut.set_leverage(10, SWAP)
    fut.set_margin_mode("isolated", SWAP)
    with pytest.raises(ccxt.MarginModeAlreadySet):  # -4046, which ccxt turns into its own class
        fut.set_margin_mode("isolated", SWAP)
    assert fut.fetch_leverage(SWAP)["longLeverage"] == 10
    assert fut.fetch_margin_mode(SWAP)["marginMode"] == "isolated"
    order = fut.create_order(SWAP, "market", "buy", 0.5, params={"clientOrderId": "ccxt-fut-open"})
    assert (order["status"], order["filled"], order["clientOrderId"]) == ("closed", 0.5, "ccxt-fut-open")
    [pos] = fut.fetch_positions([SWAP])
    # (positionRisk v3 carries no leverage, on Binance too: ccxt reads it with fetchLeverage, above)
    assert (pos["side"], pos["contracts"], pos["marginMode"]) == ("long", 0.5, "isolated")
    assert pos["entryPrice"] == order["average"]
    # §7 isolated long: LP = (Q*EP - WB) / (Q * (1 - MMR)), WB = Q*EP/leverage, MMR 0.004 (ETHUSDT)
    q, ep = 0.5, pos["entryPrice"]
    assert pos["liquidationPrice"] == pytest.approx((q * ep - q * ep / 10) / (q * (1 - 0.004)), rel=1e-6)
    # -2019; ccxt picks its USD-M error table by the host name (fapi.binance.com), so on any other host
    # it raises the generic class (simulator/README.md, "ccxt")
    with pytest.raises(ccxt.ExchangeError, match=r'"code":-2019,"msg":"Margin is insufficient."'):
        fut.create_order(SWAP, "market", "buy", 900)


def test_futures_limit_post_only_reduce_only_and_queries(sim: SimProcess, fut: ccxt.binanceusdm) -> None:
    sim.set_price("ETHUSDT", "3000")
    tp = fut.create_order(SWAP, "limit", "sell", 0.2, 3100, params={"reduceOnly": True, "clientOrderId": "ccxt-tp"})
    assert (tp["status"], tp["reduceOnly"]) == ("open", True)
    ioc = fut.create_order(SWAP, "limit", "buy", 0.1, 2900, params={"timeInForce": "IOC"})
    assert ioc["status"] == "expired" and ioc["filled"] == 0
    with pytest.raises(ccxt.InvalidOrder):  # -5021: a FOK order that cannot fill in full
        fut.create_order(SWAP, "limit", "buy", 0.1, 2900, params={"timeInForce": "FOK"})
    gtx = fut.create_order(SWAP, "limit", "buy", 0.1, 2900, params={"postOnly": True})
    assert gtx["info"]["timeInForce"] == "GTX" and gtx["status"] == "open"
    with pytest.raises(ccxt.InvalidOrder):  # -5022: a post-only order that would take
        fut.create_order(SWAP, "limit", "buy", 0.1, 3100, params={"postOnly": True})
    assert {o["id"] for o in fut.fetch_open_orders(SWAP)} == {tp["id"], gtx["id"]}
    assert fut.fetch_order(None, SWAP, params={"origClientOrderId": "ccxt-tp"})["id"] == tp["id"]
    assert fut.cancel_order(gtx["id"], SWAP)["status"] == "canceled"
    sim.set_price("ETHUSDT", "3150")  # through the reduce-only take-profit
    done = fut.fetch_order(tp["id"], SWAP)
    assert (done["status"], done["filled"], done["average"]) == ("closed", 0.2, 3100.0)
    [pos] = fut.fetch_positions([SWAP])
    assert pos["contracts"] == pytest.approx(0.3)
    trades = [t for t in fut.fetch_my_trades(SWAP) if t["order"] == tp["id"]]
    assert trades and all(t["takerOrMaker"] == "maker" and t["fee"]["currency"] == "USDT" for t in trades)
    assert float(trades[0]["info"]["realizedPnl"]) > 0
    assert tp["id"] in {o["id"] for o in fut.fetch_closed_orders(SWAP)}


def test_futures_stop_take_profit_and_trailing_orders(sim: SimProcess, fut: ccxt.binanceusdm) -> None:
    sim.set_price("ETHUSDT", "3000")
    [pos] = fut.fetch_positions([SWAP])
    held = pos["contracts"]
    sl = fut.create_order(SWAP, "market", "sell", held, params={"stopLossPrice": 2900, "reduceOnly": True})
    tp = fut.create_order(SWAP, "market", "sell", held, params={"takeProfitPrice": 3300, "reduceOnly": True})
    stop_limit = fut.create_order(SWAP, "limit", "buy", 0.1, 3210, params={"stopPrice": 3200})
    tp_limit = fut.create_order(SWAP, "limit", "sell", held, 3310, params={"takeProfitPrice": 3300,
                                                                          "reduceOnly": True})
    trail = fut.create_order(SWAP, "market", "sell", 0.1, params={"trailingPercent": 1, "reduceOnly": True})
    close_all = fut.create_order(SWAP, "market", "sell", None, params={"stopLossPrice": 2800, "closePosition": True})
    algo = {o["id"]: o["info"]["orderType"] for o in fut.fetch_open_orders(SWAP, params={"trigger": True})}
    assert algo == {sl["id"]: "STOP_MARKET", tp["id"]: "TAKE_PROFIT_MARKET", stop_limit["id"]: "STOP",
                    tp_limit["id"]: "TAKE_PROFIT", trail["id"]: "TRAILING_STOP_MARKET",
                    close_all["id"]: "STOP_MARKET"}
    assert fut.fetch_order(close_all["id"], SWAP, params={"trigger": True})["info"]["closePosition"] is True
    assert fut.fetch_order(sl["id"], SWAP, params={"trigger": True})["triggerPrice"] == 2900.0
    for o in (trail, stop_limit, tp_limit, close_all):
        fut.cancel_order(o["id"], SWAP, params={"trigger": True})
    with pytest.raises(ccxt.ExchangeError, match="-2021.*Order would immediately trigger"):  # (host-named table)
        fut.create_order(SWAP, "market", "sell", held, params={"stopLossPrice": 3100, "reduceOnly": True})
    sim.set_price("ETHUSDT", "2890")  # the stop fires and closes the position
    assert fut.fetch_positions([SWAP]) == [] or fut.fetch_positions([SWAP])[0]["contracts"] == 0
    assert fut.fetch_order(sl["id"], SWAP, params={"trigger": True})["status"] == "closed"
    fut.cancel_all_orders(SWAP, params={"trigger": True})
    assert fut.fetch_open_orders(SWAP, params={"trigger": True}) == []


def test_funding_rate_and_index_now(sim: SimProcess, fut: ccxt.binanceusdm) -> None:
    rate = fut.fetch_funding_rate("BTC/USDT:USDT")
    assert rate["fundingRate"] == 0.0001 and rate["interestRate"] == 0.0001  # no premium: the interest rate
    assert rate["markPrice"] == rate["indexPrice"] and rate["fundingTimestamp"] % (8 * 3_600_000) == 0
    sim.admin("POST", "/admin/premium", {"symbol": "BTCUSDT", "premium": "0.001"})
    sim.set_price("BTCUSDT", "60000")  # a bar samples the new premium
    rate = fut.fetch_funding_rate("BTC/USDT:USDT")
    assert rate["indexPrice"] == pytest.approx(60000 / 1.001, abs=1e-8) and rate["markPrice"] == 60000
    assert rate["fundingRate"] > 0.0001  # the estimate moves with the interval's premium
    assert set(fut.fetch_funding_rates()) == {"BTC/USDT:USDT", "ETH/USDT:USDT", "BNB/USDT:USDT", "SOL/USDT:USDT"}
    sim.admin("POST", "/admin/premium", {"symbol": "BTCUSDT", "premium": "0"})


def test_position_mode_tiers_and_ledger(fut: ccxt.binanceusdm) -> None:
    assert fut.fetch_position_mode(SWAP)["hedged"] is False
    with pytest.raises(ccxt.ExchangeError, match="-4059.*No need to change position side"):
        fut.set_position_mode(False)
    with pytest.raises(ccxt.OperationFailed, match="Hedge mode"):  # -1000
        fut.set_position_mode(True)
    [tier] = fut.fetch_leverage_tiers([SWAP])[SWAP]
    assert (tier["maintenanceMarginRate"], tier["maxLeverage"]) == (0.004, 125)
    # the income ledger: every wallet change, so its entries add up to the wallet balance
    ledger = fut.fetch_ledger("USDT", since=0, limit=1000)
    assert {e["type"] for e in ledger} >= {"transfer", "commission", "trade"}  # TRANSFER, COMMISSION, REALIZED_PNL
    signed = sum(e["amount"] * (1 if e["direction"] == "in" else -1) for e in ledger)
    wallet = fut.fetch_balance()["info"]["totalWalletBalance"]
    assert signed == pytest.approx(float(wallet), abs=1e-6)


# -- rate limits and faults ------------------------------------------------------------------------


def test_request_weight_429_then_418_map_to_ddos_protection(sim: SimProcess, spot: ccxt.binance,
                                                             fut: ccxt.binanceusdm) -> None:
    sim.clear()
    # the weight window is the wall clock's minute (as Binance's): a boundary inside the sequence
    # would reset it, so start it early in a minute
    if time.time() % 60 > 40:
        time.sleep(60 - time.time() % 60 + 0.2)
    try:
        sim.faults(rate_limit_burst=100_000)
        for ex, sym in ((spot, SPOT), (fut, SWAP)):
            with pytest.raises(ccxt.DDoSProtection, match=r"429.*-1003.*Too much request weight"):
                ex.fetch_order_book(sym)
        for _ in range(5):  # keep going: the 6th rejected request in the minute earns a ban
            with pytest.raises(ccxt.DDoSProtection):
                spot.fetch_ticker(SPOT)
        with pytest.raises(ccxt.DDoSProtection, match=r"418.*IP banned until"):
            spot.fetch_ticker(SPOT)
    finally:
        sim.clear()
    assert spot.fetch_ticker(SPOT)["last"] > 0


def test_order_count_limit_maps_to_ddos_protection(tmp_path: Path) -> None:
    small = SimProcess(tmp_path / "exchange.log", "--speed", "0", "--orders-per-10s", "2")
    try:
        ex = ccxt_sim.spot(small)
        ex.load_markets()
        for _ in range(2):
            ex.create_order(SPOT, "limit", "buy", 0.001, 30000)
        with pytest.raises(ccxt.DDoSProtection, match=r"-1015.*Too many new orders"):
            ex.create_order(SPOT, "limit", "buy", 0.001, 30000)
    finally:
        small.close()


def test_injected_faults_map_to_network_classes(sim: SimProcess, spot: ccxt.binance) -> None:
    sim.set_price("BTCUSDT", "60000")
    try:
        sim.faults(error_5xx_next=1)  # 503 -1008 before execution: nothing happened, retry later
        with pytest.raises(ccxt.ExchangeError, match="-1008.*Service Unavailable"):  # (host-named table)
            spot.fetch_ticker(SPOT)
        sim.faults(status_unknown_next=1)  # 503 -1007 after execution: the outcome is unknown
        with pytest.raises(ccxt.RequestTimeout):
            spot.create_order(SPOT, "limit", "buy", 0.001, 50000, params={"clientOrderId": "ccxt-unknown"})
        # ... and the order is there: ask for it by its client id, as a careful client does
        assert spot.fetch_order(None, SPOT, params={"origClientOrderId": "ccxt-unknown"})["status"] == "open"
        sim.faults(lose_response_next=1)  # executed, connection dropped unanswered
        with pytest.raises(ccxt.NetworkError):
            spot.fetch_balance()
    finally:
        sim.clear()
    spot.cancel_all_orders(SPOT)
    with pytest.raises(ccxt.OrderNotFound, match="-2011"):  # nothing left to cancel: -2011, as Binance answers
        spot.cancel_all_orders(SPOT)
