"""SyntheticFeed and ReplayFeed: ordering, continuity, resume, stop, validation on the way out."""
from __future__ import annotations

import math
import threading

import pytest

from core.clock import SimClock
from core.types import Candle
from market.feed import Feed, ReplayFeed, SyntheticFeed
from market.synthetic import SyntheticMarket

M = 60_000
T0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC
FAST = 6000.0  # 1m bar every 10 ms


def _drain(feed: Feed, n: int) -> list[list[Candle]]:
    stop = threading.Event()
    out = []
    for _ in range(n):
        batch = feed.next_batch(stop)
        assert batch is not None
        out.append(batch)
    return out


def test_synthetic_feed_warmup_then_continuous_batches() -> None:
    feed = SyntheticFeed(SyntheticMarket(seed=1), speed=FAST, start_open_time=T0 + 30 * M)
    assert isinstance(feed, Feed)
    assert feed.symbols == ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT") and feed.interval == "1m"
    hist = feed.warmup(30)
    assert feed.warmup(30) is hist  # idempotent: no second, different history
    for series in hist.values():
        assert [c.open_time for c in series] == [T0 + i * M for i in range(30)]
    batches = _drain(feed, 15)
    last = {s: hist[s][-1] for s in feed.symbols}
    for k, batch in enumerate(batches):
        assert [c.symbol for c in batch] == list(feed.symbols)
        for c in batch:
            assert c.open_time == T0 + (30 + k) * M
            assert c.open == last[c.symbol].close  # continuous across warm-up -> live
            last[c.symbol] = c
    assert feed.last_price("ETHUSDT") == last["ETHUSDT"].close
    assert feed.last_price("DOGEUSDT") is None
    assert feed.validator.accepted == 15 * 4 and not feed.validator.rejected


def test_synthetic_feed_warmup_after_start_is_an_error() -> None:
    feed = SyntheticFeed(SyntheticMarket(seed=1), speed=FAST, start_open_time=T0)
    feed.next_batch(threading.Event())
    with pytest.raises(RuntimeError):
        feed.warmup(5)


def test_synthetic_feed_default_start_is_current_bar() -> None:
    clock = SimClock(T0 + 17 * M + 12_345)
    feed = SyntheticFeed(SyntheticMarket(seed=2), speed=FAST, clock=clock)
    assert feed.next_open_time == T0 + 17 * M
    hist = feed.warmup(10)
    assert hist["BTCUSDT"][-1].open_time == T0 + 16 * M
    assert feed.next_batch(threading.Event())[0].open_time == T0 + 17 * M  # type: ignore[index]


def test_synthetic_feed_is_deterministic_for_a_seed() -> None:
    def run() -> list[list[Candle]]:
        feed = SyntheticFeed(SyntheticMarket(seed=7), speed=FAST, start_open_time=T0)
        feed.warmup(5)
        return _drain(feed, 5)

    assert run() == run()


def test_synthetic_feed_resume_after_restart() -> None:
    first = SyntheticFeed(SyntheticMarket(seed=3), speed=FAST, start_open_time=T0)
    first.warmup(20)
    batches = _drain(first, 5)
    stored = {c.symbol: c for c in batches[-1]}

    # New worker, new seed: time and prices still continue from the stored candles.
    second = SyntheticFeed(SyntheticMarket(seed=99), speed=FAST, resume=stored)
    assert second.last_price("BTCUSDT") == stored["BTCUSDT"].close
    warm = second.warmup(10)
    for sym, c in stored.items():
        assert warm[sym][-1].close == c.close and warm[sym][-1].open_time == c.open_time
    nxt = _drain(second, 3)
    for k, batch in enumerate(nxt):
        for c in batch:
            assert c.open_time == stored[c.symbol].open_time + (k + 1) * M
    for c in nxt[0]:
        assert c.open == stored[c.symbol].close
    assert not second.validator.rejected


def test_synthetic_feed_resume_with_partial_symbols_and_bad_input() -> None:
    market = SyntheticMarket(seed=4)
    stored = Candle("ETHUSDT", T0, 3000.0, 3001.0, 2999.0, 3000.5, 10.0)
    feed = SyntheticFeed(market, speed=FAST, resume={"ETHUSDT": stored})
    batch = feed.next_batch(threading.Event())
    assert batch is not None
    by = {c.symbol: c for c in batch}
    assert by["ETHUSDT"].open == 3000.5 and by["ETHUSDT"].open_time == T0 + M
    assert by["BTCUSDT"].open_time == T0 + M  # symbols without a stored candle join on the same clock
    with pytest.raises(ValueError):
        SyntheticFeed(SyntheticMarket(seed=4), resume={"DOGEUSDT": stored})
    with pytest.raises(ValueError):
        SyntheticFeed(SyntheticMarket(seed=4), speed=0)


def test_stop_interrupts_a_slow_feed_promptly() -> None:
    feed = SyntheticFeed(SyntheticMarket(seed=5), speed=0.0001, start_open_time=T0)  # 1 bar / 7 days
    stop = threading.Event()
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(feed.next_batch(stop)))
    worker.start()
    stop.set()
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert result == [None]
    assert feed.next_batch(stop) is None


def _series(sym: str, start: int, n: int, price: float) -> list[Candle]:
    return [Candle(sym, start + i * M, price + i, price + i + 1, price + i - 1, price + i + 0.5, 1.0)
            for i in range(n)]


def test_replay_feed_order_warmup_and_exhaustion() -> None:
    btc = _series("BTCUSDT", T0, 20, 100.0)
    eth = _series("ETHUSDT", T0 + 3 * M, 17, 10.0)  # starts later
    feed = ReplayFeed({"BTCUSDT": btc, "ETHUSDT": eth})
    assert isinstance(feed, Feed)
    assert feed.symbols == ("BTCUSDT", "ETHUSDT") and feed.interval == "1m"
    warm = feed.warmup(5)
    assert [c.open_time for c in warm["ETHUSDT"]] == [T0 + i * M for i in range(3, 8)]
    assert [c.open_time for c in warm["BTCUSDT"]] == [T0 + i * M for i in range(3, 8)]  # last 5 before cut
    assert feed.last_price("BTCUSDT") == btc[7].close

    stop = threading.Event()
    times = []
    while (batch := feed.next_batch(stop)) is not None:
        assert len({c.open_time for c in batch}) == 1
        assert [c.symbol for c in batch] == ["BTCUSDT", "ETHUSDT"]
        times.append(batch[0].open_time)
    assert times == [T0 + i * M for i in range(8, 20)]
    assert feed.next_batch(stop) is None
    assert feed.last_price("ETHUSDT") == eth[-1].close and feed.remaining == 0


def test_replay_feed_drops_bad_candles_and_counts_them() -> None:
    btc = _series("BTCUSDT", T0, 6, 100.0)
    nan = Candle("BTCUSDT", T0 + 6 * M, math.nan, 1, 1, 1, 1)
    bad = btc[:3] + [btc[2], nan, btc[1]] + btc[3:]  # duplicate, NaN, backwards
    feed = ReplayFeed(bad, speed=FAST)
    stop = threading.Event()
    got = []
    while (batch := feed.next_batch(stop)) is not None:
        got.extend(batch)
    assert got == btc
    assert feed.validator.rejected == {"duplicate open_time": 1, "non-finite value": 1,
                                       "open_time went backwards": 1}


def test_replay_feed_stop_and_errors() -> None:
    feed = ReplayFeed(_series("BTCUSDT", T0, 5, 1.0))
    stop = threading.Event()
    assert feed.next_batch(stop) is not None
    with pytest.raises(RuntimeError):
        feed.warmup(2)
    stop.set()
    assert feed.next_batch(stop) is None
    with pytest.raises(ValueError):
        ReplayFeed([Candle("X", 0, 1, 1, 1, 1, 1, "1m"), Candle("Y", 0, 1, 1, 1, 1, 1, "5m")])
    empty = ReplayFeed([], interval="1h")
    assert empty.interval == "1h" and empty.warmup(3) == {} and empty.next_batch(stop) is None
