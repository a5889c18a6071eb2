"""Vectorised signals() equal evaluate() on every closed prefix, on random and on real data."""
from __future__ import annotations

import numpy as np
import pytest

from backtest.engine import bot_window, signals_by_evaluate
from strategy.base import is_vectorised
from strategy.registry import build_strategy
from backtest_support import BTC_1H, ETH_1H, random_data, shared_data

CASES = [
    ("sma_crossover", {"fast": 3, "slow": 8}),
    ("sma_crossover", {"fast": 10, "slow": 30, "stop_loss_pct": 1.0, "take_profit_pct": 2.5}),
    ("momentum", {"window": 5, "threshold_pct": 0.2}),
    ("momentum", {"window": 20, "threshold_pct": 1.0, "stop_loss_pct": 2.0}),
]


def _check(name: str, params: dict, data, window: int | None) -> int:
    strat = build_strategy(name, params)
    assert is_vectorised(strat)
    candles = data.candles()
    sides = strat.signals(data.opens, data.highs, data.lows, data.closes, data.volumes)
    ref = signals_by_evaluate(strat, candles, window)
    assert np.array_equal(sides, ref), np.flatnonzero(sides != ref)[:10]
    # stop-loss / take-profit of every signal, exactly as evaluate() sets them
    stops, takes = strat.exit_levels(sides, data.closes)
    for i in np.flatnonzero(sides).tolist()[:300]:
        lo = 0 if window is None else max(0, i + 1 - window)
        sig = strat.evaluate(tuple(candles[lo:i + 1]))
        assert (sig.stop_loss is None and np.isnan(stops[i])) or sig.stop_loss == stops[i]
        assert (sig.take_profit is None and np.isnan(takes[i])) or sig.take_profit == takes[i]
    return int(np.count_nonzero(sides))


@pytest.mark.parametrize("name,params", CASES)
@pytest.mark.parametrize("seed", [1, 2])
def test_random_data_full_prefixes(name, params, seed):
    # full prefixes (not the bot's bounded window): the strongest form of the claim
    n = _check(name, params, random_data(1200, seed=seed), window=None)
    assert n > 10  # the data does produce signals


@pytest.mark.parametrize("name,params", CASES)
@pytest.mark.parametrize("rel", [BTC_1H, ETH_1H])
def test_real_data(name, params, rel):
    data = shared_data(rel)
    # the bounded window the Bot hands evaluate() (history_needed + 5, at least 50)
    n = _check(name, params, data, window=bot_window(build_strategy(name, params)))
    assert n > 10


def test_not_vectorised_strategies_say_so():
    assert not is_vectorised(build_strategy("ema_crossover", {"fast": 5, "slow": 20}))
    assert not is_vectorised(build_strategy("rsi_reversion", {}))
    with pytest.raises(NotImplementedError):
        build_strategy("ema_crossover", {}).signals(*(np.ones(5),) * 5)  # type: ignore[attr-defined]


def test_short_input_never_signals():
    strat = build_strategy("sma_crossover", {"fast": 3, "slow": 8})
    d = random_data(5)
    assert not strat.signals(d.opens, d.highs, d.lows, d.closes, d.volumes).any()
