"""Sizing that reads the signal's confidence (``scale_by_confidence``) or the candle history (``kind: atr``)
runs on the fast path exactly as on the bar path: the vectorised signals carry no confidence and the plain
fast walk keeps no history, so such a bot's signal candles are evaluated with the strategy's reference
``evaluate`` on the bar path's history window (backtest.fast_visits). Before this, the fast path sized
their entries differently and was refused for them."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from backtest.build import build_backtest_bot
from backtest.engine import choose_path, not_vectorisable, run_bots, run_config
from backtest.fills import FillModel
from backtest_support import app, random_data

MODEL = FillModel(max_volume_pct=None)  # whole fills: the sizes the sizing chose
BOT = {"name": "m", "strategy": "momentum", "market": "futures",
       "params": {"window": 5, "threshold_pct": 0.2, "stop_loss_pct": 0.8, "take_profit_pct": 1.2},
       # the sizes below the caps and no halt: what the sizing chose is what trades, all run long
       "risk": {"max_position_pct": 100, "max_loss_per_trade_pct": None, "daily_loss_pct": None, "max_drawdown_pct": None}}
CONFIDENCE = {"kind": "percent_equity", "value": 20, "scale_by_confidence": True}
ATR = {"kind": "atr", "value": 20, "risk_pct": 1.0, "atr_period": 14}
CASES = [pytest.param(CONFIDENCE, id="confidence"), pytest.param(ATR, id="atr"),
         pytest.param({**ATR, "scale_by_confidence": True, "scale_by_drawdown": True}, id="atr_confidence_drawdown")]


def build(sizing: dict[str, Any], **bot: Any):  # type: ignore[no-untyped-def]
    cfg = app([{**BOT, "sizing": sizing, **bot}], starting_balance=10_000.0)
    return cfg, build_backtest_bot(cfg.bots[0], cfg, MODEL, "1m")


def data(n: int = 3000, seed: int = 11):  # type: ignore[no-untyped-def]
    return {"BTCUSDT": random_data(n, seed=seed)}


@pytest.mark.parametrize("sizing", CASES)
def test_auto_and_fast_take_the_fast_path(sizing: dict[str, Any]) -> None:
    cfg, bot = build(sizing)
    assert not_vectorisable(bot) is None
    assert choose_path(bot, "auto") == "fast" and choose_path(bot, "fast") == "fast"
    assert run_config(cfg, data(), MODEL, ["m"], path="auto")[0].path == "fast"


@pytest.mark.parametrize("sizing", CASES)
@pytest.mark.parametrize("seed", [11, 5])
def test_fast_equals_bar(sizing: dict[str, Any], seed: int) -> None:
    out = {}
    for path in ("fast", "bar"):
        _, bot = build(sizing, max_tranches=2)
        out[path] = run_bots([(bot, {})], data(4000, seed), MODEL, path)[0]
    fast, bar = out["fast"], out["bar"]
    assert fast.path == "fast" and bar.path == "bar"
    assert fast.trades == bar.trades and fast.signals == bar.signals
    assert np.array_equal(fast.equity, bar.equity)
    assert fast.fees_paid == bar.fees_paid and fast.denials == bar.denials
    assert len(fast.trades) > 20


@pytest.mark.parametrize("sizing", CASES)
def test_the_sizing_is_used(sizing: dict[str, Any]) -> None:
    """The same bot sized plainly trades otherwise (the equality above is not two paths ignoring the input)."""
    plain = run_config(build({"kind": "percent_equity", "value": 20})[0], data(), MODEL, ["m"], path="fast")[0]
    read = run_config(build(sizing)[0], data(), MODEL, ["m"], path="fast")[0]
    assert [(t.entry_time, t.quantity) for t in read.trades] != [(t.entry_time, t.quantity) for t in plain.trades]


def test_confidence_bands_size_each_entry_on_the_fast_path() -> None:
    """Each entry is 20 % of the equity at its signal candle times the confidence band of that signal
    (momentum: confidence = ROC / (2 x threshold), so 0.7 just past the threshold, 1.0 well past it), as
    evaluate() gives it: the vectorised signal alone (confidence 0) would size every entry at 0.3."""
    _, bot = build(CONFIDENCE, max_tranches=1)
    d = data()
    res = run_bots([(bot, {})], d, MODEL, "fast")[0]
    times = d["BTCUSDT"].times
    bands = [round(t.quantity * t.entry_price / (0.2 * res.equity[int(np.searchsorted(times, t.entry_time)) - 1]), 2)
             for t in res.trades]
    assert MODEL.fill_at == "close" and len(bands) > 20
    assert set(bands) == {0.7, 1.0}, bands


def test_plain_sizing_keeps_the_plain_fast_walk() -> None:
    """Plain sizing visits nothing extra (no reference evaluation)."""
    from backtest.fast_visits import PlatformVisits

    _, bot = build({"kind": "percent_equity", "value": 20})
    assert not_vectorisable(bot) is None
    assert PlatformVisits.for_bot(bot, data()["BTCUSDT"]) is None
