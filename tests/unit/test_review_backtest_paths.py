"""The fast path hands the bot vectorised signals with confidence 0.0 and keeps no candle history,
so sizing that reads either (``scale_by_confidence``, ``kind: atr``) would size entries differently
there than on the bar path and in paper. Such bots are not vectorisable: ``auto`` runs them on the
bar path and ``fast`` is refused with the reason."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from backtest.build import build_backtest_bot
from backtest.engine import choose_path, not_vectorisable, run_bots, run_config
from backtest.fast import run_fast
from backtest.fills import FillModel
from backtest_support import app, random_data

MODEL = FillModel()
BOT = {"name": "m", "strategy": "momentum", "market": "futures",
       "params": {"window": 5, "threshold_pct": 0.2, "stop_loss_pct": 0.8, "take_profit_pct": 1.2}}
CONFIDENCE = {"kind": "percent_equity", "value": 20, "scale_by_confidence": True}
ATR = {"kind": "atr", "value": 20, "risk_pct": 1.0, "atr_period": 14}
CASES = [pytest.param(CONFIDENCE, "scale_by_confidence", id="confidence"), pytest.param(ATR, "atr", id="atr")]


def build(sizing: dict[str, Any]):  # type: ignore[no-untyped-def]
    cfg = app([{**BOT, "sizing": sizing}], starting_balance=10_000.0)
    return cfg, build_backtest_bot(cfg.bots[0], cfg, MODEL, "1m")


def data():  # type: ignore[no-untyped-def]
    return {"BTCUSDT": random_data(3000, seed=11)}


@pytest.mark.parametrize(("sizing", "why"), CASES)
def test_auto_picks_bar_and_fast_is_refused(sizing: dict[str, Any], why: str) -> None:
    cfg, bot = build(sizing)
    assert why in (not_vectorisable(bot) or "")
    assert choose_path(bot, "auto") == "bar"
    assert choose_path(bot, "bar") == "bar"
    with pytest.raises(ValueError, match=why):
        choose_path(bot, "fast")
    with pytest.raises(ValueError, match=why):
        run_config(cfg, data(), MODEL, ["m"], path="fast")
    auto = run_config(cfg, data(), MODEL, ["m"], path="auto")[0]
    bar = run_config(cfg, data(), MODEL, ["m"], path="bar")[0]
    assert auto.path == "bar"
    assert auto.trades == bar.trades and np.array_equal(auto.equity, bar.equity)
    assert auto.trades  # it traded, so the sizing was used


@pytest.mark.parametrize(("sizing", "why"), CASES)
def test_the_fast_path_would_size_such_bots_differently(sizing: dict[str, Any], why: str) -> None:
    """Why they are refused: forced through ``run_fast`` the same bot ends elsewhere than on bar."""
    _, forced = build(sizing)
    d = data()
    fast_equity = run_fast(forced, d["BTCUSDT"], MODEL)
    _, bar_bot = build(sizing)
    (bar,) = run_bots([(bar_bot, {})], d, MODEL, "bar")
    assert not np.array_equal(fast_equity, bar.equity)


def test_plain_sizing_keeps_the_fast_path() -> None:
    _, bot = build({"kind": "percent_equity", "value": 20})
    assert not_vectorisable(bot) is None
    assert choose_path(bot, "auto") == "fast" and choose_path(bot, "fast") == "fast"
