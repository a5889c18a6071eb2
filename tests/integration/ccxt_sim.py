"""Test helper: ccxt clients of the local exchange, a second independent Binance client beside
python-binance.

Only the URLs differ from ccxt's defaults, plus the option switches a user sets for any
Binance-compatible endpoint that serves /api and /fapi but not Binance's wallet service (/sapi) nor
COIN-M (/dapi) (simulator/README.md, "ccxt"):
    fetchCurrencies False   currencies come from /sapi/v1/capital/config/getall (the wallet service)
    fetchMargins False      (spot) margin pair lists come from /sapi/v1/margin/*
    fetchMarkets.types      (spot) ['spot']: no COIN-M markets; USD-M is ccxt.binanceusdm's
"""
from __future__ import annotations

import asyncio
import threading
from typing import Any, Awaitable, Callable, Coroutine, TypeVar

import ccxt
import ccxt.pro

from sim_process import KEY, SECRET, SimProcess

T = TypeVar("T")

SPOT_OPTIONS: dict[str, Any] = {"fetchCurrencies": False, "fetchMargins": False, "fetchMarkets": {"types": ["spot"]}}
FUTURES_OPTIONS: dict[str, Any] = {"fetchCurrencies": False}


def rest_urls(base: str) -> dict[str, str]:
    """ccxt's ``urls['api']`` REST entries, all on the local exchange."""
    return {
        "public": f"{base}/api/v3", "private": f"{base}/api/v3", "v1": f"{base}/api/v1",
        "sapi": f"{base}/sapi/v1", "sapiV2": f"{base}/sapi/v2", "sapiV3": f"{base}/sapi/v3", "sapiV4": f"{base}/sapi/v4",
        "fapiPublic": f"{base}/fapi/v1", "fapiPublicV2": f"{base}/fapi/v2", "fapiPublicV3": f"{base}/fapi/v3",
        "fapiPrivate": f"{base}/fapi/v1", "fapiPrivateV2": f"{base}/fapi/v2", "fapiPrivateV3": f"{base}/fapi/v3",
        "fapiData": f"{base}/futures/data",
    }


def ws_urls(base: str) -> dict[str, Any]:
    """ccxt.pro's ``urls['api']['ws']``: market streams under /ws (ccxt adds /public, /market and
    /private for USD-M itself), the spot user stream on the WebSocket API."""
    ws = base.replace("http://", "ws://")
    return {"spot": f"{ws}/ws", "margin": f"{ws}/ws", "linear": f"{ws}/ws",
            "ws-api": {"spot": f"{ws}/ws-api/v3", "linear": f"{ws}/ws-fapi/v1"}}


def _configure(ex: Any, base: str, pro: bool) -> Any:
    ex.urls["api"] = {**rest_urls(base), **({"ws": ws_urls(base)} if pro else {})}
    return ex


def spot(sim: SimProcess, **config: Any) -> ccxt.binance:
    return _configure(ccxt.binance({"apiKey": KEY, "secret": SECRET, "options": dict(SPOT_OPTIONS), **config}),
                      sim.url, pro=False)


def futures(sim: SimProcess, **config: Any) -> ccxt.binanceusdm:
    return _configure(ccxt.binanceusdm({"apiKey": KEY, "secret": SECRET, "options": dict(FUTURES_OPTIONS), **config}),
                      sim.url, pro=False)


def pro_spot(sim: SimProcess) -> ccxt.pro.binance:
    return _configure(ccxt.pro.binance({"apiKey": KEY, "secret": SECRET, "options": dict(SPOT_OPTIONS)}),
                      sim.url, pro=True)


def pro_futures(sim: SimProcess) -> ccxt.pro.binanceusdm:
    return _configure(ccxt.pro.binanceusdm({"apiKey": KEY, "secret": SECRET, "options": dict(FUTURES_OPTIONS)}),
                      sim.url, pro=True)


def run_async(coro: Coroutine[Any, Any, T], timeout: float = 90.0) -> T:
    """asyncio.run on a daemon thread of its own: another test in this process (Streamlit's AppTest,
    Playwright) may have left an event loop running on the main thread, which asyncio.run refuses;
    and a hung client must fail the test after ``timeout`` instead of hanging the run."""
    box: dict[str, Any] = {}

    def main() -> None:
        try:
            box["result"] = asyncio.run(coro)
        except BaseException as e:  # noqa: BLE001 - re-raised on the test's thread
            box["error"] = e

    thread = threading.Thread(target=main, name="ccxt-test-loop", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"the ccxt coroutine did not finish within {timeout} s")
    if "error" in box:
        raise box["error"]
    return box["result"]  # type: ignore[no-any-return]


async def while_moving(sim: SimProcess, symbol: str, prices: list[str], watch: Callable[[], Awaitable[T]],
                       timeout: float = 20.0, every_s: float = 0.3) -> T:
    """Await ``watch()`` while the exchange trades ``symbol`` through ``prices`` (cycled), one admin
    bar every ``every_s`` seconds: a stream needs the market to move to say anything."""
    loop = asyncio.get_running_loop()

    async def mover() -> None:
        i = 0
        while True:
            await loop.run_in_executor(None, sim.set_price, symbol, prices[i % len(prices)])
            i += 1
            await asyncio.sleep(every_s)

    task = asyncio.create_task(mover())
    try:
        return await asyncio.wait_for(watch(), timeout)
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
