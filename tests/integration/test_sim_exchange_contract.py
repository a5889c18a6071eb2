"""Contract test: the local exchange driven by an UNMODIFIED python-binance ``Client``.

The simulator runs as a real subprocess (``python -m simulator``); the client differs from the
production one only in its base URLs (reference/binance-api.md §1.2: subclass, override the
class URL constants). Prices are paused (``--speed 0``) and moved through ``/admin/price`` so
every fill below is deterministic.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from decimal import Decimal as D
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from binance.client import Client
from binance.exceptions import BinanceAPIException

REPO = Path(__file__).resolve().parents[2]
KEY, SECRET = "local-key", "local-secret"

pytestmark = pytest.mark.timeout(60)



def run_async(coro):  # noqa: ANN001, ANN201
    """asyncio.run on a thread of its own: another test in this process (Streamlit's AppTest,
    Playwright) may have left an event loop running on the main thread, which asyncio.run refuses."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    log_path = tmp_path_factory.mktemp("sim") / "exchange.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "simulator", "--host", "127.0.0.1", "--port", str(port), "--seed", "7",
             "--balances", "USDT=10000,BTC=1", "--speed", "0"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/v3/ping", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"simulator did not start: {log_path.read_text()}")
        time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # a handler bug answers -1000 and logs a traceback: the contract run must leave none
    assert "Traceback" not in log_path.read_text(), log_path.read_text()


def sim_client_class(url: str) -> type[Client]:
    """python-binance's Client with only the base URLs overridden (§1.2)."""
    ws = url.replace("http://", "ws://")
    return type("SimClient", (Client,), {
        "API_URL": f"{url}/api",
        "FUTURES_URL": f"{url}/fapi",
        "FUTURES_DATA_URL": f"{url}/futures/data",
        "MARGIN_API_URL": f"{url}/sapi",
        "WS_API_URL": f"{ws}/ws-api/v3",
        "WS_FUTURES_URL": f"{ws}/ws-fapi/v1",
    })


@pytest.fixture(scope="module")
def client(base: str) -> Client:
    return sim_client_class(base)(KEY, SECRET)


def admin(base: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    req = urllib.request.Request(
        f"{base}{path}", method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def set_price(base: str, price: str, volume: str | None = None, symbol: str = "BTCUSDT") -> None:
    body: dict[str, Any] = {"symbol": symbol, "price": price}
    if volume is not None:
        body["volume"] = volume
    admin(base, "POST", "/admin/price", body)


def api_error(fn: Any, *args: Any, **kwargs: Any) -> BinanceAPIException:
    with pytest.raises(BinanceAPIException) as e:
        fn(*args, **kwargs)
    return e.value


def balance(client: Client, asset: str) -> tuple[D, D]:
    b = client.get_asset_balance(asset)
    return D(b["free"]), D(b["locked"])


@pytest.fixture(autouse=True)
def clean(base: str, client: Client) -> Iterator[None]:
    set_price(base, "60000")
    yield
    admin(base, "DELETE", "/admin/faults")
    try:
        client.cancel_all_open_orders(symbol="BTCUSDT")
    except BinanceAPIException:
        pass


# -- market data -----------------------------------------------------------------------------


def test_ping_time_and_weight_header(client: Client) -> None:
    assert client.ping() == {}
    server = client.get_server_time()["serverTime"]
    assert abs(server - time.time() * 1000) < 5000  # wall clock, not market clock
    assert int(client.response.headers["X-MBX-USED-WEIGHT-1M"]) >= 1


def test_exchange_info_and_filters(client: Client) -> None:
    info = client.get_exchange_info()
    assert {"timezone", "serverTime", "rateLimits", "exchangeFilters", "symbols"} <= info.keys()
    assert {s["symbol"] for s in info["symbols"]} >= {"BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"}
    sym = client.get_symbol_info("BTCUSDT")
    assert sym is not None and sym["baseAsset"] == "BTC" and sym["quoteAsset"] == "USDT"
    filters = {f["filterType"]: f for f in sym["filters"]}
    assert {"PRICE_FILTER", "LOT_SIZE", "MARKET_LOT_SIZE", "NOTIONAL"} <= filters.keys()
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert filters["NOTIONAL"]["minNotional"] == "5.00000000"
    assert client.get_symbol_info("NOPEUSDT") is None
    assert api_error(client._get, "exchangeInfo", data={"symbol": "NOPEUSDT"}).code == -1121


def test_klines(client: Client) -> None:
    rows = client.get_klines(symbol="BTCUSDT", interval="1m", limit=5)
    assert len(rows) == 5 and all(len(r) == 12 for r in rows)
    assert all(r[6] == r[0] + 59_999 for r in rows)
    assert all(b[0] - a[0] == 60_000 for a, b in zip(rows, rows[1:]))
    o, h, lo, c = (D(x) for x in rows[0][1:5])
    assert lo <= min(o, c) <= max(o, c) <= h
    hourly = client.get_historical_klines("BTCUSDT", Client.KLINE_INTERVAL_1HOUR, "1 day ago UTC")
    assert 20 <= len(hourly) <= 26 and all(r[6] - r[0] == 3_600_000 - 1 for r in hourly)
    assert api_error(client.get_klines, symbol="BTCUSDT", interval="7m").code == -1120
    assert api_error(client.get_klines, symbol="NOPEUSDT", interval="1m").code == -1121


def test_tickers_and_depth(client: Client) -> None:
    assert client.get_symbol_ticker(symbol="BTCUSDT") == {"symbol": "BTCUSDT", "price": "60000.00000000"}
    assert len(client.get_all_tickers()) >= 4
    bt = client.get_orderbook_ticker(symbol="BTCUSDT")
    assert D(bt["bidPrice"]) < D("60000") < D(bt["askPrice"])
    book = client.get_order_book(symbol="BTCUSDT", limit=5)
    assert len(book["bids"]) == len(book["asks"]) == 5
    assert book["bids"][0][0] == bt["bidPrice"] and book["asks"][0][0] == bt["askPrice"]
    assert [D(p) for p, _ in book["asks"]] == sorted(D(p) for p, _ in book["asks"])
    assert D(book["asks"][4][1]) > D(book["asks"][0][1])  # deeper levels hold more


# -- account and orders --------------------------------------------------------------------------


def test_account_and_commission(client: Client) -> None:
    acct = client.get_account()
    assert acct["accountType"] == "SPOT" and acct["canTrade"] is True
    assert acct["commissionRates"]["taker"] == "0.00100000"
    assert acct["takerCommission"] == 10
    assert {b["asset"] for b in acct["balances"]} >= {"USDT", "BTC"}
    comm = client._get("account/commission", True, data={"symbol": "BTCUSDT"})
    assert comm["symbol"] == "BTCUSDT" and comm["standardCommission"]["taker"] == "0.00100000"


def test_market_order_full_result_ack(client: Client) -> None:
    usdt0, _ = balance(client, "USDT")
    btc0, _ = balance(client, "BTC")
    full = client.order_market_buy(symbol="BTCUSDT", quantity="0.01")
    assert full["status"] == "FILLED" and full["type"] == "MARKET" and full["executedQty"] == "0.01000000"
    assert full["clientOrderId"].startswith("x-HNA2TXFJ")  # python-binance's own id went through
    assert full["fills"] and all(f["commissionAsset"] == "BTC" for f in full["fills"])
    fee = sum(D(f["commission"]) for f in full["fills"])
    assert fee == D("0.01") * D("0.001")
    assert D(full["fills"][0]["price"]) > D("60000")
    assert int(client.response.headers["X-MBX-ORDER-COUNT-10S"]) >= 1
    usdt1, _ = balance(client, "USDT")
    btc1, _ = balance(client, "BTC")
    assert usdt1 == usdt0 - D(full["cummulativeQuoteQty"])
    assert btc1 == btc0 + D("0.01") - fee

    result = client.create_order(symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.01", newOrderRespType="RESULT")
    assert result["status"] == "FILLED" and "fills" not in result and result["side"] == "SELL"
    ack = client.create_order(symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.001", newOrderRespType="ACK")
    assert set(ack) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}

    quote = client.order_market_buy(symbol="BTCUSDT", quoteOrderQty="100")
    assert quote["origQuoteOrderQty"] == "100.00000000" and D(quote["cummulativeQuoteQty"]) <= 100


def test_limit_order_lifecycle_and_trade_through(base: str, client: Client) -> None:
    o = client.order_limit_buy(symbol="BTCUSDT", quantity="0.02", price="59000", newClientOrderId="lim-1")
    assert o["status"] == "NEW" and o["clientOrderId"] == "lim-1" and o["fills"] == []
    assert balance(client, "USDT")[1] == D("1180")  # 0.02 * 59000 locked
    by_id = client.get_order(symbol="BTCUSDT", orderId=o["orderId"])
    by_cid = client.get_order(symbol="BTCUSDT", origClientOrderId="lim-1")
    assert by_id == by_cid and by_id["status"] == "NEW" and by_id["isWorking"] is True
    assert [x["orderId"] for x in client.get_open_orders(symbol="BTCUSDT")] == [o["orderId"]]

    set_price(base, "59000")  # touches only
    assert client.get_order(symbol="BTCUSDT", orderId=o["orderId"])["status"] == "NEW"
    set_price(base, "58999.99", volume="0.005")  # trades through, short volume -> partial
    part = client.get_order(symbol="BTCUSDT", orderId=o["orderId"])
    assert part["status"] == "PARTIALLY_FILLED" and D(part["executedQty"]) > 0
    set_price(base, "58900", volume="10")
    done = client.get_order(symbol="BTCUSDT", orderId=o["orderId"])
    assert done["status"] == "FILLED" and done["executedQty"] == "0.02000000"
    assert done["cummulativeQuoteQty"] == "1180.00000000"  # maker fills at the limit price
    assert balance(client, "USDT")[1] == 0
    trades = client.get_my_trades(symbol="BTCUSDT", orderId=o["orderId"])
    assert len(trades) == 2 and all(t["isMaker"] and t["isBuyer"] and t["price"] == "59000.00000000" for t in trades)
    assert client.get_open_orders(symbol="BTCUSDT") == []


def test_cancel_and_open_orders(client: Client) -> None:
    a = client.order_limit_sell(symbol="BTCUSDT", quantity="0.01", price="65000")
    b = client.order_limit_sell(symbol="BTCUSDT", quantity="0.01", price="66000")
    assert balance(client, "BTC")[1] == D("0.02")
    c = client.cancel_order(symbol="BTCUSDT", orderId=a["orderId"], newClientOrderId="cxl-a")
    assert c["status"] == "CANCELED" and c["origClientOrderId"] == a["clientOrderId"] and c["clientOrderId"] == "cxl-a"
    assert client.get_order(symbol="BTCUSDT", orderId=a["orderId"])["status"] == "CANCELED"
    assert api_error(client.cancel_order, symbol="BTCUSDT", orderId=a["orderId"]).code == -2011
    assert api_error(client.cancel_order, symbol="BTCUSDT", orderId=999_999).code == -2011
    assert api_error(client.get_order, symbol="BTCUSDT", orderId=999_999).code == -2013
    assert api_error(client.get_order, symbol="BTCUSDT", origClientOrderId="never-sent").code == -2013
    gone = client.cancel_all_open_orders(symbol="BTCUSDT")
    assert [x["orderId"] for x in gone] == [b["orderId"]] and gone[0]["status"] == "CANCELED"
    assert balance(client, "BTC")[1] == 0
    assert api_error(client.cancel_all_open_orders, symbol="BTCUSDT").code == -2011


def test_time_in_force_and_limit_maker(client: Client) -> None:
    ask = D(client.get_orderbook_ticker(symbol="BTCUSDT")["askPrice"])
    e = api_error(client.create_order, symbol="BTCUSDT", side="BUY", type="LIMIT_MAKER", quantity="0.001",
                  price=str(ask))
    assert (e.code, e.message) == (-2010, "Order would immediately match and take.")
    maker = client.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT_MAKER", quantity="0.001", price="59000")
    assert set(maker) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}  # ACK default
    top_bid = client.get_order_book(symbol="BTCUSDT", limit=5)["bids"][0]
    more_than_top = D(top_bid[1]) + D("0.001")
    fok = client.order_limit_sell(symbol="BTCUSDT", quantity=str(more_than_top), price=top_bid[0], timeInForce="FOK")
    assert fok["status"] == "EXPIRED" and fok["executedQty"] == "0.00000000" and fok["fills"] == []
    ioc = client.order_limit_buy(symbol="BTCUSDT", quantity="0.001", price="59000", timeInForce="IOC")
    assert ioc["status"] == "EXPIRED"
    taker = client.order_limit_buy(symbol="BTCUSDT", quantity="0.001", price=str(ask))
    assert taker["status"] == "FILLED" and D(taker["fills"][0]["price"]) == ask


def test_spot_stop_loss_limit(base: str, client: Client) -> None:
    o = client.create_order(symbol="BTCUSDT", side="SELL", type="STOP_LOSS_LIMIT", timeInForce="GTC",
                            quantity="0.01", price="58900", stopPrice="59000")
    assert set(o) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}  # ACK default
    q = client.get_order(symbol="BTCUSDT", orderId=o["orderId"])
    assert (q["status"], q["isWorking"], q["stopPrice"], q["type"]) == ("NEW", False, "59000.00000000", "STOP_LOSS_LIMIT")
    e = api_error(client.create_order, symbol="BTCUSDT", side="SELL", type="STOP_LOSS", quantity="0.01",
                  stopPrice="61000")
    assert (e.code, e.message) == (-2010, "Order would trigger immediately.")
    set_price(base, "58950")  # through the stop: becomes a LIMIT sell at 58900, which the book takes
    q = client.get_order(symbol="BTCUSDT", orderId=o["orderId"])
    assert q["status"] == "FILLED" and q["workingTime"] > 0 and D(q["cummulativeQuoteQty"]) >= D("589")


def test_test_order(client: Client) -> None:
    assert client.create_test_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                    quantity="0.001", price="59000") == {}
    rates = client.create_test_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001",
                                     computeCommissionRates="true")
    assert rates["standardCommissionForOrder"]["taker"] == "0.00100000"
    e = api_error(client.create_test_order, symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                  quantity="0.001", price="59000.001")
    assert e.code == -1013 and e.message == "Filter failure: PRICE_FILTER"
    assert client.get_open_orders(symbol="BTCUSDT") == []  # nothing was placed


# -- errors ----------------------------------------------------------------------------------------


def test_auth_errors(base: str, client: Client) -> None:
    cls = sim_client_class(base)
    bad_key = api_error(cls("not-a-key", SECRET).get_account)
    assert (bad_key.code, bad_key.status_code) == (-2015, 401)
    no_key = api_error(cls(None, SECRET).get_account)
    assert (no_key.code, no_key.status_code) == (-2014, 401)
    bad_sig = api_error(cls(KEY, "wrong-secret").get_account)
    assert (bad_sig.code, bad_sig.status_code, bad_sig.message) == (-1022, 400, "Signature for this request is not valid.")
    skewed = cls(KEY, SECRET)
    skewed.timestamp_offset = -20_000  # older than python-binance's recvWindow=10000
    assert api_error(skewed.get_account).code == -1021
    skewed.timestamp_offset = 2_000  # ahead of the server by more than 1000 ms
    assert api_error(skewed.get_account).code == -1021


def test_order_errors(client: Client) -> None:
    def err(**kw: Any) -> BinanceAPIException:
        return api_error(client.create_order, **{"symbol": "BTCUSDT", **kw})

    assert err(symbol="NOPEUSDT", side="BUY", type="MARKET", quantity="1").code == -1121
    e = err(side="BUY", type="LIMIT", timeInForce="GTC", price="59000")
    assert (e.code, e.message) == (-1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.")
    assert err(side="BUY", type="MARKET", quantity="1e-05").code == -1100
    assert err(side="BUY", type="MARKET", quantity="0.000015").message == "Filter failure: LOT_SIZE"
    assert err(side="BUY", type="MARKET", quantity="0.00001").message == "Filter failure: NOTIONAL"
    assert err(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001", price="59000.001").code == -1013
    e = err(side="BUY", type="MARKET", quantity="5")  # 300k USDT with 10k
    assert (e.code, e.message) == (-2010, "Account has insufficient balance for requested action.")
    client.order_limit_buy(symbol="BTCUSDT", quantity="0.001", price="50000", newClientOrderId="dup-1")
    e = err(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001", price="50000", newClientOrderId="dup-1")
    assert (e.code, e.message) == (-2010, "Duplicate order sent.")
    assert api_error(client.get_order, symbol="BTCUSDT").code == -1102


# -- rate limits and faults ----------------------------------------------------------------------------


def test_rate_limit_429_then_418(base: str, client: Client) -> None:
    if time.time() % 60 > 58:  # weight windows reset on the minute: don't straddle one
        time.sleep(60.2 - time.time() % 60)
    admin(base, "POST", "/admin/faults", {"rate_limit_burst": 6000})
    e = api_error(client.ping)
    assert (e.status_code, e.code) == (429, -1003)
    assert int(e.response.headers["Retry-After"]) >= 1
    assert "X-MBX-USED-WEIGHT-1M" in e.response.headers
    codes = []
    for _ in range(10):
        codes.append(api_error(client.ping).status_code)
    assert codes[-1] == 418 and 429 in codes
    banned = api_error(client.get_server_time)
    assert banned.status_code == 418 and "IP banned until" in banned.message
    assert int(banned.response.headers["Retry-After"]) >= 60
    admin(base, "DELETE", "/admin/faults")  # clears the ban too
    assert client.ping() == {}


def test_fault_5xx_before_execution(base: str, client: Client) -> None:
    admin(base, "POST", "/admin/faults", {"error_5xx_next": 1})
    e = api_error(client.order_limit_buy, symbol="BTCUSDT", quantity="0.001", price="50000", newClientOrderId="f5xx")
    assert e.status_code == 503
    assert api_error(client.get_order, symbol="BTCUSDT", origClientOrderId="f5xx").code == -2013  # not executed
    assert client.ping() == {}


def test_fault_status_unknown_after_execution(base: str, client: Client) -> None:
    admin(base, "POST", "/admin/faults", {"status_unknown_next": 1})
    e = api_error(client.order_limit_buy, symbol="BTCUSDT", quantity="0.001", price="50000", newClientOrderId="unk-1")
    assert (e.status_code, e.code) == (503, -1007)
    # the design's rule: resolve an ambiguous outcome by asking for the client order id
    assert client.get_order(symbol="BTCUSDT", origClientOrderId="unk-1")["status"] == "NEW"


def test_fault_lost_response_and_latency(base: str, client: Client) -> None:
    admin(base, "POST", "/admin/faults", {"lose_response_next": 1})
    with pytest.raises(requests.exceptions.ConnectionError):
        client.order_limit_buy(symbol="BTCUSDT", quantity="0.001", price="50000", newClientOrderId="lost-1")
    assert client.get_order(symbol="BTCUSDT", origClientOrderId="lost-1")["status"] == "NEW"
    admin(base, "POST", "/admin/faults", {"latency_ms": 300})
    t0 = time.monotonic()
    client.ping()
    assert time.monotonic() - t0 >= 0.3
    assert admin(base, "GET", "/admin/faults")["latency_ms"] == 300


def test_background_market_moves_prices(base: str, client: Client) -> None:
    before = admin(base, "GET", "/admin/state")
    admin(base, "POST", "/admin/speed", {"speed": 600})
    try:
        time.sleep(0.6)
    finally:
        admin(base, "POST", "/admin/speed", {"speed": 0})
    after = admin(base, "GET", "/admin/state")
    assert after["marketTime"] - before["marketTime"] >= 60_000
    last = client.get_klines(symbol="BTCUSDT", interval="1m", limit=1)[0]
    assert last[0] <= after["marketTime"] <= last[6] + 1


def test_admin_rejects_unknown_symbol(base: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as e:
        admin(base, "POST", "/admin/price", {"symbol": "NOPE", "price": "1"})
    assert e.value.code == 400


# -- WebSocket market streams ------------------------------------------------------------------------


def test_ws_kline_and_book_ticker_with_python_binance(base: str) -> None:
    from binance import AsyncClient, BinanceSocketManager

    ws = base.replace("http://", "ws://")
    rest = sim_client_class(base)
    client_cls = type("SimAsyncClient", (AsyncClient,), {
        k: getattr(rest, k) for k in ("API_URL", "FUTURES_URL", "FUTURES_DATA_URL", "MARGIN_API_URL", "WS_API_URL", "WS_FUTURES_URL")
    })
    bsm_cls = type("SimBSM", (BinanceSocketManager,), {"STREAM_URL": f"{ws}/", "FSTREAM_URL": f"{ws}/"})

    async def run() -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
        client = await client_cls.create(KEY, SECRET)
        try:
            bsm = bsm_cls(client)
            loop = asyncio.get_running_loop()
            klines: list[dict[str, Any]] = []
            async with bsm.kline_socket("BTCUSDT", interval="1m") as sock:
                # 60 one-second steps: at least one kline must close (k.x == true)
                await loop.run_in_executor(None, admin, base, "POST", "/admin/advance", {"steps": 61})
                while not any(m["k"]["x"] for m in klines):
                    klines.append(await asyncio.wait_for(sock.recv(), 5))
            async with bsm.symbol_book_ticker_socket("ETHUSDT") as sock:
                await loop.run_in_executor(None, admin, base, "POST", "/admin/advance", {"steps": 1})
                ticker = await asyncio.wait_for(sock.recv(), 5)
            async with bsm.multiplex_socket(["btcusdt@kline_5m", "solusdt@bookTicker"]) as sock:
                await loop.run_in_executor(None, admin, base, "POST", "/admin/advance", {"steps": 1})
                combined = await asyncio.wait_for(sock.recv(), 5)
            async with bsm.aggtrade_socket("BTCUSDT") as sock:
                await loop.run_in_executor(None, admin, base, "POST", "/admin/advance", {"steps": 1})
                agg = await asyncio.wait_for(sock.recv(), 5)
            assert agg["e"] == "aggTrade" and agg["s"] == "BTCUSDT" and float(agg["p"]) > 0
            assert {"a", "p", "q", "f", "l", "T", "m", "M"} <= set(agg)
            return klines, ticker, combined
        finally:
            await client.close_connection()

    # python-binance's read loop only notices a close when a message arrives (or after its 10 s recv
    # timeout), so let the market run while the sockets are open, as a live market would.
    admin(base, "POST", "/admin/speed", {"speed": 20})
    try:
        klines, ticker, combined = run_async(run())
    finally:
        admin(base, "POST", "/admin/speed", {"speed": 0})
    assert all(m["e"] == "kline" and m["s"] == "BTCUSDT" and m["k"]["i"] == "1m" for m in klines)
    closed = [m for m in klines if m["k"]["x"]][0]
    assert closed["k"]["T"] == closed["k"]["t"] + 59_999 and closed["k"]["t"] % 60_000 == 0
    assert D(ticker["b"]) < D(ticker["a"]) and ticker["s"] == "ETHUSDT"
    assert combined["stream"] in ("btcusdt@kline_5m", "solusdt@bookTicker") and "data" in combined


def test_ws_subscribe_and_drop(base: str) -> None:
    import aiohttp

    ws_url = base.replace("http://", "ws://")

    async def run() -> tuple[Any, Any, Any]:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"{ws_url}/ws") as ws:
                await ws.send_json({"method": "SUBSCRIBE", "params": ["bnbusdt@bookTicker"], "id": 1})
                ack = await ws.receive_json(timeout=5)
                await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 2})
                listed = await ws.receive_json(timeout=5)
                async with session.post(f"{base}/admin/faults", json={"drop_ws": True}) as r:
                    assert r.status == 200
                closed = await ws.receive(timeout=5)
                return ack, listed, closed

    ack, listed, closed = run_async(run())
    assert ack == {"result": None, "id": 1}
    assert listed == {"result": ["bnbusdt@bookTicker"], "id": 2}
    assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)


def test_futures_book_ticker_stream_is_the_futures_book(base: str, client: Client) -> None:
    """The USD-M bookTicker stream shows the futures book on its own tick (0.10) and step, as the
    REST ticker does, not the spot book."""
    import aiohttp

    ws_url = base.replace("http://", "ws://")

    async def run() -> Any:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"{ws_url}/public/stream?streams=btcusdt@bookTicker") as ws:
                async with session.post(f"{base}/admin/advance", json={"steps": 1}) as r:
                    assert r.status == 200
                return await ws.receive_json(timeout=5)

    ev = run_async(run())["data"]
    rest = client.futures_orderbook_ticker(symbol="BTCUSDT")
    assert ev["e"] == "bookTicker" and ev["s"] == "BTCUSDT"
    assert D(ev["b"]) % D("0.10") == 0 and D(ev["a"]) % D("0.10") == 0
    assert (ev["b"], ev["a"]) == (rest["bidPrice"], rest["askPrice"])


# -- USD-M futures REST ----------------------------------------------------------------------------


def test_futures_market_data(client: Client) -> None:
    assert client.futures_ping() == {}
    assert abs(client.futures_time()["serverTime"] - time.time() * 1000) < 5000
    info = client.futures_exchange_info()
    btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    assert btc["contractType"] == "PERPETUAL" and btc["marginAsset"] == "USDT"
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.10" and filters["LOT_SIZE"]["stepSize"] == "0.001"
    assert filters["MIN_NOTIONAL"]["notional"] == "100"
    rows = client.futures_klines(symbol="BTCUSDT", interval="5m", limit=3)
    assert len(rows) == 3 and all(r[6] - r[0] == 299_999 for r in rows)
    mark = client.futures_mark_price(symbol="BTCUSDT")
    assert mark["markPrice"] == "60000.00000000" and "nextFundingTime" in mark
    assert client.futures_symbol_ticker(symbol="BTCUSDT")["price"] == "60000.00"  # /fapi/v2/ticker/price
    bt = client.futures_orderbook_ticker(symbol="BTCUSDT")
    assert D(bt["bidPrice"]) < 60000 < D(bt["askPrice"])
    assert len(client.futures_order_book(symbol="BTCUSDT", limit=5)["asks"]) == 5


def test_futures_orders_positions_account(base: str, client: Client) -> None:
    set_price(base, "3400", symbol="ETHUSDT")
    assert client.futures_change_leverage(symbol="ETHUSDT", leverage=10)["leverage"] == 10
    assert client.futures_change_margin_type(symbol="ETHUSDT", marginType="ISOLATED") == {"code": 200, "msg": "success"}
    assert api_error(client.futures_change_margin_type, symbol="ETHUSDT", marginType="ISOLATED").code == -4046
    cfg = client.futures_symbol_config(symbol="ETHUSDT")[0]
    assert (cfg["leverage"], cfg["marginType"]) == (10, "ISOLATED")
    wallet0 = D(client.futures_account_balance()[0]["balance"])

    ack = client.futures_create_order(symbol="ETHUSDT", side="BUY", type="MARKET", quantity="1")
    assert ack["status"] == "NEW" and ack["executedQty"] == "0.000"  # ACK is the state at acceptance
    assert ack["clientOrderId"].startswith("x-Cb7ytekJ")
    done = client.futures_get_order(symbol="ETHUSDT", orderId=ack["orderId"])
    assert done["status"] == "FILLED" and done["executedQty"] == "1.000" and "time" in done
    res = client.futures_create_order(symbol="ETHUSDT", side="BUY", type="MARKET", quantity="0.5",
                                      newOrderRespType="RESULT")
    assert res["status"] == "FILLED" and D(res["avgPrice"]) > 0

    pos = client.futures_position_information(symbol="ETHUSDT")  # /fapi/v3/positionRisk
    assert len(pos) == 1 and pos[0]["positionAmt"] == "1.500" and "leverage" not in pos[0]
    assert D(pos[0]["isolatedWallet"]) > 0 and D(pos[0]["liquidationPrice"]) > 0
    v2 = client.futures_position_information(symbol="ETHUSDT", version=2)
    assert v2[0]["leverage"] == "10" and v2[0]["marginType"] == "isolated"
    assert api_error(client.futures_change_margin_type, symbol="ETHUSDT", marginType="CROSSED").code == -4048

    acct = client.futures_account()
    assert D(acct["totalWalletBalance"]) < wallet0  # taker fees
    assert any(p["symbol"] == "ETHUSDT" and p["isolated"] for p in acct["positions"])
    trades = client.futures_account_trades(symbol="ETHUSDT")
    assert len(trades) >= 2 and all(t["commissionAsset"] == "USDT" and not t["maker"] for t in trades)

    tp = client.futures_create_order(symbol="ETHUSDT", side="SELL", type="LIMIT", timeInForce="GTC",
                                     quantity="1.5", price="3500", reduceOnly="true")
    assert [o["orderId"] for o in client.futures_get_open_orders(symbol="ETHUSDT")] == [tp["orderId"]]
    set_price(base, "3500.01", symbol="ETHUSDT")  # trades through the take-profit
    filled = client.futures_get_order(symbol="ETHUSDT", orderId=tp["orderId"])
    assert filled["status"] == "FILLED"
    assert client.futures_position_information(symbol="ETHUSDT") == []  # flat, no open orders
    pnl = sum(D(t["realizedPnl"]) for t in client.futures_account_trades(symbol="ETHUSDT"))
    assert pnl > 0

    limit = client.futures_create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                        quantity="0.002", price="59000")
    assert client.futures_cancel_order(symbol="BTCUSDT", orderId=limit["orderId"])["status"] == "CANCELED"
    assert api_error(client.futures_cancel_order, symbol="BTCUSDT", orderId=limit["orderId"]).code == -2011
    assert api_error(client.futures_get_order, symbol="BTCUSDT", orderId=1).code == -2013
    assert client.futures_cancel_all_open_orders(symbol="BTCUSDT")["code"] == 200


def test_futures_conditional_orders_via_algo_api(base: str, client: Client) -> None:
    set_price(base, "150", symbol="SOLUSDT")
    client.futures_create_order(symbol="SOLUSDT", side="BUY", type="MARKET", quantity="10")
    # python-binance routes STOP_MARKET / TAKE_PROFIT_MARKET to POST /fapi/v1/algoOrder
    sl = client.futures_create_order(symbol="SOLUSDT", side="SELL", type="STOP_MARKET", stopPrice="140",
                                     closePosition="true")
    assert sl["algoType"] == "CONDITIONAL" and sl["algoStatus"] == "NEW" and sl["triggerPrice"] == "140.0000"
    assert sl["clientAlgoId"].startswith("x-Cb7ytekJ")
    tp = client.futures_create_order(symbol="SOLUSDT", side="SELL", type="TAKE_PROFIT_MARKET", stopPrice="160",
                                     quantity="10", reduceOnly="true")
    opened = client.futures_get_open_orders(symbol="SOLUSDT", conditional=True)
    assert {a["algoId"] for a in opened} == {sl["algoId"], tp["algoId"]}
    e = api_error(client.futures_create_order, symbol="SOLUSDT", side="SELL", type="STOP_MARKET",
                  stopPrice="155", quantity="10", reduceOnly="true")
    assert (e.code, e.message) == (-2021, "Order would immediately trigger.")
    assert client.futures_cancel_order(symbol="SOLUSDT", algoId=tp["algoId"])["msg"] == "success"
    assert api_error(client.futures_cancel_order, symbol="SOLUSDT", algoId=tp["algoId"]).code == -2011
    set_price(base, "139.5", symbol="SOLUSDT")  # falls through the stop
    fired = client.futures_get_order(symbol="SOLUSDT", algoId=sl["algoId"])
    assert fired["algoStatus"] == "FINISHED" and fired["actualOrderId"]
    assert client.futures_get_order(symbol="SOLUSDT", orderId=int(fired["actualOrderId"]))["status"] == "FILLED"
    assert client.futures_position_information(symbol="SOLUSDT") == []
    assert client.futures_get_open_orders(symbol="SOLUSDT", conditional=True) == []


def test_futures_errors_and_listen_key(client: Client) -> None:
    def err(**kw: Any) -> int:
        return api_error(client.futures_create_order, **{"symbol": "BTCUSDT", **kw}).code

    assert err(side="BUY", type="MARKET", quantity="0.001") == -4164
    assert err(side="BUY", type="MARKET", quantity="0.0015") == -4023
    assert err(side="BUY", type="MARKET", quantity="50") == -2019
    assert err(side="SELL", type="MARKET", quantity="0.01", reduceOnly="true") == -2022
    assert err(symbol="NOPEUSDT", side="BUY", type="MARKET", quantity="1") == -1121
    # python-binance routes conditional types to the Algo API; sent to /fapi/v1/order they get -4120
    e = api_error(client._request_futures_api, "post", "order", True,
                  data={"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET", "quantity": "0.01", "stopPrice": "1"})
    assert e.code == -4120
    key = client.futures_stream_get_listen_key()
    assert len(key) == 64 and client.futures_stream_get_listen_key() == key  # same active key
    assert client.futures_stream_keepalive(key) == {"listenKey": key}
    assert client.futures_stream_close(key) == {}
    assert api_error(client.futures_stream_keepalive, key).code == -1125


# -- user-data streams -------------------------------------------------------------------------------


def test_user_data_streams_spot_ws_api_and_futures_listen_key(base: str) -> None:
    from binance import AsyncClient, BinanceSocketManager

    ws = base.replace("http://", "ws://")
    rest = sim_client_class(base)
    client_cls = type("SimAsyncClient", (AsyncClient,), {
        k: getattr(rest, k) for k in ("API_URL", "FUTURES_URL", "FUTURES_DATA_URL", "MARGIN_API_URL", "WS_API_URL", "WS_FUTURES_URL")
    })
    bsm_cls = type("SimBSM", (BinanceSocketManager,), {"STREAM_URL": f"{ws}/", "FSTREAM_URL": f"{ws}/"})

    async def run() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        client = await client_cls.create(KEY, SECRET)
        try:
            bsm = bsm_cls(client)
            spot: list[dict[str, Any]] = []
            async with bsm.user_socket() as sock:  # WS-API userDataStream.subscribe.signature
                order = await client.order_limit_buy(symbol="BTCUSDT", quantity="0.001", price="50000",
                                                     newClientOrderId="us-1")
                await client.cancel_order(symbol="BTCUSDT", orderId=order["orderId"])
                await client.order_market_buy(symbol="BTCUSDT", quantity="0.001")
                while len([e for e in spot if e.get("e") == "executionReport"]) < 4:
                    spot.append(await asyncio.wait_for(sock.recv(), 5))
            fut: list[dict[str, Any]] = []
            async with bsm.futures_user_socket() as sock:  # listenKey + /private/ws?listenKey=
                await client.futures_create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.002")
                while not any(e.get("e") == "ACCOUNT_UPDATE" for e in fut):
                    fut.append(await asyncio.wait_for(sock.recv(), 5))
                # python-binance leaves a socket only when a message arrives (or after 10 s idle), so
                # cancel a resting order just after the exit starts: its ORDER_TRADE_UPDATE ends the wait
                rest = await client.futures_create_order(symbol="BTCUSDT", side="BUY", type="LIMIT",
                                                         timeInForce="GTC", quantity="0.002", price="55000")

                async def nudge() -> None:
                    await asyncio.sleep(0.2)
                    await client.futures_cancel_order(symbol="BTCUSDT", orderId=rest["orderId"])

                nudger = asyncio.create_task(nudge())
            await nudger
            return spot, fut
        finally:
            await client.close_connection()

    admin(base, "POST", "/admin/speed", {"speed": 20})  # keep messages flowing so python-binance exits fast
    try:
        spot, fut = run_async(run())
    finally:
        admin(base, "POST", "/admin/speed", {"speed": 0})
    reports = [e for e in spot if e.get("e") == "executionReport"]
    assert [(r["x"], r["X"]) for r in reports] == [("NEW", "NEW"), ("CANCELED", "CANCELED"), ("NEW", "NEW"),
                                                     ("TRADE", "FILLED")]
    assert reports[0]["c"] == "us-1" and reports[1]["C"] == "us-1"
    assert reports[3]["N"] == "BTC" and D(reports[3]["n"]) == D("0.000001")
    assert any(e.get("e") == "outboundAccountPosition" for e in spot)
    updates = [e for e in fut if e.get("e") == "ORDER_TRADE_UPDATE"]
    assert updates[-1]["o"]["X"] == "FILLED" and updates[-1]["o"]["x"] == "TRADE" and updates[-1]["o"]["N"] == "USDT"
    acct = next(e for e in fut if e.get("e") == "ACCOUNT_UPDATE")
    assert acct["a"]["m"] == "ORDER" and acct["a"]["P"][0]["s"] == "BTCUSDT" and D(acct["a"]["P"][0]["pa"]) > 0
