#!/usr/bin/env python3
"""Benchmark: backtest throughput of our engine against backtesting.py, same data, same strategy.

1,000,000 seeded 1-minute candles (a geometric random walk), SMA(10)/SMA(30) crossover, long
or flat, all-in, 0.1 % fee per side, market orders filled at the next candle's open (the
backtesting.py default). Ours runs through ``backtest.engine`` (the Bot, RiskEngine,
BacktestExecutor and Portfolio that ghost/paper use) on the fast path; backtesting.py runs
its own event loop. Prints bars/second of each, the ratio, and whether both produced the same
entries and exits. Numbers, not asserts:

    .venv/bin/python bench/backtest_throughput.py [--bars N] [--no-backtesting-py] [--bar-path]

"All-in" is 99.8 % of equity: the risk engine's balance check requires notional + fee to fit
the cash (backtesting.py likewise buys whole units worth at most 99.99 % of its cash).
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from backtest.data import SymbolData  # noqa: E402
from backtest.engine import run_config
from backtest.fills import FillModel  # noqa: E402
from settings import AppConfig  # noqa: E402

T0 = 1_700_000_000_000 - 1_700_000_000_000 % 60_000
FAST, SLOW = 10, 30
# Fees of ~20k round trips on a random walk shrink equity by ~e^-40; backtesting.py buys whole
# units, so it gets a cash pile that never runs dry (its trade list does not depend on size).
CASH_BTPY = 1e30


def make_candles(n: int, seed: int = 42) -> SymbolData:
    """n seeded 1m candles: log-normal closes, open = previous close, wicks beyond both."""
    rng = np.random.default_rng(seed)
    closes = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, n)))
    opens = np.concatenate(([100.0], closes[:-1]))
    wick = np.abs(rng.normal(0.0, 0.0005, (2, n)))
    highs = np.maximum(opens, closes) * (1 + wick[0])
    lows = np.minimum(opens, closes) * (1 - wick[1])
    volumes = rng.uniform(50.0, 150.0, n)
    times = T0 + 60_000 * np.arange(n, dtype=np.int64)
    return SymbolData("BTCUSDT", "1m", times, opens, highs, lows, closes, volumes)


def app_config() -> AppConfig:
    return AppConfig(
        market={"symbols": ["BTCUSDT"]},
        paper={"starting_balance": 10_000.0, "fee_pct": 0.1, "slippage_bps": 0},
        bots=[{"name": "bench-sma", "mode": "paper", "symbol": "BTCUSDT", "strategy": "sma_crossover",
               "params": {"fast": FAST, "slow": SLOW}, "sizing": {"kind": "percent_equity", "value": 99.8},
               # all-in needs the paper defaults' position, loss and drawdown limits off
               "risk": {"max_position_pct": 100, "min_notional": 0, "max_orders_per_minute": None,
                        "max_loss_per_trade_pct": None, "daily_loss_pct": None, "max_drawdown_pct": None}}],
    )


MODEL = FillModel(policy="optimistic", fill_at="next_open", taker_fee_pct=0.1, maker_fee_pct=0.1)


def run_ours(data: SymbolData, path: str) -> tuple[float, list[tuple[int, float, int, float]]]:
    app = app_config()
    t = time.perf_counter()
    res = run_config(app, {"BTCUSDT": data}, MODEL, path=path)[0]  # type: ignore[arg-type]
    dt = time.perf_counter() - t
    index = {int(x): i for i, x in enumerate(data.times.tolist())} if res.trades else {}
    trades = [(index[t.entry_time], t.entry_price, index[t.exit_time], t.exit_price) for t in res.trades]
    print(f"  ours ({res.path} path): {len(data):,} bars in {dt:.3f} s = {len(data) / dt:,.0f} bars/s; "
          f"{len(res.trades):,} trades, final equity {res.equity[-1]:.6g}")
    return dt, trades


def run_backtesting_py(data: SymbolData) -> tuple[float, list[tuple[int, float, int, float]]] | None:
    try:
        import pandas as pd
        from backtesting import Backtest, Strategy
        from backtesting.lib import crossover
    except ImportError:
        print("  backtesting.py: not installed (pip install backtesting) - no ratio")
        return None

    def sma(x: np.ndarray, n: int) -> np.ndarray:
        return pd.Series(x).rolling(n).mean().to_numpy()

    class SmaCross(Strategy):
        def init(self) -> None:
            self.fast = self.I(sma, self.data.Close, FAST)
            self.slow = self.I(sma, self.data.Close, SLOW)

        def next(self) -> None:
            if crossover(self.fast, self.slow):
                self.buy()
            elif crossover(self.slow, self.fast):
                self.position.close()

    df = pd.DataFrame({"Open": data.opens, "High": data.highs, "Low": data.lows, "Close": data.closes,
                       "Volume": data.volumes}, index=pd.to_datetime(data.times, unit="ms"))
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = Backtest(df, SmaCross, cash=CASH_BTPY, commission=0.001, trade_on_close=False)
        stats = bt.run()
    dt = time.perf_counter() - t
    tr = stats["_trades"]
    trades = list(zip(tr["EntryBar"].astype(int).tolist(), tr["EntryPrice"].tolist(),
                      tr["ExitBar"].astype(int).tolist(), tr["ExitPrice"].tolist()))
    print(f"  backtesting.py: {len(df):,} bars in {dt:.3f} s = {len(df) / dt:,.0f} bars/s; {len(trades):,} trades")
    return dt, trades


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--no-backtesting-py", action="store_true")
    ap.add_argument("--bar-path", action="store_true", help="also time the per-candle path (slow)")
    args = ap.parse_args()
    t = time.perf_counter()
    data = make_candles(args.bars)
    print(f"{args.bars:,} seeded 1m candles built in {time.perf_counter() - t:.2f} s; "
          f"SMA({FAST})/SMA({SLOW}) long/flat, all-in, fee 0.1 %, fills at the next open")
    run_ours(data, "fast")  # warm-up run (imports, caches) not counted
    dt, ours = run_ours(data, "fast")
    if args.bar_path:
        run_ours(data, "bar")
    if args.no_backtesting_py:
        return 0
    other = run_backtesting_py(data)
    if other is None:
        return 0
    dt_b, theirs = other
    print(f"  ratio: ours is {dt_b / dt:.1f}x the speed of backtesting.py")
    # backtesting.py leaves a trade open at the end out of its list; so do we (open position).
    same = len(ours) == len(theirs) and all(
        a[0] == b[0] and a[2] == b[2] and abs(a[1] - b[1]) <= 1e-9 * b[1] and abs(a[3] - b[3]) <= 1e-9 * b[3]
        for a, b in zip(ours, theirs))
    print(f"  same entries and exits as backtesting.py: {same} ({len(ours):,} vs {len(theirs):,} trades)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
