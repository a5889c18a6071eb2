"""Incremental indicators (strategy/incremental.py) give evaluate()'s answers: on random and real data,
through a bot's bounded history, after a history that jumps (warm-up, restore), and in backtests on the
bar path (steppers on) against the bar path with them off and against the fast path."""
from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from backtest.engine import run_config
from backtest.fills import FillModel
from backtest_support import BTC_1H, ETH_1H, app, random_data, shared_data
from core.types import Side
from strategy import incremental
from strategy.base import history_window
from strategy.incremental import RollingMean, Wilder, stepper_for
from strategy.indicators import ema, sma
from strategy.registry import build_strategy

CASES = [
    ("sma_crossover", {"fast": 3, "slow": 8}),
    ("sma_crossover", {"fast": 10, "slow": 30, "stop_loss_pct": 1.0, "take_profit_pct": 2.5}),
    ("ema_crossover", {"fast": 5, "slow": 20}),
    ("ema_crossover", {"fast": 12, "slow": 26, "stop_loss_pct": 2.0}),
    ("momentum", {"window": 5, "threshold_pct": 0.2}),
    ("momentum", {"window": 20, "threshold_pct": 1.0}),
    ("rsi_reversion", {}),
    ("rsi_reversion", {"period": 5, "oversold": 35, "overbought": 65, "take_profit_pct": 3.0}),
]
SOL_1H = "spot/binance_spot_2021-04_2023-12/SOLUSDT_1h.csv"


def _compare(name: str, params: dict, candles: list, jumps: frozenset[int] = frozenset()) -> tuple[int, int]:
    """Feed ``candles`` one at a time through a bot-sized history. At an index in ``jumps`` the history
    shrinks to its last 7 candles (a history the stepper never saw), and at the index after it five
    candles arrive without a call (a warm-up). Every answer must be the reference's: the same side,
    and for BUY / SELL the same Signal to the bit. Returns (signals, steps)."""
    strat = build_strategy(name, params)
    step = stepper_for(strat)
    assert step is not None
    h: deque = deque(maxlen=history_window(strat))
    signals = steps = 0
    for i, c in enumerate(candles):
        if i in jumps:
            h = deque(list(h)[-7:], maxlen=h.maxlen)
        h.append(c)
        if len(h) < strat.warmup or any(0 < i - j < 6 for j in jumps):
            continue
        got, ref = step.signal(h), strat.evaluate(tuple(h))
        steps += 1
        assert got.side is ref.side, (i, got, ref)
        if ref.side is not Side.NONE:
            assert got == ref, (i, got, ref)
            signals += 1
    return signals, steps


@pytest.mark.parametrize("name,params", CASES)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_data(name, params, seed):
    candles = random_data(2500, seed=seed).candles()
    signals, steps = _compare(name, params, candles, jumps=frozenset({700, 1500}))
    assert signals > 10 and steps > 2000


@pytest.mark.parametrize("name,params", CASES)
def test_random_data_flat_and_tiny_moves(name, params):
    # long flat stretches and moves of one tick: the ties where running sums round differently
    rng = np.random.default_rng(5)
    data = random_data(2000, seed=5)
    steps = np.round(rng.choice([-1, 0, 0, 0, 1], size=2000).cumsum() * 1e-8 + 100.0, 10)
    data.closes[:] = steps
    _compare(name, params, data.candles())


@pytest.mark.parametrize("name,params", CASES)
@pytest.mark.parametrize("rel", [BTC_1H, ETH_1H, SOL_1H])
def test_real_data(name, params, rel):
    candles = shared_data(rel).candles()
    signals, _ = _compare(name, params, candles[:6000], jumps=frozenset({3000}))
    assert signals > 10


def test_steppers_call_the_reference_rarely():
    # the point of the exercise: the reference runs for signals and near-ties only
    candles = shared_data(BTC_1H).candles()[:4000]
    for name, params in CASES:
        strat = build_strategy(name, params)
        step = stepper_for(strat)
        h: deque = deque(maxlen=history_window(strat))
        signals = 0
        for c in candles:
            h.append(c)
            if len(h) >= strat.warmup:
                signals += step.signal(h).side is not Side.NONE
        assert step.reference_calls < signals + 0.05 * step.calls, (name, step.reference_calls, signals, step.calls)


def test_user_strategies_keep_the_pure_contract():
    class Mine:
        name, warmup = "mine", 1

        def evaluate(self, candles):  # pragma: no cover - never called here
            raise AssertionError

    assert stepper_for(Mine()) is None
    assert stepper_for(build_strategy("webhook", {})) is None

    base = build_strategy("sma_crossover", {"fast": 3, "slow": 8})

    class Tweaked(type(base)):  # another evaluate(), the parent's stepper(): the stepper would not answer for it
        def evaluate(self, candles):  # pragma: no cover - never called here
            raise AssertionError

    assert stepper_for(Tweaked(base.params)) is None and stepper_for(base) is not None


def test_disabled_means_evaluate(monkeypatch):
    monkeypatch.setattr(incremental, "ENABLED", False)
    assert stepper_for(build_strategy("sma_crossover", {})) is None


def test_running_indicators_match_the_array_functions():
    x = 100.0 * np.exp(np.cumsum(np.random.default_rng(1).normal(0, 0.01, 3000)))
    m, e = RollingMean(30), Wilder(20, 2.0 / 21)
    ref_sma, ref_ema = sma(x, 30), ema(x, 20)
    for i, v in enumerate(x.tolist()):
        m.push(v)
        e.push(v)
        if i >= 29:
            assert abs(m.value - ref_sma[i]) <= m.error
        if i >= 19:
            assert e.value == pytest.approx(ref_ema[i], rel=1e-12)


# ---- backtests: the bar path with steppers equals the bar path without, and the fast path ----------
BAR_CASES = [
    {"name": "s", "strategy": "sma_crossover", "max_hold_candles": 25,
     "params": {"fast": 4, "slow": 12, "stop_loss_pct": 0.4, "take_profit_pct": 0.6}},
    {"name": "m", "strategy": "momentum", "max_hold_candles": 7, "params": {"window": 5, "threshold_pct": 0.3}},
    {"name": "e", "strategy": "ema_crossover", "params": {"fast": 5, "slow": 20, "stop_loss_pct": 1.0}},
    {"name": "r", "strategy": "rsi_reversion", "params": {"period": 6, "take_profit_pct": 0.8}},
]


@pytest.mark.parametrize("bot", BAR_CASES, ids=lambda b: b["strategy"])
def test_bar_path_with_and_without_steppers(bot, monkeypatch):
    data = {"BTCUSDT": random_data(3000, seed=11)}
    cfg = app([{**bot, "market": "futures"}], starting_balance=10_000.0)
    model = FillModel(policy="realistic", slippage_bps=2)
    on = run_config(cfg, data, model, path="bar")[0]
    monkeypatch.setattr(incremental, "ENABLED", False)
    off = run_config(cfg, data, model, path="bar")[0]
    assert len(on.trades) > 20
    assert on.trades == off.trades and on.signals == off.signals
    assert np.array_equal(on.equity, off.equity)


@pytest.mark.parametrize("bot", BAR_CASES[:2], ids=lambda b: b["strategy"])
def test_bar_path_with_steppers_equals_fast_path(bot):
    data = {"BTCUSDT": shared_data(BTC_1H)}
    cfg = app([{**bot, "market": "futures"}], starting_balance=10_000.0)
    model = FillModel()
    bar = run_config(cfg, data, model, path="bar")[0]
    fast = run_config(cfg, data, model, path="fast")[0]
    assert len(bar.trades) > 50
    assert bar.trades == fast.trades and bar.signals == fast.signals
    assert np.array_equal(bar.equity, fast.equity)


def _fresh(name: str, params: dict):
    strat = build_strategy(name, params)
    return strat, stepper_for(strat)


@pytest.mark.parametrize("name,params", CASES)
def test_what_a_closes_only_stepper_declares_holds(name, params):
    """The built-in steppers share evaluate()'s answers by the closes of the last ``keep`` candles: their
    evaluate() must answer the same whatever the other fields of the candles and whatever came before."""
    strat, step = _fresh(name, params)
    assert step.closes_only and step.keep == strat.lookback >= strat.warmup
    rng = np.random.default_rng(11)
    candles = random_data(600, seed=4).candles()
    k = step.keep
    for end in range(strat.warmup, len(candles), 7):
        window = candles[max(0, end - k):end]
        ref = strat.evaluate(tuple(window))
        longer = strat.evaluate(tuple(candles[:end]))  # more history before the window
        other = [type(c)(c.symbol, c.open_time + 3_600_000, float(rng.uniform(1, 9)), c.close * 1.5, c.close * 0.5,
                         c.close, float(rng.uniform(0, 99)), c.interval) for c in window]
        assert longer == ref and strat.evaluate(tuple(other)) == ref, end


def test_equal_strategies_share_the_reference_and_others_do_not(monkeypatch):
    monkeypatch.setattr(incremental.Stepper, "shared", {})
    candles = random_data(1500, seed=8).candles()
    (s1, a), (_, b), (_, c) = (_fresh("sma_crossover", {"fast": 3, "slow": 8}) for _ in range(3))
    _, other = _fresh("sma_crossover", {"fast": 3, "slow": 8, "stop_loss_pct": 1.0})

    class Mine(incremental.SmaCrossStepper):  # a stepper that does not declare closes_only
        closes_only = False

    mine = Mine(build_strategy("sma_crossover", {"fast": 3, "slow": 8}))
    h: deque = deque(maxlen=history_window(s1))
    signals = 0
    for candle in candles:
        h.append(candle)
        got = [st.signal(h) for st in (a, b, c, other, mine)]
        ref = s1.evaluate(tuple(h))
        assert got[0] is got[1] is got[2] or ref.side is Side.NONE
        assert all(g.side is ref.side for g in got) and (ref.side is Side.NONE or got[0] == got[4] == ref)
        signals += ref.side is not Side.NONE
    assert signals > 50
    assert a.shared_hits == 0 and b.shared_hits == b.reference_calls == c.shared_hits > signals - 5
    assert other.shared_hits == 0 and mine.shared_hits == 0 and mine.reference_calls == a.reference_calls


def test_the_shared_answers_are_bounded(monkeypatch):
    monkeypatch.setattr(incremental.Stepper, "shared", {})
    monkeypatch.setattr(incremental, "SHARED_KEPT", 10)
    strat, step = _fresh("sma_crossover", {"fast": 3, "slow": 8})
    h: deque = deque(maxlen=history_window(strat))
    for candle in random_data(800, seed=9).candles():
        h.append(candle)
        step.signal(h)
    assert step.reference_calls > 20 and len(incremental.Stepper.shared) == 10
