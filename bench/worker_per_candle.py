#!/usr/bin/env python3
"""Benchmark: the worker's cost per candle per bot, before and after issue 19, in the same run.

Each run feeds seeded synthetic 1m candles through Worker.step(): every bot evaluates its strategy,
passes the risk check, fills on paper, and the batch is written to a real redis-server in one
atomic batch (state/batch.py), exactly as in `make run` (replayed as fast as the worker goes).

Two configurations of the same code, run one after the other on the same candles:

* before (the named reference): every bot's strategy recomputes its indicators with evaluate()
  (``strategy.incremental.ENABLED = False``) and every bot's full snapshot is written on every step
  (``SnapshotPolicy.enabled = False``) — what the worker did before;
* after: incremental indicators, write-what-changed (marks at most once a dashboard refresh, 1 s), and
  each step's batch sent ahead of its answer, as the trading loop steps (``Worker.run``: Redis runs it
  while the next step is computed).

Scenarios: 1, 10, 100 paper SMA(3/8) bots on one symbol, and 200 bots (SMA, EMA, momentum, RSI) over
50 symbols, one batch of 50 candles a step. Printed: µs per candle per bot (wall), bot-candles per
second of one core (process CPU time; redis-server runs in its own process), Redis commands per
candle per bot (INFO commandstats), and the ratio before/after; each configuration runs ``--repeat``
times (alternating) and its fastest run is printed. Numbers, not asserts: `make bench`.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from engine.worker import Worker  # noqa: E402
from market.feed import ReplayFeed  # noqa: E402
from market.synthetic import SyntheticMarket  # noqa: E402
from ops.redis_server import free_port, start_redis, stop  # noqa: E402
from settings import AppConfig  # noqa: E402
from strategy import incremental  # noqa: E402
from strategy.registry import build_strategy  # noqa: E402

WARMUP = 60
PARAMS = {"fast": 3, "slow": 8}
RISK = {"max_position_pct": 100, "max_loss_per_trade_pct": None, "daily_loss_pct": None, "max_drawdown_pct": None}
MIX = [("sma_crossover", {"fast": 3, "slow": 8}), ("ema_crossover", {"fast": 5, "slow": 20}),
       ("momentum", {"window": 10, "threshold_pct": 0.3}), ("rsi_reversion", {"period": 14})]


def candles(symbols: list[str], steps: int) -> list:
    market = SyntheticMarket({s: 100.0 + 10 * i for i, s in enumerate(symbols)}, seed=3)
    t0 = 1_700_000_000_000 - 1_700_000_000_000 % 60_000
    out = []
    for i in range(steps + WARMUP):
        out.extend(market.step(t0 + i * 60_000))
    return out


def reference_us(series: list, stepper: bool) -> float:
    """The bare strategy call: SMA(3/8) evaluate() (or its stepper) on a bot's window, nothing else."""
    from collections import deque

    from strategy.base import history_window

    strat = build_strategy("sma_crossover", PARAMS)
    step = strat.stepper() if stepper else None  # type: ignore[attr-defined]
    h: deque = deque(maxlen=history_window(strat))
    n = 0
    t = time.perf_counter()
    for c in series:
        h.append(c)
        if len(h) >= strat.warmup:
            n += 1
            step.signal(h) if step is not None else strat.evaluate(tuple(h))
    return (time.perf_counter() - t) / n * 1e6


def commands(r: redis.Redis) -> int:
    return sum(v["calls"] for v in r.info("commandstats").values())


def run(url: str, bots: list[dict[str, Any]], symbols: list[str], series: list, after: bool) -> dict[str, float]:
    r = redis.Redis.from_url(url)
    r.flushall()
    incremental.ENABLED = after
    incremental.Stepper.shared.clear()  # as in a fresh worker: no answers kept from a previous run
    app = AppConfig(redis={"url": url, "embedded": False},
                    market={"symbols": symbols, "warmup_candles": WARMUP}, bots=bots)
    worker = Worker(app, r, ReplayFeed(series))
    worker.snapshots.enabled = after
    worker.start()
    n_sym = len(symbols)
    live = series[WARMUP * n_sym:]
    batches = [live[i:i + n_sym] for i in range(0, len(live), n_sym)]
    bot_candles = sum(len(worker.fleet.by_symbol.get(c.key, ())) for c in live)
    c0 = commands(r)
    t, cpu = time.perf_counter(), time.process_time()
    for b in batches:
        worker.step(b, defer=after)  # as the trading loop steps (Worker.run)
    worker.settle_writes()  # the last step's answer
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    calls = commands(r) - c0 - 1  # the second INFO itself
    trades = sum(b.trade_count for b in worker.bots.values())
    incremental.ENABLED = True
    return {"us": wall / bot_candles * 1e6, "cpu_us": cpu / bot_candles * 1e6, "per_s": bot_candles / cpu,
            "cmds": calls / bot_candles, "trades": trades / len(bots), "written": worker.snapshots.written}


def sma_bots(n: int) -> list[dict[str, Any]]:
    return [{"name": f"b{i:03d}", "mode": "paper", "symbol": "BTCUSDT", "strategy": "sma_crossover",
             "params": PARAMS, "sizing": {"kind": "percent_equity", "value": 20}, "risk": RISK} for i in range(n)]


def mixed_bots(n: int, symbols: list[str]) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        name, params = MIX[i % len(MIX)]
        out.append({"name": f"m{i:03d}", "mode": "paper", "symbol": symbols[i % len(symbols)], "strategy": name,
                    "params": params, "sizing": {"kind": "percent_equity", "value": 20}, "risk": RISK})
    return out


def line(label: str, res: dict[str, float]) -> str:
    return (f"{label:<28} {res['us']:>9.1f} {res['cpu_us']:>9.1f} {res['per_s']:>12,.0f} {res['cmds']:>10.2f} "
            f"{res['trades']:>8.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--candles", type=int, default=1500, help="candles per symbol, one-symbol scenarios")
    ap.add_argument("--steps", type=int, default=300, help="steps of 50 candles, 200 bots / 50 symbols")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each configuration (the fastest is printed)")
    args = ap.parse_args()
    one = candles(["BTCUSDT"], args.candles)
    symbols = [f"S{i:02d}USDT" for i in range(50)]
    many = candles(symbols, args.steps)
    head = (f"{'':<28} {'µs/bc':>9} {'cpu µs/bc':>9} {'bc/s 1 core':>12} {'redis/bc':>10} {'trd/bot':>8}")
    with tempfile.TemporaryDirectory() as d:
        port = free_port()
        proc = start_redis(port, Path(d), appendfsync="everysec")
        try:
            url = f"redis://127.0.0.1:{port}/0"
            ref = min(reference_us(one, False) for _ in range(3))
            inc = min(reference_us(one, True) for _ in range(3))
            print("worker per-candle cost, paper bots, real redis-server (AOF everysec); bc = bot-candle")
            print(f"bare strategy, SMA(3/8): evaluate() {ref:.1f} µs, incremental stepper {inc:.1f} µs "
                  f"(× {ref / inc:.1f})")
            print(head)
            scenarios = [(f"{n} bot(s), 1 symbol", sma_bots(n), ["BTCUSDT"], one) for n in (1, 10, 100)]
            scenarios.append(("200 bots, 50 symbols", mixed_bots(200, symbols), symbols, many))
            for label, bots, syms, series in scenarios:
                # before and after alternate, each run --repeat times; the fastest (CPU) run of each is
                # printed: on this machine the same run varies by ±15 % from one try to the next
                befores, afters = [], []
                for _ in range(args.repeat):
                    befores.append(run(url, bots, syms, series, after=False))
                    afters.append(run(url, bots, syms, series, after=True))
                before = min(befores, key=lambda x: x["cpu_us"])
                after = min(afters, key=lambda x: x["cpu_us"])
                print(line(label + " before", before))
                print(line(label + " after", after))
                print(f"{'':<28} × {before['us'] / after['us']:.1f} faster, "
                      f"× {before['cmds'] / max(after['cmds'], 1e-9):.1f} fewer Redis commands; "
                      f"same trades: {before['trades'] == after['trades']}")
        finally:
            stop(proc)


if __name__ == "__main__":
    main()
