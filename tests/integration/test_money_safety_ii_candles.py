"""Issue 12, items 7 and 8: the candles the bots read, through a real worker on the local exchange (its
market paused; the test closes the candles) with a real redis-server.

7. A restart backfills what the venue traded while the worker was down: in every series a bot reads
   (spot, and ``SYMBOL:futures`` for a USD-M bot) no candle is skipped and none is there twice.
8. A USD-M bot reads the futures market's candles: with futures trading 5 % over spot on the local
   exchange, its last price is the futures one and a stop between the two prices does not fire.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from safety_support import (OPEN_RISK, OVERRIDE, advance, held, last_price, live_config, send_signal, venue,
                            venue_holding)
from state.reader import StateReader
from support import snapshots, start_worker, wait_for

STEP = 60_000


@pytest.fixture
def sim(tmp_path: Path):
    s = venue(tmp_path, speed=0, seed=7)
    yield s
    s.close()


def bots() -> list[dict]:
    # webhook bots: they read the candles and place no order unless told
    return [{"name": f"live-{m}", "mode": "live", "market": m, "symbol": "BTCUSDT", "strategy": "webhook",
             "sizing": {"kind": "fixed_quote", "value": 150}, "risk": OPEN_RISK} for m in ("spot", "futures")]


def series(r, key: str) -> list[int]:
    return [c.t for c in StateReader(r).candles(key, 1000)]


def last_closed(sim) -> int:
    """The open time of the venue's last closed 1m candle (the market is paused: every bar is closed)."""
    return sim.client().klines("BTCUSDT", "1m", limit=1)[-1].open_time


def close_candles(sim, r, n: int, keys: tuple[str, ...]) -> None:
    """Close n candles one at a time, each seen by the running worker before the next."""
    for _ in range(n):
        advance(sim)
        t = last_closed(sim)
        wait_for(lambda: all(series(r, k) and series(r, k)[-1] == t for k in keys), 15,
                 f"the worker storing candle {t}", every=0.1)


def test_a_restart_backfills_the_candles_missed_while_the_worker_was_down(r, sim, redis_server, tmp_path):
    cfg = live_config(tmp_path, redis_server.url, sim.url, bots())
    keys = ("BTCUSDT", "BTCUSDT:futures")
    w = start_worker(cfg, tmp_path / "w1.log", r, OVERRIDE)
    try:
        close_candles(sim, r, 3, keys)
    finally:
        w.kill9()
    before = {k: series(r, k) for k in keys}
    advance(sim, 12)  # twelve candles while no worker runs
    missed_up_to = last_closed(sim)
    w = start_worker(cfg, tmp_path / "w2.log", r, OVERRIDE)
    try:
        close_candles(sim, r, 3, keys)
        time.sleep(0.5)
    finally:
        w.stop()
    for k in keys:
        times = series(r, k)
        assert times[:len(before[k])] == before[k]
        steps = sorted({b - a for a, b in zip(times, times[1:])})
        assert steps == [STEP], f"{k}: a candle skipped or twice (steps {steps[:6]})"
        assert missed_up_to in times and times[-1] == last_closed(sim)


def test_a_usdm_bot_reads_the_futures_candles(r, sim, redis_server, tmp_path):
    spot, fut = bots()
    cfg = live_config(tmp_path, redis_server.url, sim.url, [spot, {**fut, "risk": {**OPEN_RISK,
                                                                                     "max_loss_per_trade_value": 50}}],
                      protective_orders=False)
    sim.admin("POST", "/admin/basis", {"symbol": "BTCUSDT", "basis": "0.05"})  # futures 5 % over spot
    w = start_worker(cfg, tmp_path / "w.log", r, OVERRIDE)
    try:
        close_candles(sim, r, 2, ("BTCUSDT",))
        spot_close = StateReader(r).candles("BTCUSDT", 1)[-1].c
        fut_close = float(sim.client("futures").klines("BTCUSDT", "1m", limit=1)[-1].close)
        assert abs(fut_close / spot_close - 1.05) < 1e-6, (spot_close, fut_close)  # the venue's two markets
        wait_for(lambda: last_price(r, "live-futures") == fut_close, 10,
                 f"the USD-M bot's last price to be the futures close {fut_close} (spot {spot_close})")
        assert snapshots(r)["live-spot"].last_price == spot_close
        assert StateReader(r).candles("BTCUSDT:futures", 1)[-1].c == fut_close
        # long on USD-M with its stop between the spot price and the futures price: only a bot that read
        # the spot candles would see it hit
        stop = round(spot_close * 1.025, 2)
        send_signal(r, "live-futures", "BUY", stop=stop, alert="long-1")
        qty = wait_for(lambda: held(r, "live-futures"), 20, "the USD-M position")
        close_candles(sim, r, 4, ("BTCUSDT", "BTCUSDT:futures"))
        time.sleep(0.5)
        assert held(r, "live-futures") == qty and venue_holding(sim, "futures") > 0  # the stop did not fire
        assert all(c.l > stop for c in StateReader(r).candles("BTCUSDT:futures", 4))
        assert all(c.h < stop for c in StateReader(r).candles("BTCUSDT", 4))
    finally:
        w.stop()
