"""Bad candles from the feed are rejected, counted and recorded; the worker keeps trading."""
from __future__ import annotations

import threading

import fakeredis

from core.types import INTERVAL_MS, Candle
from engine.worker import Worker
from market.feed import ReplayFeed
from settings import AppConfig
from state import keys
from state.reader import StateReader

T0 = 1_704_067_200_000
M = INTERVAL_MS["1m"]


def candle(i: int, price: float, high: float | None = None) -> Candle:
    return Candle("BTCUSDT", T0 + i * M, price, price if high is None else high, price, price, 1.0)


def test_bad_candles_are_rejected_and_recorded_and_the_worker_goes_on() -> None:
    good = [candle(i, 100.0 + i) for i in range(12)]
    bad = [
        candle(12, 200.0, high=150.0),          # high below open/close
        Candle("BTCUSDT", T0 + 13 * M, float("nan"), 1, 1, 1, 1.0),  # not finite
        good[5],                                 # duplicate / going back in time
    ]
    after = [candle(i, 100.0 + i) for i in range(14, 20)]
    feed = ReplayFeed(good + bad + after)
    app = AppConfig(market={"symbols": ["BTCUSDT"], "warmup_candles": 5},
                    bots=[{"name": "p", "mode": "paper", "symbol": "BTCUSDT", "strategy": "momentum",
                           "params": {"window": 2, "threshold_pct": 0.5}, "risk": {"max_position_pct": 100, "max_loss_per_trade_pct": None, "daily_loss_pct": None, "max_drawdown_pct": None}}])
    r = fakeredis.FakeRedis()
    worker = Worker(app, r, feed)
    worker.start()
    stop = threading.Event()
    while (batch := feed.next_batch(stop)) is not None:
        if batch:
            worker.step(batch)
    counts = {k.decode(): int(v) for k, v in r.hgetall(keys.CANDLE_REJECTS).items()}
    assert sum(counts.values()) == 3, counts
    rejects = [f for _, f in r.xrange(keys.REJECTS)]
    assert len(rejects) == 3 and all(f[b"kind"] == b"candle" for f in rejects)
    assert any(b"high" in f[b"detail"] for f in rejects)
    # The good candles after the bad ones were traded on: the bot saw the last one.
    worker.write_marks()  # the marks a burst held back (the health loop writes them every second)
    snap = StateReader(r).snapshots()["p"]
    assert snap.last_candle_time == T0 + 19 * M
    stored = [c.t for c in StateReader(r).candles("BTCUSDT", 100)]
    assert stored == sorted(set(stored)) and T0 + 12 * M not in stored and T0 + 13 * M not in stored
