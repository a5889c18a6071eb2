"""The fast path (vectorised signals + event visits) equals the per-candle path: same trades,
same signals, same equity at every candle, for every fill policy; and several symbols in one
global time order give what each bot gives alone."""
from __future__ import annotations

import numpy as np
import pytest

from backtest.engine import run_config
from backtest.fills import FillModel
from backtest_support import app, random_data

BOT = {"name": "b", "strategy": "sma_crossover", "market": "futures", "max_hold_candles": 25,
       "params": {"fast": 4, "slow": 12, "stop_loss_pct": 0.4, "take_profit_pct": 0.6}}


@pytest.mark.parametrize("policy", ["optimistic", "realistic", "pessimistic"])
@pytest.mark.parametrize("fill_at", ["close", "next_open"])
@pytest.mark.parametrize("intrabar", ["stop_first", "take_first", "ohlc"])
def test_fast_equals_bar(policy, fill_at, intrabar):
    data = {"BTCUSDT": random_data(2500, seed=7)}
    # a volume cap that binds sometimes: partial fills exercise the same code on both paths
    model = FillModel(policy=policy, fill_at=fill_at, intrabar=intrabar, slippage_bps=3, maker_fee_pct=0.02,
                      max_volume_pct=50.0)
    cfg = app([BOT], starting_balance=10_000.0)
    fast = run_config(cfg, data, model, path="fast")[0]
    bar = run_config(cfg, data, model, path="bar")[0]
    assert fast.path == "fast" and bar.path == "bar"
    assert len(fast.trades) > 50
    assert {t.exit_reason for t in fast.trades} >= {"stop_loss", "take_profit", "opposite_signal"}
    assert fast.trades == bar.trades
    assert fast.signals == bar.signals
    assert np.array_equal(fast.equity, bar.equity)
    assert fast.fees_paid == bar.fees_paid and fast.denials == bar.denials


def test_momentum_long_only_with_horizon():
    data = {"BTCUSDT": random_data(3000, seed=3)}
    cfg = app([{"name": "m", "strategy": "momentum", "max_hold_candles": 7,
                "params": {"window": 5, "threshold_pct": 0.3}}])
    model = FillModel()
    fast, bar = (run_config(cfg, data, model, path=p)[0] for p in ("fast", "bar"))
    assert "time_horizon" in {t.exit_reason for t in fast.trades}
    assert fast.trades == bar.trades and np.array_equal(fast.equity, bar.equity)
    # spot: SELL signals while flat are logged, not acted
    assert any(side.value == "SELL" and not acted for _, side, acted in fast.signals)


def test_several_symbols_in_global_order():
    btc, eth = random_data(1500, seed=1), random_data(1500, seed=2, symbol="ETHUSDT", start=1_704_067_230_000 - 30_000)
    bots = [{"name": "x", "strategy": "sma_crossover", "params": {"fast": 3, "slow": 9}},
            {"name": "y", "symbol": "ETHUSDT", "strategy": "rsi_reversion", "params": {"period": 6}}]
    cfg = app(bots, symbols=("BTCUSDT", "ETHUSDT"))
    data = {"BTCUSDT": btc, "ETHUSDT": eth}
    both = run_config(cfg, data, FillModel(), path="bar")
    alone = [run_config(cfg, data, FillModel(), [n], path="bar")[0] for n in ("x", "y")]
    for a, b in zip(both, alone):
        assert a.trades == b.trades and np.array_equal(a.equity, b.equity)
    assert both[1].path == "bar" and run_config(cfg, data, FillModel(), ["y"])[0].path == "bar"  # auto: rsi
    assert run_config(cfg, data, FillModel(), ["x"])[0].path == "fast"


def test_fast_path_refused_without_vector_signals():
    cfg = app([{"name": "e", "strategy": "ema_crossover", "params": {"fast": 3, "slow": 9}}])
    with pytest.raises(ValueError, match="vectorised"):
        run_config(cfg, {"BTCUSDT": random_data(200)}, FillModel(), path="fast")


def test_same_engine_as_paper():
    """The backtest bot is the worker's own Bot with its risk engine and limits."""
    from backtest.build import build_backtest_bot
    from engine.bot import Bot
    from engine.assembly import build_bot
    from core.types import TradingState

    cfg = app([{"name": "p", "strategy": "sma_crossover", "risk": {"max_position_pct": 30}}])
    model = FillModel()
    bt = build_backtest_bot(cfg.bots[0], cfg, model, "1m")
    paper = build_bot(cfg.bots[0], cfg, lambda _b: TradingState.ACTIVE)
    assert type(bt) is Bot and type(bt.risk) is type(paper.risk)
    assert bt.risk.limits == paper.risk.limits
