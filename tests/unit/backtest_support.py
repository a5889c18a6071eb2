"""Shared helpers for the backtest tests: seeded candles, a config, the shared data file."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backtest.data import SymbolData, load_data
from market.replay import shared_market_dir
from settings import AppConfig

T0 = 1_704_067_200_000  # 2024-01-01T00:00Z
NO_LIMITS = {"max_position_pct": 100, "min_notional": 0, "max_orders_per_minute": None,
             "max_loss_per_trade_pct": None, "daily_loss_pct": None, "max_drawdown_pct": None}


def random_data(n: int, seed: int = 1, symbol: str = "BTCUSDT", vol: float = 0.003, start: int = T0) -> SymbolData:
    """Seeded 1m random-walk candles with wicks (volume 100 per candle)."""
    rng = np.random.default_rng(seed)
    closes = 100.0 * np.exp(np.cumsum(rng.normal(0.0, vol, n)))
    opens = np.concatenate(([100.0], closes[:-1])) * (1 + rng.normal(0, vol / 5, n))  # small gaps
    wick = np.abs(rng.normal(0.0, vol / 2, (2, n)))
    highs = np.maximum(opens, closes) * (1 + wick[0])
    lows = np.minimum(opens, closes) * (1 - wick[1])
    times = start + 60_000 * np.arange(n, dtype=np.int64)
    return SymbolData(symbol, "1m", times, opens, highs, lows, closes, np.full(n, 100.0))


def app(bots: list[dict[str, Any]], symbols: tuple[str, ...] = ("BTCUSDT",), **paper: Any) -> AppConfig:
    full = []
    for b in bots:
        b = {"mode": "paper", "symbol": "BTCUSDT", "sizing": {"kind": "percent_equity", "value": 95},
             "risk": dict(NO_LIMITS), **b}
        full.append(b)
    return AppConfig(market={"symbols": list(symbols)}, paper={"fee_pct": 0.1, "slippage_bps": 0, **paper},
                     bots=full)


def shared_file(rel: str) -> Path:
    base = shared_market_dir()
    if base is None:
        pytest.skip("shared market data not found (../shared/data/market or BOT_MARKET_DATA)")
    p = base / rel
    if not p.exists():
        pytest.skip(f"shared market file missing: {p}")
    return p


BTC_1H = "spot/binance_spot_2024-01_2026-03/BTCUSDT_1h.csv"
ETH_1H = "spot/binance_spot_2024-01_2026-03/ETHUSDT_1h.csv"


def shared_data(rel: str = BTC_1H) -> SymbolData:
    loaded = load_data([shared_file(rel)])
    return next(iter(loaded.symbols.values()))
