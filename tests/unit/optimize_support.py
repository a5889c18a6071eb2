"""Shared by the optimiser and ML tests: a config with one all-in SMA bot on the seeded synthetic market."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

LOOSE = {"max_position_pct": 100, "min_notional": 0, "max_orders_per_minute": None, "max_loss_per_trade_pct": None,
         "daily_loss_pct": None, "max_drawdown_pct": None}


def sma_bot(name: str = "sma", **params: Any) -> dict[str, Any]:
    return {"name": name, "mode": "paper", "symbol": "BTCUSDT", "strategy": "sma_crossover",
            "params": {"fast": 10, "slow": 30, **params}, "sizing": {"kind": "percent_equity", "value": 90},
            "risk": LOOSE}


def write_cfg(path: Path, bots: list[dict[str, Any]] | None = None, interval: str = "1m") -> Path:
    cfg = {"market": {"source": "synthetic", "symbols": ["BTCUSDT"], "interval": interval, "seed": 7},
           "paper": {"starting_balance": 10_000, "fee_pct": 0.1, "slippage_bps": 0},
           "bots": bots or [sma_bot()]}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path
