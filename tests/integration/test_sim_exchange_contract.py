"""Contract test: the local exchange driven by an UNMODIFIED python-binance ``Client``.

The simulator runs as a real subprocess (``python -m exchange.sim``); the client differs from the
production one only in its base URLs (reference/binance-api.md §1.2: subclass, override the
class URL constants). Prices are paused (``--speed 0``) and moved through ``/admin/price`` so
every fill below is deterministic.
"""
from __future__ import annotations

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "exchange.sim", "--host", "127.0.0.1", "--port", str(port), "--seed", "7",
         "--balances", "USDT=10000,BTC=1", "--speed", "0"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
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
            out = proc.stdout.read().decode() if proc.stdout else ""
            proc.kill()
            pytest.fail(f"simulator did not start: {out}")
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
