"""Ghost check: the ghost executor over the same candles gives the backtest's signals."""
from __future__ import annotations

import pytest

from backtest.engine import run_config
from backtest.fills import FillModel
from backtest_support import BTC_1H, app, random_data, shared_data
from core.types import TradingState
from engine.assembly import build_bot


def _ghost_signals(cfg, data):
    ghost_cfg = cfg.bots[0].model_copy(update={"mode": "ghost"})
    bot = build_bot(ghost_cfg, cfg.model_copy(update={"market": cfg.market.model_copy(update={"interval": data.interval})}),
                    lambda _b: TradingState.ACTIVE)
    out = []
    for c in data.candles():
        bot.on_candle(c)
        out.extend((s.time, s.side) for s in bot.drain(c.open_time).signals)
    return out


@pytest.mark.parametrize("strategy,params", [("sma_crossover", {"fast": 5, "slow": 15, "stop_loss_pct": 0.5}),
                                             ("rsi_reversion", {"period": 7}),
                                             ("momentum", {"window": 6, "threshold_pct": 0.3})])
def test_ghost_signals_equal_backtest_signals(strategy, params):
    data = random_data(2000, seed=11)
    cfg = app([{"name": "g", "strategy": strategy, "params": params}])
    res = run_config(cfg, {"BTCUSDT": data}, FillModel())[0]
    ghost = _ghost_signals(cfg, data)
    assert len(ghost) > 20
    assert ghost == [(t, side.value) for t, side, _ in res.signals]


def test_ghost_check_on_real_data():
    data = shared_data(BTC_1H).between(None, 1_714_521_600_000)  # 2024-01 .. 2024-04
    cfg = app([{"name": "g", "strategy": "sma_crossover", "params": {"fast": 10, "slow": 30}}])
    res = run_config(cfg, {"BTCUSDT": data}, FillModel())[0]
    assert _ghost_signals(cfg, data) == [(t, side.value) for t, side, _ in res.signals]
