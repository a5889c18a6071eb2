"""Contract test: the local exchange's WebSocket streams driven by ccxt.pro (``binance`` for spot,
``binanceusdm`` for USD-M), with the same URLs and switches as the REST suite (ccxt_sim.py).

Public streams need a moving market: ``ccxt_sim.while_moving`` trades the symbol through a few
prices (``/admin/price``) while a watch call waits. The order book is checked the hard way: ccxt
builds it from a REST snapshot plus the diff-depth stream (Binance's procedure), and the result
must equal the exchange's own book level for level.
"""
from __future__ import annotations

import asyncio
from typing import Any, Iterator

import pytest

import ccxt_sim
from ccxt_sim import run_async, while_moving
from sim_process import SimProcess

pytestmark = pytest.mark.timeout(120)

MARKETS = [("spot", "BTC/USDT", "BTCUSDT"), ("futures", "BTC/USDT:USDT", "BTCUSDT")]
PRICES = ["60000", "60012.5", "59987.5", "60020"]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    proc = SimProcess(tmp_path_factory.mktemp("ccxtpro") / "exchange.log", "--speed", "0", "--seed", "5",
                      "--balances", "USDT=100000,BTC=1", "--futures-balance", "50000")
    proc.set_price("BTCUSDT", "60000")
    try:
        yield proc
    finally:
        proc.close()
    assert "Traceback" not in proc.log(), proc.log()


def pro(sim: SimProcess, market: str) -> Any:
    return ccxt_sim.pro_spot(sim) if market == "spot" else ccxt_sim.pro_futures(sim)


@pytest.mark.parametrize("market,symbol,sym_id", MARKETS)
def test_public_ticker_ohlcv_and_trades(sim: SimProcess, market: str, symbol: str, sym_id: str) -> None:
    async def run() -> None:
        ex = pro(sim, market)
        try:
            await ex.load_markets()
            ticker = await while_moving(sim, sym_id, PRICES, lambda: ex.watch_ticker(symbol))
            assert ticker["symbol"] == symbol and str(ticker["last"]) in {str(float(p)) for p in PRICES}
            candles = await while_moving(sim, sym_id, PRICES, lambda: ex.watch_ohlcv(symbol, "1m"))
            rest = await ex.fetch_ohlcv(symbol, "1m", limit=1)
            assert candles[-1][0] == rest[-1][0]  # the open kline, the same one REST shows
            trades = await while_moving(sim, sym_id, PRICES, lambda: ex.watch_trades(symbol))
            tape = {(t["id"], t["price"]) for t in await ex.fetch_trades(symbol, limit=50)}
            assert trades and {(t["id"], t["price"]) for t in trades} <= tape  # the same public trades as REST
        finally:
            await ex.close()

    run_async(run())


@pytest.mark.parametrize("market,symbol,sym_id", MARKETS)
def test_order_book_from_snapshot_and_diffs_equals_the_exchange(sim: SimProcess, market: str, symbol: str,
                                                               sym_id: str) -> None:
    async def run() -> None:
        ex = pro(sim, market)
        try:
            await ex.load_markets()

            async def several_updates() -> Any:
                book = None
                for _ in range(6):  # snapshot, then diffs across several price moves
                    book = await ex.watch_order_book(symbol)
                return book

            await while_moving(sim, sym_id, PRICES, several_updates)
            # one more move, and the book it leaves (no further move for 10 s)
            local = await while_moving(sim, sym_id, ["60003.3"], lambda: ex.watch_order_book(symbol), every_s=10)
            rest = await ex.fetch_order_book(symbol, 100)
            assert local["nonce"] == rest["nonce"]
            assert local["bids"][:100] == rest["bids"] and local["asks"][:100] == rest["asks"]
        finally:
            await ex.close()

    run_async(run())


@pytest.mark.parametrize("market,symbol,sym_id", MARKETS)
def test_private_orders_my_trades_and_balance(sim: SimProcess, market: str, symbol: str, sym_id: str) -> None:
    async def run() -> None:
        sim.set_price(sym_id, "60000")
        ex = pro(sim, market)
        try:
            await ex.load_markets()
            orders = asyncio.ensure_future(ex.watch_orders(symbol))
            trades = asyncio.ensure_future(ex.watch_my_trades(symbol))
            balance = asyncio.ensure_future(ex.watch_balance())
            await asyncio.sleep(1.0)  # subscribed (spot: WS-API signature; USD-M: listenKey socket)
            placed = await ex.create_order(symbol, "market", "buy", 0.01, params={"clientOrderId": f"pro-{market}"})
            got = await asyncio.wait_for(orders, 10)
            assert got[-1]["id"] == placed["id"] and got[-1]["clientOrderId"] == f"pro-{market}"
            mine = await asyncio.wait_for(trades, 10)
            assert mine[-1]["order"] == placed["id"] and mine[-1]["amount"] == 0.01
            assert mine[-1]["price"] == placed["average"]
            bal = await asyncio.wait_for(balance, 10)
            rest = await ex.fetch_balance()
            if market == "spot":
                assert bal["BTC"]["total"] == rest["BTC"]["total"] and bal["USDT"]["free"] == rest["USDT"]["free"]
            else:  # the stream's balance is the wallet (ccxt's option 'wallet': 'wb'); REST's total adds uPnL
                usdt = [a for a in rest["info"]["assets"] if a["asset"] == "USDT"][0]
                assert bal["USDT"]["total"] == float(usdt["walletBalance"])
            resting = asyncio.ensure_future(ex.watch_orders(symbol))
            await asyncio.sleep(0.2)
            limit = await ex.create_order(symbol, "limit", "buy", 0.01, 55000)
            seen = await asyncio.wait_for(resting, 10)
            assert seen[-1]["id"] == limit["id"] and seen[-1]["status"] == "open"
            canceled = asyncio.ensure_future(ex.watch_orders(symbol))
            await asyncio.sleep(0.2)
            await ex.cancel_order(limit["id"], symbol)
            seen = await asyncio.wait_for(canceled, 10)
            assert seen[-1]["id"] == limit["id"] and seen[-1]["status"] == "canceled"
        finally:
            await ex.close()

    run_async(run())


def test_futures_positions_stream(sim: SimProcess) -> None:
    async def run() -> None:
        sim.set_price("ETHUSDT", "3000")
        ex = ccxt_sim.pro_futures(sim)
        try:
            await ex.load_markets()
            await ex.watch_positions(["ETH/USDT:USDT"])  # the REST snapshot ccxt takes first (no ETH position)
            watch = asyncio.ensure_future(ex.watch_positions(["ETH/USDT:USDT"]))
            await asyncio.sleep(0.5)
            await ex.create_order("ETH/USDT:USDT", "market", "sell", 0.2)
            positions = await asyncio.wait_for(watch, 10)  # from the ACCOUNT_UPDATE the fill sends
            pos = [p for p in positions if p["symbol"] == "ETH/USDT:USDT"][-1]
            assert (pos["side"], pos["contracts"]) == ("short", 0.2)
        finally:
            await ex.close()

    run_async(run())
