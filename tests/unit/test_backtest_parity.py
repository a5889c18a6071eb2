"""Parity with backtesting.py on a real data file: same SMA(10/30) trades, bar for bar.

Convention aligned: backtesting.py fills market orders at the next bar's open
(trade_on_close=False), so ours runs with fill_at="next_open", optimistic fills (no volume cap),
0.1 % fee, long or flat, all-in. Both use the same SMA values and the same cross rule
(previous fast <= slow, now fast > slow), so the comparison is of the engines, not of two
indicator definitions.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from backtest.engine import run_config
from backtest.fills import FillModel
from backtest_support import BTC_1H, app, shared_data
from strategy.indicators import sma


def test_trade_list_equals_backtesting_py():
    bt_mod = pytest.importorskip("backtesting", reason="backtesting.py not installed (pip install backtesting)")
    import pandas as pd

    data = shared_data(BTC_1H)
    cfg = app([{"name": "p", "strategy": "sma_crossover", "params": {"fast": 10, "slow": 30},
                "sizing": {"kind": "percent_equity", "value": 99.8}}])
    ours = run_config(cfg, {"BTCUSDT": data}, FillModel(policy="optimistic", fill_at="next_open"), path="fast")[0]
    index = {t: i for i, t in enumerate(data.times.tolist())}
    mine = [(index[t.entry_time], t.entry_price, index[t.exit_time], t.exit_price) for t in ours.trades]

    class Sma(bt_mod.Strategy):
        def init(self) -> None:
            self.f = self.I(sma, self.data.Close, 10)
            self.s = self.I(sma, self.data.Close, 30)

        def next(self) -> None:
            f, s = self.f, self.s
            if f[-2] <= s[-2] and f[-1] > s[-1]:
                self.buy()
            elif f[-2] >= s[-2] and f[-1] < s[-1]:
                self.position.close()

    df = pd.DataFrame({"Open": data.opens, "High": data.highs, "Low": data.lows, "Close": data.closes,
                       "Volume": data.volumes}, index=pd.to_datetime(data.times, unit="ms"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # whole units only in backtesting.py: a cash pile big enough to buy BTC all the way through
        stats = bt_mod.Backtest(df, Sma, cash=1e12, commission=0.001, trade_on_close=False).run()
    tr = stats["_trades"]
    theirs = list(zip(tr["EntryBar"].astype(int), tr["EntryPrice"], tr["ExitBar"].astype(int), tr["ExitPrice"]))
    assert len(mine) > 100
    assert [(a, c) for a, _, c, _ in mine] == [(int(a), int(c)) for a, _, c, _ in theirs]
    assert np.allclose([b for _, b, _, _ in mine], [b for _, b, _, _ in theirs], rtol=1e-12)
    assert np.allclose([d for *_, d in mine], [d for *_, d in theirs], rtol=1e-12)
