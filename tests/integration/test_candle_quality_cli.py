"""Candle quality you can see (market.quality): `bot_manager.py backtest` on a replay file with rejected rows,
a gap and a one-bar spike reports, per symbol, the rejected rows by reason, the gaps and missing bars, and the
outliers the documented rule flags (text and JSON), as a real subprocess."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import yaml

from backtest.data import load_data
from market.quality import QualityConfig, outlier_mask

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def write_csv(path: Path) -> Path:
    rng = np.random.default_rng(2)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, 300)))
    lines = ["timestamp,open,high,low,close,volume"]
    for i, c in enumerate(closes):
        if 150 <= i < 160:
            continue  # a 10-row gap
        o = closes[i - 1] if i else c
        hi, lo = max(o, c) * 1.001, min(o, c) * 0.999
        if i == 200:
            hi = c * 1.3  # a one-bar spike far outside recent volatility
        if i in (50, 51, 52):
            hi, lo = lo * 0.99, hi  # high below low: rejected by the loader
        t = (T0 + timedelta(minutes=i)).strftime("%Y-%m-%d %H:%M:%S+0000")
        lines.append(f"{t},{o:.6f},{hi:.6f},{lo:.6f},{c:.6f},10")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_backtest_reports_rejections_gaps_and_outliers(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "BTCUSDT-1m.csv")
    cfg = tmp_path / "bt.yaml"
    cfg.write_text(yaml.safe_dump({"market": {"symbols": ["BTCUSDT"]}, "bots": [
        {"name": "b", "mode": "paper", "symbol": "BTCUSDT", "strategy": "sma_crossover",
         "params": {"fast": 3, "slow": 8}}]}))

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(ROOT / "bot_manager.py"), "--config", str(cfg), "backtest",
                               "--data", str(csv), *extra], cwd=ROOT, capture_output=True, text=True, timeout=120)

    out = run()
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if x.strip().startswith("quality:"))
    # the 3 rejected rows leave a 3-bar gap of their own beside the 10-row one
    assert "3 rows rejected" in line and "2 gaps (13 bars missing, 1 longer than 5)" in line, line
    assert "1 outliers" in line, line
    js = json.loads(run("--json").stdout)
    q = js["data"]["symbols"][0]["quality"]
    assert q["rejected_total"] == 3 and sum(q["rejected"].values()) == 3
    assert q["outliers"] == 1 and q["outlier_times"] == [int((T0 + timedelta(minutes=200)).timestamp() * 1000)]
    assert q["gaps"] == 2 and q["missing_bars"] == 13 and q["largest_gap_bars"] == 10


def test_outlier_rule_matches_its_formula(tmp_path: Path) -> None:
    d = load_data([write_csv(tmp_path / "BTCUSDT-1m.csv")]).symbols["BTCUSDT"]
    rules = QualityConfig()
    mask = outlier_mask(d.highs, d.lows, d.closes, rules.outlier_window, rules.outlier_k)
    w, k = rules.outlier_window, rules.outlier_k
    for t in range(w + 1, len(d)):
        r = np.abs(np.log(d.closes[t - w: t] / d.closes[t - w - 1: t - 1]))
        sigma = max(1.4826 * np.median(r), 1e-4)
        m = max(abs(np.log(d.highs[t] / d.closes[t - 1])), abs(np.log(d.lows[t] / d.closes[t - 1])))
        assert mask[t] == (m > k * sigma), t
    assert mask.sum() == 1
