#!/usr/bin/env python3
"""Benchmark: the worker's cost per candle per bot, with 1, 10 and 100 paper bots.

Each run feeds N_CANDLES seeded synthetic 1m candles through Worker.step(): every bot
evaluates its strategy, passes the risk check, fills on paper, and the whole batch is
written to a real redis-server in one MULTI/EXEC, exactly as in `make run`.

Reference (same process): the bare strategy call, SmaCrossover.evaluate() on the same
candles with no risk, no executor and no Redis. The ratio says what the rest costs.
Numbers, not asserts: run it with `make bench`.
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from engine.worker import Worker  # noqa: E402
from market.feed import ReplayFeed  # noqa: E402
from market.synthetic import SyntheticMarket  # noqa: E402
from ops.redis_server import free_port, start_redis, stop  # noqa: E402
from settings import AppConfig  # noqa: E402
from strategy.registry import build_strategy  # noqa: E402

N_CANDLES = 1500
WARMUP = 60
PARAMS = {"fast": 3, "slow": 8}


def candles() -> list:
    market = SyntheticMarket({"BTCUSDT": 65_000.0}, seed=3)
    t0 = 1_700_000_000_000 - 1_700_000_000_000 % 60_000
    return [market.step(t0 + i * 60_000)[0] for i in range(N_CANDLES + WARMUP)]


def reference_us(series: list) -> float:
    strat = build_strategy("sma_crossover", PARAMS)
    window = 50
    t = time.perf_counter()
    for i in range(WARMUP, len(series)):
        strat.evaluate(series[i - window + 1: i + 1])
    return (time.perf_counter() - t) / (len(series) - WARMUP) * 1e6


def worker_us(url: str, n_bots: int, series: list) -> tuple[float, float]:
    r = redis.Redis.from_url(url)
    r.flushall()
    app = AppConfig(
        redis={"url": url, "embedded": False},
        market={"symbols": ["BTCUSDT"], "warmup_candles": WARMUP},
        bots=[{"name": f"b{i:03d}", "mode": "paper", "symbol": "BTCUSDT", "strategy": "sma_crossover",
               "params": PARAMS, "sizing": {"kind": "percent_equity", "value": 20},
               "risk": {"max_position_pct": 100, "max_loss_per_trade_pct": None, "daily_loss_pct": None,
                        "max_drawdown_pct": None}} for i in range(n_bots)],
    )
    worker = Worker(app, r, ReplayFeed(series))
    worker.start()
    live = series[WARMUP:]
    t = time.perf_counter()
    for c in live:
        worker.step([c])
    per_candle = (time.perf_counter() - t) / len(live) * 1e6
    trades = sum(b.trade_count for b in worker.bots.values())
    return per_candle, trades / n_bots


def main() -> None:
    series = candles()
    with tempfile.TemporaryDirectory() as d:
        port = free_port()
        proc = start_redis(port, Path(d), appendfsync="everysec")
        try:
            url = f"redis://127.0.0.1:{port}/0"
            ref = statistics.median(reference_us(series) for _ in range(3))
            print(f"worker per-candle cost, {N_CANDLES} candles, paper bots, real redis-server (AOF everysec)")
            print(f"reference: bare SMA(3/8) strategy evaluate = {ref:.1f} µs per candle")
            print(f"{'bots':>5} {'µs/candle':>11} {'µs/candle/bot':>14} {'× reference':>12} {'trades/bot':>11}")
            for n in (1, 10, 100):
                per_candle, trades = worker_us(url, n, series)
                per_bot = per_candle / n
                print(f"{n:>5} {per_candle:>11.1f} {per_bot:>14.1f} {per_bot / ref:>12.1f} {trades:>11.1f}")
        finally:
            stop(proc)


if __name__ == "__main__":
    main()
