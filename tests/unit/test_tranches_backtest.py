"""Adds in backtests: the fast path visits every signal candle and runs the same Bot order code,
so a same-direction signal adds a tranche there exactly as on the per-candle path; both stay
equal (trades, signals, equity, denials) with max_tranches > 1, and the path choice is unchanged."""
from __future__ import annotations

import numpy as np
import pytest

from backtest.build import build_backtest_bot
from backtest.engine import choose_path, run_bots
from backtest.result import BotResult
from backtest.fills import FillModel
from backtest_support import app, random_data

BOT = {"name": "m", "strategy": "momentum", "market": "futures", "max_hold_candles": 40,
       "sizing": {"kind": "percent_equity", "value": 20},
       "params": {"window": 5, "threshold_pct": 0.2, "stop_loss_pct": 0.8, "take_profit_pct": 1.2}}


def run(path: str, max_tranches: int, model: FillModel, bot: dict = BOT) -> BotResult:  # type: ignore[type-arg]
    cfg = app([bot], starting_balance=10_000.0)
    data = {"BTCUSDT": random_data(3000, seed=11)}
    b = build_backtest_bot(cfg.bots[0], cfg, model, "1m")
    b.max_tranches = max_tranches  # what engine.worker.build_bot passes from BotConfig.max_tranches
    return run_bots([(b, {})], data, model, path)[0]  # type: ignore[arg-type]


@pytest.mark.parametrize("fill_at", ["close", "next_open"])
def test_fast_equals_bar_with_adds(fill_at: str) -> None:
    # a volume cap that binds sometimes: partial fills of one entry order merge into one tranche
    model = FillModel(policy="realistic", fill_at=fill_at, slippage_bps=3, maker_fee_pct=0.02, max_volume_pct=50.0)
    fast, bar = run("fast", 3, model), run("bar", 3, model)
    one = run("bar", 1, model)
    assert fast.path == "fast" and bar.path == "bar"
    assert fast.trades == bar.trades and fast.signals == bar.signals
    assert np.array_equal(fast.equity, bar.equity)
    assert fast.fees_paid == bar.fees_paid and fast.denials == bar.denials
    assert fast.orders_sent == bar.orders_sent
    # adds happened: more orders than with one tranche, and bigger trades on average
    assert bar.orders_sent > one.orders_sent
    assert np.mean([t.quantity for t in bar.trades]) > np.mean([t.quantity for t in one.trades])


def test_all_in_sizing_cannot_add_and_keeps_the_fast_path() -> None:
    """The parity-with-backtesting.py and throughput configs size all-in: an add is denied (the
    position cap or the balance), so max_tranches changes nothing but the denial count, and auto
    stays fast."""
    model = FillModel()
    bot = {**BOT, "market": "spot", "sizing": {"kind": "percent_equity", "value": 99.8}}
    three, one = run("auto", 3, model, bot), run("auto", 1, model, bot)
    assert three.path == one.path == "fast"
    assert three.trades == one.trades and np.array_equal(three.equity, one.equity)
    assert sum(three.denials.values()) > sum(one.denials.values())


def test_choose_path_does_not_depend_on_max_tranches() -> None:
    cfg = app([BOT])
    b = build_backtest_bot(cfg.bots[0], cfg, FillModel(), "1m")
    for n in (1, 3, 10):
        b.max_tranches = n
        assert choose_path(b, "auto") == "fast"
