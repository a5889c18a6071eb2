"""momentum_atr (the seeds' ATR-risk template): SMA cross, stop 1 risk unit and take-profit 2 away (risk = k x ATR),
confidence from momentum; its vectorised signals and levels equal evaluate(), so backtests take the fast path
and it trades there exactly as on the bar path."""
from __future__ import annotations

import numpy as np
import pytest

from backtest.build import build_backtest_bot
from backtest.engine import run_bots, signals_by_evaluate
from backtest.fills import FillModel
from backtest.strategy_check import check_strategy
from backtest_support import NO_LIMITS, app, random_data
from core.types import Side
from strategy.indicators import true_range
from strategy.registry import build_strategy

PARAMS = {"fast": 5, "slow": 12, "atr_period": 10, "risk_atr": 1.5, "reward_risk": 2.0, "momentum": 6}


def test_levels_confidence_and_vector_form_equal_evaluate():
    data = random_data(1500, seed=4)
    s = build_strategy("momentum_atr", PARAMS)
    candles = data.candles()
    sides = s.signals(data.opens, data.highs, data.lows, data.closes, data.volumes)
    assert np.array_equal(sides, signals_by_evaluate(s, candles, max(s.lookback + 5, 50)))
    stops, takes = s.exit_levels_hlc(sides, data.highs, data.lows, data.closes)
    idx = np.flatnonzero(sides)
    assert len(idx) > 20
    for i in idx:
        sig = s.evaluate(tuple(candles[max(0, i - 60): i + 1]))
        assert sig.stop_loss == stops[i] and sig.take_profit == takes[i]  # bit-identical
        tr = true_range(data.highs[: i + 1], data.lows[: i + 1], data.closes[: i + 1])
        atr = tr[-10:].mean()
        d = 1 if sig.side is Side.BUY else -1
        c = data.closes[i]
        assert sig.stop_loss == pytest.approx(c - d * 1.5 * atr) and sig.take_profit == pytest.approx(c + d * 3 * atr)
        assert sig.confidence == pytest.approx(min(1, max(0, d * (c - data.closes[i - 6]) / (2 * atr))))
    assert check_strategy("momentum_atr", PARAMS, data.head(600)).ok


def test_fast_path_equals_bar_path_with_atr_levels():
    cfg = app([{"name": "m", "strategy": "momentum_atr", "params": PARAMS, "market": "futures",
                "sizing": {"kind": "percent_equity", "value": 20}, "risk": dict(NO_LIMITS)}])
    data = {"BTCUSDT": random_data(4000, seed=8)}
    model = FillModel()
    fast = run_bots([(build_backtest_bot(cfg.bots[0], cfg, model, "1m"), {})], data, model, "auto")[0]
    bar = run_bots([(build_backtest_bot(cfg.bots[0], cfg, model, "1m"), {})], data, model, "bar")[0]
    assert fast.path == "fast" and bar.path == "bar"
    assert fast.trades == bar.trades and np.array_equal(fast.equity, bar.equity)
    reasons = {t.exit_reason for t in bar.trades}
    assert {"stop_loss", "take_profit"} <= reasons
