"""Write what changed, under a real crash: the worker (a real `bot_manager.py run` process on a real
redis-server) replays a market fast enough that most candles only move the marks, which are written at
most once a dashboard refresh. It is killed with SIGKILL between two mark writes and started again; it
then ends exactly where an uninterrupted worker on the same market ends: the same snapshot for every bot
(books, position, counters, high-water, drawdown, daily equity, monitor state), the same orders and
trades. Without the catch-up at start (the stored candles after a bot's snapshot, up to its cursor, run
again) the counters and marks of the killed run fall behind and this fails."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from state import keys
from support import LOOSE_RISK, snapshots, start_worker, wait_for, write_config

pytestmark = pytest.mark.timeout(240)

T0 = 1_704_067_200_000
M = 60_000
N = 2400  # candles per symbol
DCA = {"base_order": 100, "safety_order": 200, "deviation_pct": 0.3, "step_scale": 1, "volume_scale": 1,
       "max_safety_orders": 2, "active_safety_orders": 2, "take_profit_pct": 0.3, "cooldown_s": 600}
SIZE = {"kind": "percent_equity", "value": 20}
BOTS = [
    {"name": "mom", "mode": "paper", "symbol": "BTCUSDT", "strategy": "momentum", "max_hold_candles": 30,
     "params": {"window": 5, "threshold_pct": 0.3}, "sizing": SIZE, "risk": LOOSE_RISK},
    {"name": "sma", "mode": "paper", "symbol": "ETHUSDT", "strategy": "sma_crossover",
     "params": {"fast": 3, "slow": 8, "stop_loss_pct": 1.0}, "sizing": SIZE, "risk": LOOSE_RISK},
    {"name": "rsi", "mode": "paper", "symbol": "BTCUSDT", "strategy": "rsi_reversion", "market": "futures",
     "params": {"period": 6}, "sizing": SIZE, "risk": LOOSE_RISK},
    {"name": "ghost", "mode": "ghost", "symbol": "ETHUSDT", "strategy": "ema_crossover",
     "params": {"fast": 4, "slow": 12}, "risk": LOOSE_RISK},
    {"name": "dca", "mode": "paper", "kind": "dca", "symbol": "BTCUSDT", "dca": DCA, "risk": LOOSE_RISK},
]
WALL = ("updated_at", "books_at")  # when a snapshot was written, on the wall clock


def market_file(path: Path, seed: int) -> str:
    rng = np.random.default_rng(seed)
    closes = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.003, N)))
    opens = np.concatenate(([100.0], closes[:-1]))
    wick = np.abs(rng.normal(0.0, 0.0015, (2, N)))
    highs, lows = np.maximum(opens, closes) * (1 + wick[0]), np.minimum(opens, closes) * (1 - wick[1])
    rows = ["open_time,open,high,low,close,volume"]
    rows += [f"{T0 + i * M},{o!r},{h!r},{lo!r},{c!r},100.0"
             for i, (o, h, lo, c) in enumerate(zip(opens.tolist(), highs.tolist(), lows.tolist(), closes.tolist()))]
    path.write_text("\n".join(rows) + "\n")
    return str(path)


def config(tmp_path: Path, url: str) -> Path:
    cfg = {
        "redis": {"url": url, "embedded": False},
        "market": {"source": "replay", "symbols": ["BTCUSDT", "ETHUSDT"], "speed": 20_000, "warmup_candles": 0,
                   "replay_files": [market_file(tmp_path / "BTCUSDT_1m.csv", 1),
                                    market_file(tmp_path / "ETHUSDT_1m.csv", 2)]},
        "worker": {"heartbeat_ttl_s": 2, "heartbeat_every_s": 0.3},
        "paper": {"fee_pct": 0.1, "slippage_bps": 0},
        "dashboard": {"refresh_s": 1.0},
        "bots": BOTS,
    }
    return write_config(tmp_path / "config.yaml", cfg)


LAST = T0 + (N - 1) * M


def cursors(r) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in r.hgetall(keys.SNAPSHOT_CURSORS).items()}


def finished(r) -> bool:
    snaps = snapshots(r)
    return len(snaps) == len(BOTS) and all(s.last_candle_time == LAST for s in snaps.values())


def state(r) -> dict[str, object]:
    """Every bot's snapshot (without its write times) and its orders and trades."""
    out: dict[str, object] = {}
    for name, s in snapshots(r).items():
        out[name] = {k: v for k, v in s.model_dump().items() if k not in WALL}
        for what, key in (("orders", keys.orders(name)), ("trades", keys.trades(name))):
            out[f"{name}:{what}"] = [json.loads(f[b"data"]) for _, f in r.xrange(key)]
    return out


def test_sigkill_between_mark_writes_then_restart_ends_exactly_as_without(r, redis_server, tmp_path):
    cfg = config(tmp_path, redis_server.url)
    # the reference: one worker through the whole market
    w = start_worker(cfg, tmp_path / "reference.log", r)
    try:
        wait_for(lambda: finished(r), 120, "the uninterrupted worker to reach the last candle")
    finally:
        w.stop()
    reference = state(r)
    assert sum(v["trade_count"] for k, v in reference.items() if ":" not in k) > 30  # type: ignore[index]
    r.flushall()

    # the same market, killed mid-way: several times if a kill happens to land right after a write
    behind: dict[str, int] = {}
    for attempt in range(3):
        w = start_worker(cfg, tmp_path / f"crash-{attempt}.log", r)
        start = max(cursors(r).values(), default=T0)
        wait_for(lambda: min(cursors(r).values(), default=0) > start + 300 * M, 60, "300 candles traded")
        w.kill9()
        snaps = snapshots(r)
        behind = {n: t - snaps[n].last_candle_time for n, t in cursors(r).items() if t > snaps[n].last_candle_time}
        if behind or finished(r):
            break
    assert behind, "every kill landed right after a mark write; nothing to catch up"
    w = start_worker(cfg, tmp_path / "restart.log", r)
    try:
        wait_for(lambda: finished(r), 120, "the restarted worker to reach the last candle")
    finally:
        w.stop()
    got = state(r)
    for name in reference:
        assert got[name] == reference[name], name
