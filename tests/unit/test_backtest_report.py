"""The report: figures from core.metrics, JSON-safe (no inf/NaN); plots are written."""
from __future__ import annotations

import json
import math

import numpy as np

from backtest.engine import run_config
from backtest.fills import FillModel
from backtest.plots import monthly_returns, write_plots
from backtest.report import build_report, json_safe, summary_text
from backtest_support import app, random_data
from core import metrics

KEYS = {"total_return_pct", "cagr_pct", "sharpe", "sortino", "calmar", "max_drawdown", "win_rate_pct",
        "profit_factor", "expectancy", "payoff_ratio", "exposure_time_pct", "fees_paid", "trades", "buy_and_hold",
        "trade_list"}


def _result(n: int = 6000, **bot):
    cfg = app([{"name": "r", "strategy": "sma_crossover", "params": {"fast": 5, "slow": 20}, **bot}])
    return run_config(cfg, {"BTCUSDT": random_data(n, seed=21, vol=0.002)}, FillModel())[0]


def test_report_has_every_figure_and_is_json_safe():
    r = _result()
    rep = build_report(r)
    assert KEYS <= rep.keys()
    text = json.dumps(rep, allow_nan=False)  # raises on inf/NaN
    assert json.loads(text)["trades"] == len(r.trades) == len(rep["trade_list"])
    assert rep["total_return_pct"] == 100 * (r.equity[-1] / r.starting_balance - 1)
    assert rep["max_drawdown"]["max_drawdown_pct"] == metrics.max_drawdown(r.equity.tolist()).max_dd_pct
    assert rep["profit_factor"] == metrics.profit_factor([t.pnl for t in r.trades])
    assert rep["fees_paid"] == r.fees_paid > 0
    assert 0 < rep["exposure_time_pct"] < 100
    assert "return" in summary_text(rep)


def test_daily_points_give_the_same_sharpe_as_all_points():
    from backtest.report import daily_points
    from core.types import EquityPoint

    r = _result(4000)
    all_pts = [EquityPoint(int(t) + 60_000, float(e)) for t, e in zip(r.times, r.equity)]
    assert metrics.daily_returns(daily_points(r.times, r.equity, 60_000)) == metrics.daily_returns(all_pts)


def test_no_trades_and_inf_become_null():
    assert json_safe({"a": math.inf, "b": [math.nan, np.float64(1.5)]}) == {"a": None, "b": [None, 1.5]}
    r = _result(25)  # too short to signal
    rep = build_report(r)
    json.dumps(rep, allow_nan=False)
    assert rep["trades"] == 0 and rep["profit_factor"] is None


def test_plots_are_written(tmp_path):
    r = _result(3000)
    paths = write_plots(r, tmp_path)
    assert [p.name for p in paths] == ["r-equity.html", "r-trades.html", "r-monthly.html"]
    assert all(p.stat().st_size > 1000 for p in paths) and (tmp_path / "plotly.min.js").exists()
    assert monthly_returns(r).shape[1] == 12
