"""Seeded candles for the optimiser and ML tests (the benchmark's own generator, any interval)."""
from __future__ import annotations

import sys
from pathlib import Path

from backtest.data import SymbolData
from core.types import INTERVAL_MS

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.backtest_throughput import make_candles  # noqa: E402


def candles(n: int, interval: str = "1m", seed: int = 42, symbol: str = "BTCUSDT") -> SymbolData:
    d = make_candles(n, seed)
    step = INTERVAL_MS[interval]
    times = (d.times[0] - d.times[0] % step) + step * (d.times - d.times[0]) // 60_000
    return SymbolData(symbol, interval, times, d.opens, d.highs, d.lows, d.closes, d.volumes)


def write_csv(path: Path, d: SymbolData) -> Path:
    with open(path, "w") as f:
        f.write("open_time,open,high,low,close,volume\n")
        for row in zip(d.times.tolist(), d.opens.tolist(), d.highs.tolist(), d.lows.tolist(), d.closes.tolist(),
                       d.volumes.tolist()):
            f.write("%d,%r,%r,%r,%r,%r\n" % row)
    return path
