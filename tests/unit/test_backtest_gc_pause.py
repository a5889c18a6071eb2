"""The backtest's collector pause (backtest.engine.gc_paused): off during a run, back after it, also
when runs overlap in threads or the caller had turned the collector off itself."""
from __future__ import annotations

import gc
import threading

import pytest

from backtest.engine import gc_paused


@pytest.fixture(autouse=True)
def _collector_back() -> None:  # type: ignore[misc]
    yield
    gc.enable()


def test_the_collector_is_off_during_a_run_and_back_after_it_even_when_the_run_raises() -> None:
    gc.enable()
    with pytest.raises(RuntimeError):
        with gc_paused():
            assert not gc.isenabled()
            raise RuntimeError("a run that fails")
    assert gc.isenabled()


def test_overlapping_runs_in_threads_bring_it_back_only_when_the_last_ends() -> None:
    gc.enable()
    first_in, second_done, first_may_end = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def first() -> None:
        with gc_paused():
            first_in.set()
            first_may_end.wait(10)
            seen.append(gc.isenabled())

    def second() -> None:
        first_in.wait(10)
        with gc_paused():
            pass
        seen.append(gc.isenabled())  # the first run is still going: still off
        second_done.set()

    a, b = threading.Thread(target=first), threading.Thread(target=second)
    a.start(), b.start()
    second_done.wait(10)
    first_may_end.set()
    a.join(10), b.join(10)
    assert seen == [False, False]
    assert gc.isenabled()


def test_a_caller_that_had_it_off_keeps_it_off() -> None:
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()


def test_a_backtest_run_runs_every_candle_with_the_collector_off_and_leaves_it_on() -> None:
    """Through the real run (backtest.engine.run_bots, the bar path: the bot's on_candle for each bar)."""
    from backtest.build import build_backtest_bot
    from backtest.engine import run_bots
    from backtest.fills import FillModel
    from backtest_support import app, random_data

    gc.enable()
    model = FillModel()
    cfg = app([{"name": "m", "strategy": "momentum", "params": {"window": 5, "threshold_pct": 0.2}}])
    bot = build_backtest_bot(cfg.bots[0], cfg, model, "1m")
    seen: list[bool] = []
    step = bot.on_candle

    def on_candle(c):  # type: ignore[no-untyped-def]
        seen.append(gc.isenabled())
        step(c)

    bot.on_candle = on_candle  # type: ignore[method-assign]
    res = run_bots([(bot, {})], {"BTCUSDT": random_data(500, seed=11)}, model, path="bar")[0]
    assert res.orders_sent > 0 and len(seen) == 500  # it traded: the order path ran, on every candle
    assert not any(seen)
    assert gc.isenabled()
