"""The live gate nothing bypasses: real money is not reachable from config.yaml alone.

(a) ``exchange.venue: mainnet`` + ``paper.venue: testnet`` would send paper bots' orders to Binance
    itself under paper limits: the config is refused, naming both keys.
(b) ``exchange.venue: local`` + a ``local_url`` that is not the local exchange: a Binance host is
    refused in the config; any other host must prove it is the local exchange before a bot trades
    there. Here a forwarding proxy stands in for "some other venue": it passes every request to a
    real local exchange but cannot answer the identity check, so before the gate a live bot traded
    through it with the real-money switch off; now the bot is halted with the reason and no order
    reaches the proxy.
"""
from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from ops.redis_server import free_port
from settings import ConfigError, load_config
from sim_process import SimProcess
from state import keys
from support import snapshots, start_worker, wait_for, write_config


@pytest.mark.parametrize("yaml_text,names", [
    ("paper: {venue: testnet}\nexchange: {venue: mainnet}\n", ["paper.venue", "exchange.venue"]),
    ("exchange: {venue: local, local_url: 'https://api.binance.com'}\n", ["exchange.local_url", "exchange.venue"]),
    ("exchange: {venue: local, local_url: 'https://fapi.binance.com/'}\n", ["exchange.local_url", "exchange.venue"]),
])
def test_a_config_that_reaches_real_money_without_the_switch_is_refused_naming_both_keys(
        tmp_path: Path, yaml_text: str, names: list[str]) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text + "bots:\n  - {name: p, mode: paper, symbol: BTCUSDT, strategy: momentum,"
                                " params: {window: 5, threshold_pct: 0.1}}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    for name in names:
        assert name in str(info.value)


class Proxy:
    """Forwards every HTTP request to ``upstream``, except the local exchange's identity check; records
    what it forwarded. Runs on its own thread."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.seen: list[tuple[str, str]] = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((request.method, request.path))
        if request.path.startswith("/local/"):
            return web.Response(status=404, text="not here")
        async with aiohttp.ClientSession() as s:
            async with s.request(request.method, self.upstream + request.path_qs, data=await request.read(),
                                 headers={k: v for k, v in request.headers.items() if k.lower() != "host"}) as resp:
                return web.Response(status=resp.status, body=await resp.read(),
                                    content_type=resp.content_type or "application/json")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        runner = web.AppRunner(app)
        self.loop.run_until_complete(runner.setup())
        self.loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self.ready.set()
        self.loop.run_forever()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


def test_a_local_url_that_is_not_the_local_exchange_halts_the_live_bot_before_any_order(
        r, redis_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sim = SimProcess(tmp_path / "exchange.log", "--source", "synthetic", "--symbols", "BTCUSDT", "--seed", "4",
                     "--speed", "600", "--warmup", "60")
    proxy = Proxy(sim.url)
    cfg = write_config(tmp_path / "config.yaml", {
        "redis": {"url": redis_server.url, "embedded": False},
        "market": {"source": "synthetic", "symbols": ["BTCUSDT"], "warmup_candles": 30, "speed": 1200},
        "exchange": {"venue": "local", "local_url": proxy.url, "reconcile_every_s": 2},
        "bots": [{"name": "live-x", "mode": "live", "symbol": "BTCUSDT", "strategy": "momentum",
                  "params": {"window": 2, "threshold_pct": 0.01}, "sizing": {"kind": "fixed_quote", "value": 20},
                  "risk": {"blackout_hours_utc": None, "min_entry_interval_s": 0}}],
    })
    w = start_worker(cfg, tmp_path / "worker.log", r, {"BOT_RISK_OVERRIDE": "test: no blackout hours"})
    try:
        wait_for(lambda: r.hget(keys.control("bot", "live-x"), "state") == b"HALTED", 30, "the bot halted")
        reason = r.hget(keys.control("bot", "live-x"), "reason").decode()
        assert "does not prove to be the local exchange" in reason and proxy.url in reason
        wait_for(lambda: (s := snapshots(r).get("live-x")) is not None and s.candles_seen > 20, 30, "candles")
        assert not [p for m, p in proxy.seen if m in ("POST", "DELETE")], proxy.seen  # no order, no cancel
        assert snapshots(r)["live-x"].orders_sent == 0
    finally:
        w.stop()
        proxy.close()
        sim.close()
