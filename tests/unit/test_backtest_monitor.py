"""The risk monitor runs inside backtests: a drawdown or loss limit moves the bot's trading
state (flattening when asked) as in paper, and the fast path's monitor sees exactly what the
per-candle path's sees (same breaches, trades and equity)."""
from __future__ import annotations

import numpy as np
import pytest

from backtest.build import build_backtest_bot
from backtest.engine import run_config
from backtest.fills import FillModel
from backtest.report import build_report
from backtest_support import NO_LIMITS, app, random_data

SMA = {"name": "b", "strategy": "sma_crossover", "params": {"fast": 4, "slow": 12}}


def _cfg(risk: dict, bot: dict | None = None, **paper):
    return app([{**SMA, **(bot or {}), "risk": {**NO_LIMITS, **risk}}], starting_balance=10_000.0, **paper)


def test_drawdown_limit_halts_a_backtest():
    data = {"BTCUSDT": random_data(6000, seed=11, vol=0.004)}
    free = run_config(_cfg({}), data, FillModel())[0]
    assert free.trading_state == "ACTIVE" and free.risk_events == []
    eq = free.equity
    worst = float(np.max(1 - eq / np.maximum.accumulate(np.maximum(eq, 10_000.0)))) * 100
    assert worst > 2.5  # the unlimited run draws down further than the limit below

    res = run_config(_cfg({"max_drawdown_pct": 2}), data, FillModel())[0]
    assert res.trading_state == "HALTED"
    ev = res.risk_events[0]
    assert ev.rule == "max_drawdown" and ev.flattened and ev.state == "HALTED"
    # flattened at the breach, then no more trades: the last trade is the flatten
    assert res.trades[-1].exit_reason == "risk: max_drawdown"
    assert res.trades[-1].exit_time <= ev.time + 60_000
    assert len(res.trades) < len(free.trades) and res.open_quantity == 0
    after = res.times + 60_000 > ev.time
    assert np.all(res.equity[after] == res.equity[after][0])  # flat and halted: equity frozen
    rep = build_report(res)
    assert rep["trading_state"] == "HALTED" and rep["risk_events"][0]["rule"] == "max_drawdown"


@pytest.mark.parametrize("risk", [
    {"max_drawdown_pct": 3},
    {"daily_loss_pct": 1.0},
    {"daily_loss_value": 80, "weekly_loss_pct": 2.5},
    {"max_consecutive_losses": 3},
])
@pytest.mark.parametrize("fill_at", ["close", "next_open"])
def test_monitor_fast_equals_bar(risk, fill_at):
    data = {"BTCUSDT": random_data(8000, seed=5, vol=0.004)}
    cfg = _cfg(risk, {"params": {"fast": 4, "slow": 12, "stop_loss_pct": 0.8}})
    model = FillModel(fill_at=fill_at)
    fast = run_config(cfg, data, model, path="fast")[0]
    bar = run_config(cfg, data, model, path="bar")[0]
    assert fast.path == "fast" and bar.path == "bar"
    assert bar.risk_events, "the limit should fire in this data"
    assert fast.risk_events == bar.risk_events
    assert fast.trading_state == bar.trading_state
    assert fast.trades == bar.trades and fast.signals == bar.signals
    assert np.array_equal(fast.equity, bar.equity)
    assert fast.denials == bar.denials


def test_paused_bot_keeps_its_exits():
    """A daily-loss breach pauses (no flatten): the open position still exits on its stop."""
    data = {"BTCUSDT": random_data(8000, seed=5, vol=0.004)}
    res = run_config(_cfg({"daily_loss_pct": 1.0}, {"params": {"fast": 4, "slow": 12, "stop_loss_pct": 0.8}}),
                     data, FillModel())[0]
    assert res.trading_state == "PAUSED"
    assert not res.risk_events[0].flattened
    assert res.denials.get("trading_state", 0) > 0  # entries after the pause are denied


def test_no_monitor_without_monitor_limits():
    cfg = _cfg({})
    bot = build_backtest_bot(cfg.bots[0], cfg, FillModel(), "1m")
    assert bot.monitor is None  # nothing it could decide: no per-event cost
    bot = build_backtest_bot(_cfg({"max_drawdown_pct": 5}).bots[0], _cfg({"max_drawdown_pct": 5}), FillModel(), "1m")
    assert bot.monitor is not None and bot.monitor.limits is bot.risk.limits
