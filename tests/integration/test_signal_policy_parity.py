"""A paper bot with signal confirmation and temperature, run by the real worker (real Redis) on replayed
candles, takes the very trades the backtest engine takes on the same candles: same times, prices,
quantities (temperature bands), exit reasons (stops tightened as the signal cools) and temperatures; so
does a bot with ATR, breakeven, trailing and scale-out exits (engine.exits), partial exit by partial exit,
and a regime_switch bot sized by regime (strategy.regime), regime by regime."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from backtest.data import load_data
from backtest.engine import run_config
from backtest.fills import FillModel
from settings import load_config
from state import keys
from state.models import TradeRecord
from support import LOOSE_RISK, snapshots, start_worker, wait_for, write_config

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
FLAT = 20  # flat candles first: nothing signals while the worker warms up, so both start alike


def write_csv(path: Path, n: int = 900) -> Path:
    rng = np.random.default_rng(21)
    closes = np.concatenate((np.full(FLAT, 100.0), 100.0 * np.exp(np.cumsum(rng.normal(0, 0.004, n - FLAT)))))
    lines = ["timestamp,open,high,low,close,volume"]
    prev = 100.0
    for i, c in enumerate(closes):
        hi, lo = max(prev, c) * (1 + abs(rng.normal(0, 0.001))), min(prev, c) * (1 - abs(rng.normal(0, 0.001)))
        if i < FLAT:
            hi = lo = c
        t = (T0 + timedelta(minutes=i)).strftime("%Y-%m-%d %H:%M:%S+0000")
        lines.append(f"{t},{prev:.6f},{hi:.6f},{lo:.6f},{c:.6f},1000")
        prev = float(f"{c:.6f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def key(t) -> tuple:  # noqa: ANN001
    side = t.side if isinstance(t.side, str) else t.side.value
    return (t.entry_time, t.exit_time, side, round(t.quantity, 9), round(t.entry_price, 6), round(t.exit_price, 6),
            t.exit_reason, None if t.temperature is None else round(t.temperature, 6))


def test_paper_worker_and_backtest_take_the_same_trades(r, redis_server, tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "BTCUSDT-1m.csv")
    cfg = write_config(tmp_path / "config.yaml", {
        "redis": {"url": redis_server.url, "embedded": False},
        "market": {"source": "replay", "replay_files": [str(csv)], "symbols": ["BTCUSDT"], "interval": "1m",
                   "speed": 3000, "warmup_candles": 10},
        "paper": {"fee_pct": 0.1, "slippage_bps": 0, "starting_balance": 10_000},
        "worker": {"heartbeat_ttl_s": 3, "heartbeat_every_s": 0.3},
        "bots": [{"name": "pol", "mode": "paper", "symbol": "BTCUSDT", "strategy": "sma_crossover",
                  "market": "futures", "max_tranches": 1,
                  "params": {"fast": 3, "slow": 8, "stop_loss_pct": 0.6},
                  "sizing": {"kind": "fixed_quote", "value": 1000}, "risk": LOOSE_RISK,
                  "signals": {"confirm_candles": 2,
                              "temperature": {"hold_full": 3, "stop_floor": 0.4}}},
                 {"name": "ex", "mode": "paper", "symbol": "BTCUSDT", "strategy": "sma_crossover",
                  "market": "futures", "max_tranches": 1, "params": {"fast": 3, "slow": 8},
                  "sizing": {"kind": "fixed_quote", "value": 1000}, "risk": LOOSE_RISK,
                  "exits": {"stop_atr": 1.5, "targets": [[1, 30], [2, 50]], "trailing_atr": 2,
                            "breakeven_at_r": 1}},
                 {"name": "reg", "mode": "paper", "symbol": "BTCUSDT", "strategy": "regime_switch",
                  "market": "futures", "max_tranches": 1, "sizing": {"kind": "fixed_quote", "value": 1000},
                  "risk": LOOSE_RISK, "signals": {"regime_size": {"ranging": 50, "high_volatility": 25}},
                  "params": {"regime": {"vol_window": 60, "adx_trend": 20},
                             "strategies": {"ranging": {"strategy": "rsi_reversion", "params": {"period": 5}}},
                             "default": {"strategy": "sma_crossover", "params": {"fast": 3, "slow": 8}}}}],
    })
    data = load_data([csv]).symbols
    last = int(data["BTCUSDT"].times[-1])
    w = start_worker(cfg, tmp_path / "worker.log", r)
    try:
        wait_for(lambda: all((s := snapshots(r).get(b)) is not None and s.last_candle_time == last
                             for b in ("pol", "ex", "reg")), 60, "the worker to replay every candle")
    finally:
        w.stop()
    worker = [TradeRecord.model_validate_json(f[b"data"]) for _, f in r.xrange(keys.trades("pol"))]
    bt = run_config(load_config(cfg), data, FillModel(taker_fee_pct=0.1, slippage_bps=0), ["pol"])[0]
    assert bt.path == "fast"  # auto: the fast path runs the signal policy (backtest.fast_visits)
    assert len(worker) >= 8
    assert [key(t) for t in worker] == [key(t) for t in bt.trades]
    temps = {t.temperature for t in worker}
    assert len(temps) > 1 and None not in temps  # temperatures vary and are recorded
    assert {t.exit_reason for t in worker} >= {"stop_loss", "opposite_signal"}

    # the exits bot: ATR stop, 30/50 % targets at +1/+2 R, the rest trailing; each partial exit its own trade
    worker_ex = [TradeRecord.model_validate_json(f[b"data"]) for _, f in r.xrange(keys.trades("ex"))]
    bt_ex = run_config(load_config(cfg), data, FillModel(taker_fee_pct=0.1, slippage_bps=0), ["ex"])[0]
    assert bt_ex.path == "fast"  # and the exits
    assert [key(t) for t in worker_ex] == [key(t) for t in bt_ex.trades]
    reasons = {t.exit_reason for t in worker_ex}
    assert {"take_profit_1", "stop_loss"} <= reasons and reasons & {"trailing_stop", "breakeven_stop"}, reasons

    # the regime bot: a strategy per market regime, sized by regime; each trade records its regime
    worker_reg = [TradeRecord.model_validate_json(f[b"data"]) for _, f in r.xrange(keys.trades("reg"))]
    bt_reg = run_config(load_config(cfg), data, FillModel(taker_fee_pct=0.1, slippage_bps=0), ["reg"])[0]
    assert [key(t) + (t.regime,) for t in worker_reg] == [key(t) + (t.regime,) for t in bt_reg.trades]
    assert len({t.regime for t in worker_reg}) >= 2 and "" not in {t.regime for t in worker_reg}
    snap = snapshots(r)["reg"]  # what the dashboard shows: the regime now and its changes
    assert snap.regime in {"trending_up", "trending_down", "ranging", "high_volatility"}
    assert len(snap.regime_history) >= 2 and snap.regime_history[-1][1] == snap.regime
