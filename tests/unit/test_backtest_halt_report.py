"""A backtest stopped by a risk rule says so: the summary (CLI and Backtest tab) names the state, the date,
the rule and how much of the run was left; both plots mark it; the monthly report has the same rows a
running bot's report has."""
from __future__ import annotations

import numpy as np

from backtest.data import SymbolData
from backtest.engine import run_config
from backtest.fills import FillModel
from backtest.plots import equity_figure_of, plot_data, trades_figure_of
from backtest.report import build_report, summary_text
from backtest_support import NO_LIMITS, T0, app

HOUR = 3_600_000


def hourly(n: int, seed: int, vol: float) -> SymbolData:
    rng = np.random.default_rng(seed)
    closes = 100.0 * np.exp(np.cumsum(rng.normal(0.0, vol, n)))
    opens = np.concatenate(([100.0], closes[:-1]))
    highs, lows = np.maximum(opens, closes) * 1.001, np.minimum(opens, closes) * 0.999
    times = T0 + HOUR * np.arange(n, dtype=np.int64)
    return SymbolData("BTCUSDT", "1h", times, opens, highs, lows, closes, np.full(n, 100.0))


def halted_run():
    data = {"BTCUSDT": hourly(27 * 730, seed=3, vol=0.01)}  # about 27 months of hours
    cfg = app([{"name": "b", "strategy": "sma_crossover", "params": {"fast": 4, "slow": 12},
                "risk": {**NO_LIMITS, "max_drawdown_pct": 8}}], starting_balance=10_000.0)
    return run_config(cfg, data, FillModel())[0]


def test_a_halt_is_stated_in_the_summary_and_marked_on_both_plots():
    res = halted_run()
    assert res.trading_state == "HALTED"
    rep = build_report(res)
    text = summary_text(rep)
    first_lines = text.splitlines()[:3]
    assert any(line.strip().startswith("!! HALTED on ") and "by max_drawdown" in line for line in first_lines), text
    total = len({m for m in np.datetime_as_string(res.times.astype("datetime64[ms]"), unit="M")})
    assert f" of {total} months" in rep["halt"] and total >= 26
    assert "no orders at all for the rest of the run" in rep["halt"]
    d = plot_data(res)
    assert d["events"] and d["events"][0]["rule"] == "max_drawdown"
    for fig in (equity_figure_of(d), trades_figure_of(d)):
        shades = [s for s in fig.layout.shapes if s.type == "rect"]
        assert shades, "the halted part of the run is shaded"
        notes = [a.text for a in fig.layout.annotations if a.text]
        assert any("HALTED by max_drawdown" in t for t in notes), notes


def test_the_monthly_rows_of_a_backtest_are_the_running_report_s_rows():
    res = halted_run()
    rep = build_report(res)
    rows = rep["periods"]
    assert len(rows) >= 26 and rows[0]["period"] == "2024-01"
    assert {"return_pct", "benchmark_pct", "pnl", "fees", "trades", "win_rate_pct", "max_drawdown_pct"} <= set(rows[0])
    # compounded monthly returns give the run's total return; after the halt nothing moves
    compounded = 100.0 * (np.prod([1 + r["return_pct"] / 100 for r in rows]) - 1)
    assert abs(compounded - rep["total_return_pct"]) < 1e-6
    assert all(r["trades"] == 0 and abs(r["return_pct"]) < 1e-9 for r in rows[-3:])
    assert sum(r["trades"] for r in rows) == rep["trades"]


def test_a_run_that_traded_to_the_end_has_no_halt_line():
    data = {"BTCUSDT": hourly(2000, seed=3, vol=0.004)}
    cfg = app([{"name": "b", "strategy": "sma_crossover", "params": {"fast": 4, "slow": 12}}])
    rep = build_report(run_config(cfg, data, FillModel())[0])
    assert rep["halt"] is None and "!!" not in summary_text(rep)
