"""`python bot_manager.py backtest` as a real subprocess, on the shared real data."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from market.replay import shared_market_dir

ROOT = Path(__file__).resolve().parents[2]
RISK = {"max_position_pct": 100, "max_loss_per_trade_pct": None, "daily_loss_pct": None, "max_drawdown_pct": None}


def _config(tmp_path: Path) -> Path:
    cfg = {
        "market": {"symbols": ["BTCUSDT", "ETHUSDT"], "interval": "1h"},
        "bots": [
            {"name": "sma-btc", "mode": "paper", "symbol": "BTCUSDT", "strategy": "sma_crossover",
             "params": {"fast": 10, "slow": 30, "stop_loss_pct": 3}, "sizing": {"kind": "percent_equity", "value": 90},
             "risk": RISK},
            {"name": "rsi-eth", "mode": "ghost", "symbol": "ETHUSDT", "strategy": "rsi_reversion",
             "params": {"period": 14}, "sizing": {"kind": "percent_equity", "value": 90}, "risk": RISK},
        ],
    }
    p = tmp_path / "bt.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "bot_manager.py"), "backtest", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture()
def spot_dir() -> Path:
    base = shared_market_dir()
    if base is None:
        pytest.skip("shared market data not found (../shared/data/market or BOT_MARKET_DATA)")
    return base / "spot" / "binance_spot_2024-01_2026-03"


def test_json_report_two_symbols(tmp_path, spot_dir):
    out = _run("--config", str(_config(tmp_path)), "--data", str(spot_dir / "BTCUSDT_1h.csv"),
               "--data", str(spot_dir / "ETHUSDT_1h.csv"), "--from", "2024-06-01", "--to", "2025-06-01",
               "--fill-policy", "pessimistic", "--json", "--plots", str(tmp_path / "plots"))
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    reps = {r["bot"]: r for r in doc["bots"]}
    assert set(reps) == {"sma-btc", "rsi-eth"}
    assert reps["sma-btc"]["engine_path"] == "fast" and reps["rsi-eth"]["engine_path"] == "bar"
    assert reps["sma-btc"]["start"] == "2024-06-01T00:00:00Z" and reps["sma-btc"]["end"] == "2025-06-01T00:00:00Z"
    assert reps["sma-btc"]["trades"] > 10 and reps["sma-btc"]["trade_list"]
    assert reps["sma-btc"]["fill_model"]["policy"] == "pessimistic"
    assert len(doc["plots"]["sma-btc"]) == 3 and all(Path(p).exists() for p in doc["plots"]["sma-btc"])


def test_text_report_and_bad_input(tmp_path, spot_dir):
    cfg = str(_config(tmp_path))
    mixed = _run("--config", cfg, "--bot", "sma-btc", "--data", str(spot_dir))
    assert mixed.returncode == 2 and "--interval" in mixed.stderr  # 30m, 1h and 4h files in one directory
    out = _run("--config", cfg, "--bot", "sma-btc", "--data", str(spot_dir), "--interval", "1h")
    assert out.returncode == 0, out.stderr
    assert "sma-btc" in out.stdout and "max drawdown" in out.stdout and "buy & hold" in out.stdout
    bad = _run("--config", cfg, "--bot", "nope", "--data", str(spot_dir))
    assert bad.returncode == 2 and "no bot named nope" in bad.stderr


def test_sweep(tmp_path, spot_dir):
    out = _run("sweep", "--config", str(_config(tmp_path)), "--bot", "sma-btc", "--data",
               str(spot_dir / "BTCUSDT_4h.csv"), "--grid", "fast=5,10", "--grid", "slow=20,40", "--sort", "sharpe",
               "--jobs", "2", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["rows"]
    assert len(rows) == 4
    sharpes = [r["metrics"]["sharpe"] for r in rows]
    assert sharpes == sorted(sharpes, reverse=True)
