"""ExchangeFeed over the local exchange's kline WebSocket (real subprocess, python-binance unmodified).

The market is paused (--speed 0) and stepped with /admin/advance (one-second bars), so which
candles close, and when the stream is down, is under the test's control.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from core.types import Candle
from exchange.marketdata import ExchangeFeed
from exchange.venues import venue_urls
from market.feed import Feed
from tests.integration.sim_process import SimProcess

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    p = SimProcess(Path(tmp_path_factory.mktemp("sim")) / "exchange.log", "--seed", "5", "--speed", "0")
    yield p
    p.close()


def _collect(feed: ExchangeFeed, n: int, timeout: float = 10.0) -> list[Candle]:
    stop = threading.Event()
    timer = threading.Timer(timeout, stop.set)
    timer.start()
    out: list[Candle] = []
    try:
        while len(out) < n:
            batch = feed.next_batch(stop)
            if batch is None:
                break
            out.extend(batch)
    finally:
        timer.cancel()
    return out


def _wait(cond, timeout: float = 10.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_candles_over_ws_gap_filled_after_drop_and_stale_alarm(sim: SimProcess) -> None:
    alarms: list[float] = []
    feed = ExchangeFeed(venue_urls("local", sim.url), ["BTCUSDT", "ETHUSDT"], "1m", stale_after_s=1.0,
                        on_stale=alarms.append, batch_grace_s=0.5)
    assert isinstance(feed, Feed)
    try:
        warm = feed.warmup(30)
        assert {s: len(v) for s, v in warm.items()} == {"BTCUSDT": 30, "ETHUSDT": 30}
        start = warm["BTCUSDT"][-1].open_time
        _wait(lambda: feed.stats.messages > 0 or feed.silent_for_s > 0.3)  # socket open

        # 1) live closed candles over the WebSocket, one time step per batch, all symbols
        time.sleep(0.5)
        sim.admin("POST", "/admin/advance", {"steps": 120})
        got = _collect(feed, 4)
        assert [c.symbol for c in got[:2]] == ["BTCUSDT", "ETHUSDT"] and got[0].open_time == got[1].open_time
        assert feed.stats.closed_from_ws >= 2
        assert feed.last_price("BTCUSDT") is not None

        # 2) the stream drops; 3 bars close while it is down; after the reconnect: no hole
        sim.faults(drop_ws=True)
        sim.admin("POST", "/admin/advance", {"steps": 180})
        _wait(lambda: feed.stats.reconnects >= 1)
        time.sleep(1.5)  # python-binance reconnects after ~1 s
        sim.admin("POST", "/admin/advance", {"steps": 61})
        got += _collect(feed, 8)
        assert feed.stats.gap_filled >= 3 * 2  # filled over REST, both symbols
        for sym in ("BTCUSDT", "ETHUSDT"):
            times = [start] + [c.open_time for c in got if c.symbol == sym]
            assert times == list(range(start, start + 60_000 * len(times), 60_000)), times  # contiguous, no dups

        # 3) the venue goes quiet (paused market): the stale alarm fires once, then clears
        # (on a loaded machine the reconnect above may already have tripped it once: count >= 1)
        _wait(lambda: feed.stale, timeout=5)
        assert len(alarms) >= 1 and alarms[-1] >= 1.0 and feed.stats.stale_alarms >= 1
        n_stale = len(alarms)
        time.sleep(1.0)
        assert len(alarms) == n_stale  # once per quiet spell, not once per check
        sim.admin("POST", "/admin/advance", {"steps": 5})
        _wait(lambda: not feed.stale, timeout=5)
    finally:
        t0 = time.monotonic()
        feed.close()
        assert time.monotonic() - t0 < 5
    assert feed.error is None
