"""Write what changed (engine/snapshot_policy.py) through the worker's own step (fakeredis): a bot's
snapshot goes out at once when it traded, signalled or changed state, its marks at most once a dashboard
refresh (the clock here is simulated), bots without a candle are not written, and a worker that stops
without writing its last marks continues exactly as an uninterrupted one (the catch-up at start).
The real-process SIGKILL version is tests/integration/test_snapshot_restore.py."""
from __future__ import annotations

import fakeredis

from backtest_support import random_data
from core.clock import SimClock
from engine.worker import Worker
from market.feed import ReplayFeed
from settings import AppConfig
from state import keys
from state.commands import new_command
from state.models import BotSnapshot
from state.reader import StateReader

RISK = {"max_position_pct": 100, "max_loss_per_trade_pct": None, "daily_loss_pct": None, "max_drawdown_pct": None}
DCA = {"base_order": 100, "safety_order": 200, "deviation_pct": 0.3, "step_scale": 1, "volume_scale": 1,
       "max_safety_orders": 2, "active_safety_orders": 2, "take_profit_pct": 0.3, "cooldown_s": 600}
BOTS = [
    {"name": "mom", "mode": "paper", "symbol": "BTCUSDT", "strategy": "momentum", "max_hold_candles": 30,
     "params": {"window": 5, "threshold_pct": 0.3}, "sizing": {"kind": "percent_equity", "value": 20}, "risk": RISK},
    {"name": "sma", "mode": "paper", "symbol": "ETHUSDT", "strategy": "sma_crossover",
     "params": {"fast": 3, "slow": 8, "stop_loss_pct": 1.0}, "sizing": {"kind": "percent_equity", "value": 20},
     "risk": RISK},
    {"name": "rsi", "mode": "paper", "symbol": "BTCUSDT", "strategy": "rsi_reversion", "market": "futures",
     "params": {"period": 6}, "sizing": {"kind": "percent_equity", "value": 20}, "risk": RISK},
    {"name": "ghost", "mode": "ghost", "symbol": "ETHUSDT", "strategy": "ema_crossover",
     "params": {"fast": 4, "slow": 12}, "risk": RISK},
    {"name": "dca", "mode": "paper", "kind": "dca", "symbol": "BTCUSDT", "dca": DCA, "risk": RISK},
]
WALL_KEYS = ("updated_at", "books_at")  # when it was written, on the wall clock


def series(n: int) -> list:
    btc = random_data(n, seed=21).candles()
    eth = random_data(n, seed=22, symbol="ETHUSDT").candles()
    return [c for pair in zip(btc, eth) for c in pair]


def make(r: fakeredis.FakeRedis, clock: SimClock, enabled: bool = True) -> Worker:
    # the paper fill model's volume cap off: this checks when snapshots are written, not partial fills
    app = AppConfig(market={"symbols": ["BTCUSDT", "ETHUSDT"], "warmup_candles": 0},
                    paper={"fee_pct": 0.1, "slippage_bps": 0, "fills": {"max_volume_pct": None}}, bots=BOTS)
    # the feed names the symbols (start() warms each from the stored candles); its candles are not read
    w = Worker(app, r, ReplayFeed(series(30)), clock=clock)
    w.snapshots.enabled = enabled
    w.start()
    return w


def run(w: Worker, clock: SimClock, candles: list, ms_per_candle: int = 10) -> None:
    for c in candles:
        clock.advance_to(clock.now_ms() + ms_per_candle)
        w.step([c])


def snaps(r: fakeredis.FakeRedis) -> dict[str, dict]:
    return {n: {k: v for k, v in s.model_dump().items() if k not in WALL_KEYS}
            for n, s in StateReader(r).snapshots().items()}


def raw(r: fakeredis.FakeRedis, bot: str) -> bytes:
    return r.get(keys.snapshot(bot))


def test_marks_wait_for_the_refresh_and_changes_do_not():
    r, clock = fakeredis.FakeRedis(), SimClock(1_000_000)
    w = make(r, clock)
    candles = series(600)
    run(w, clock, candles[:100])
    written_before = w.snapshots.written
    # 400 candles within one refresh (10 ms apart): a bot that only marked is not rewritten
    stale = {}
    for c in candles[100:500]:
        before = {n: BotSnapshot.model_validate_json(raw(r, n)) for n in w.bots}
        clock.advance_to(clock.now_ms() + 1)
        w.step([c])
        for n, bot in w.bots.items():
            after = BotSnapshot.model_validate_json(raw(r, n))
            changed = (after.trade_count, after.orders_sent, after.signals_total, after.effective_state) != (
                before[n].trade_count, before[n].orders_sent, before[n].signals_total, before[n].effective_state)
            if changed or after.last_candle_time == bot.last_candle_time:
                # a trade, an order or a signal is written in the step that made it, with the latest books
                assert after.last_candle_time == bot.last_candle_time
                assert after.quote_balance == bot.portfolio.quote and after.trade_count == bot.trade_count
            else:
                stale[n] = stale.get(n, 0) + 1
    assert stale and sum(stale.values()) > 300, stale
    per_candle = (w.snapshots.written - written_before) / 400
    assert per_candle < 1.0, per_candle  # of 5 bots; every bot was written every candle before
    # a refresh later the marks go out (the health loop's trailing write)
    w.write_marks()
    for n, bot in w.bots.items():
        assert BotSnapshot.model_validate_json(raw(r, n)).last_candle_time == bot.last_candle_time
    # past the refresh interval, the next candle writes the marks of the bots it reached
    clock.advance_to(clock.now_ms() + 1000)
    w.step([candles[500]])
    assert BotSnapshot.model_validate_json(raw(r, "mom")).last_candle_time == candles[500].open_time


def test_a_bot_without_a_candle_is_not_rewritten():
    r, clock = fakeredis.FakeRedis(), SimClock(1_000_000)
    w = make(r, clock)
    candles = series(50)
    run(w, clock, candles[:40], ms_per_candle=2000)
    eth = {n: raw(r, n) for n in ("sma", "ghost")}
    clock.advance_to(clock.now_ms() + 5000)
    w.step([candles[40]])  # a BTCUSDT candle only
    assert {n: raw(r, n) for n in ("sma", "ghost")} == eth


def test_a_kill_switch_is_written_at_once():
    r, clock = fakeredis.FakeRedis(), SimClock(1_000_000)
    w = make(r, clock)
    run(w, clock, series(300))
    res = w.handle_command("1-0", new_command("emergency_stop", "global", "", user="pytest").fields())
    assert res is not None and res.status == "applied"
    for n, s in StateReader(r).snapshots().items():
        assert s.effective_state.value in ("PAUSED", "HALTED"), n
        assert s.position is None and not s.positions, n
        assert s.last_candle_time == w.bots[n].last_candle_time
    # and the next candle within the same refresh keeps showing it
    clock.advance_to(clock.now_ms() + 1)
    w.step([random_data(1, seed=3, start=w.bots["mom"].last_candle_time + 60_000).candles()[0]])
    assert StateReader(r).snapshots()["mom"].effective_state.value == "PAUSED"


def test_a_worker_that_dies_between_writes_continues_exactly():
    candles = series(700)
    # the reference: one worker through every candle
    r0, c0 = fakeredis.FakeRedis(), SimClock(1_000_000)
    w0 = make(r0, c0)
    run(w0, c0, candles)
    w0.write_marks()
    reference = snaps(r0)
    assert sum(s["trade_count"] for s in reference.values()) > 20
    # the same market, the worker gone after 900 candles without writing its last marks
    r1, c1 = fakeredis.FakeRedis(), SimClock(1_000_000)
    w1 = make(r1, c1)
    run(w1, c1, candles[:900])
    behind = {n: b.last_candle_time - BotSnapshot.model_validate_json(raw(r1, n)).last_candle_time
              for n, b in w1.bots.items()}
    assert any(behind.values()), behind  # the crash lands between mark writes
    del w1
    r1.delete(keys.LEASE)  # its lease would expire after the TTL
    w2 = make(r1, c1)
    run(w2, c1, candles[900:])
    w2.write_marks()
    assert snaps(r1) == reference
