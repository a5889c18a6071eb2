#!/usr/bin/env python3
"""Benchmark: live order round trip on the local exchange, and decision latency.

  round trip   submit -> venue acknowledged -> fill recorded in Redis (LiveExecutor.execute with the
               real intent store on a real redis-server), p50 and p99 over N market orders
  ack          submit -> the venue's answer (the HTTP order call alone)
  decision     closed candle handed to the bot -> order about to be sent (strategy, sizing, risk
               check, intent recorded), p50 and p99
  resting fill a resting LIMIT buy (a DCA safety order in a LiveBook) is traded through: from the
               price move sent to the exchange -> the fill recorded in Redis from the user-data
               stream (intent FILLED with its trade, the bot woken), p50 and p99; a fill not seen within
               FILL_WAIT_S is counted as missed and left out of the percentiles

Reference (same process): a REST ping round trip to the same exchange. Numbers, not asserts.
"""
from __future__ import annotations

import statistics
import sys
import threading
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import redis  # noqa: E402

from core.portfolio import Portfolio  # noqa: E402
from core.types import Candle, Mode, Order, OrderPurpose, Side, TradingState  # noqa: E402
from engine.bot import Bot  # noqa: E402
from executors.spot_fees import SpotFeeFills  # noqa: E402
from exchange.client import ExchangeClient  # noqa: E402
from exchange.venues import venue_urls  # noqa: E402
from executors.live import LiveExecutor  # noqa: E402
from executors.live_book import LiveBook  # noqa: E402
from executors.venue import RestingOrder  # noqa: E402
from exchange.userdata import UserDataStream  # noqa: E402
from ops.redis_server import free_port, start_redis, stop  # noqa: E402
from risk.engine import RiskEngine  # noqa: E402
from risk.limits import RiskLimits  # noqa: E402
from sim_process import KEY, SECRET, SimProcess  # noqa: E402
from state.intents import RedisIntentStore  # noqa: E402
from strategy.registry import build_strategy  # noqa: E402

N = 200
FILL_WAIT_S = 5.0  # a resting fill not seen by then is a miss


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        port = free_port()
        rproc = start_redis(port, Path(d), "always")
        sim = SimProcess(Path(d) / "exchange.log", "--source", "synthetic", "--symbols", "BTCUSDT", "--speed", "0",
                         "--balances", "USDT=1000000", "--weight-limit", "1000000", "--orders-per-10s", "100000")
        try:
            r = redis.Redis(port=port)
            client = ExchangeClient(venue_urls("local", sim.url), KEY, SECRET)
            client.exchange_info()
            ping = []
            for _ in range(N):
                t = time.perf_counter()
                client.ping()
                ping.append((time.perf_counter() - t) * 1e3)
            ex = LiveExecutor(client, RedisIntentStore(r))
            ack: list[float] = []
            place = client.place_market

            def timed_place(*a, **k):  # noqa: ANN002, ANN003, ANN202
                t = time.perf_counter()
                try:
                    return place(*a, **k)
                finally:
                    ack.append((time.perf_counter() - t) * 1e3)

            client.place_market = timed_place  # type: ignore[method-assign]
            rt = []
            price = float(client.price("BTCUSDT"))
            for i in range(N):
                side = Side.BUY if i % 2 == 0 else Side.SELL
                qty = 0.001 if side is Side.BUY else 0.00099  # what the buy left after its BTC fee
                o = Order(f"bench{i:06d}", "bench", "BTCUSDT", side, qty, OrderPurpose.ENTRY)
                t = time.perf_counter()
                fills = ex.execute(o, price, 0)
                rt.append((time.perf_counter() - t) * 1e3)
                assert fills, f"{o.status}: {ex.last.reason if ex.last else ''}"
            # decision latency: a closed candle into a live bot until its order is about to go out
            decide: list[float] = []
            t0 = [0.0]
            ex.before_send = lambda _rec: decide.append((time.perf_counter() - t0[0]) * 1e3)
            bot = Bot("decide", Mode.LIVE, "BTCUSDT", build_strategy("momentum", {"window": 2, "threshold_pct": 0.001}),
                      SpotFeeFills(ex), RiskEngine(RiskLimits(max_orders_per_minute=None, min_notional=1.0)),
                      Portfolio("decide", 1_000_000.0), ("fixed_quote", 100.0), lambda _b: TradingState.ACTIVE)
            bot.dust_key = lambda sym: sym  # as in the worker: lot-size dust leaves the position
            p = price
            for i in range(N + 3):
                p *= 1.01 if (i // 2) % 2 == 0 else 0.99  # alternate runs: a signal most candles
                t0[0] = time.perf_counter()
                bot.on_candle(Candle("BTCUSDT", 1_700_000_000_000 + i * 60_000, p, p, p, p, 1.0))
            if len(decide) < N // 4:
                print(f"(decision sample small: {len(decide)} orders; denials {dict(bot.denials)})")
            # resting fills through the user-data stream
            book = LiveBook(LiveExecutor(client, RedisIntentStore(r)), "bench-dca")
            woke = threading.Event()
            book.wake = woke.set
            stream = UserDataStream(venue_urls("local", sim.url), KEY, SECRET, "spot", on_event=book.on_event)
            stream.start()
            stream.wait_connected(10)
            resting: list[float] = []
            missed = 0  # no fill within FILL_WAIT_S: counted apart, not as a latency
            base = client.price("BTCUSDT")
            for i in range(N // 4):
                o = RestingOrder(f"benchso{i:05d}", "bench-dca", "BTCUSDT", "BUY", 0.001, float(base) * 0.995, "SO1")
                book.place(o)
                woke.clear()
                t = time.perf_counter()
                sim.set_price("BTCUSDT", str(round(float(base) * 0.99, 2)))
                if woke.wait(FILL_WAIT_S):
                    resting.append((time.perf_counter() - t) * 1e3)
                else:
                    missed += 1
                book.take()
                sim.set_price("BTCUSDT", str(base))
            stream.close()
            ref = statistics.median(ping)
            print(f"live order path on the local exchange, {N} market orders, real redis-server (AOF always)")
            print(f"reference: REST ping round trip p50 = {ref:.2f} ms")
            for name, xs in (("ack (order call)", ack), ("round trip to fill in Redis", rt), ("decision latency", decide),
                             ("resting fill -> Redis (stream)", resting)):
                if not xs:
                    print(f"{name:30} no samples")
                    continue
                print(f"{name:30} p50 {pct(xs, 50):7.2f} ms  p99 {pct(xs, 99):7.2f} ms  "
                      f"({pct(xs, 50) / ref:.1f}x the ping)  n={len(xs)}")
            print(f"resting fills missed (no fill within {FILL_WAIT_S:g} s, left out of p50/p99): {missed} of {N // 4}")
        finally:
            sim.close()
            stop(rproc)


if __name__ == "__main__":
    main()
