"""A replay per monitor rule: a price path trips it, the state moves by itself with its reason and
numbers, and the orders that follow obey it. Worker + fakeredis, scripted signals."""
from __future__ import annotations

import fakeredis
import pytest

from core.clock import SimClock
from core.types import INTERVAL_MS, NO_SIGNAL, Candle, Side, Signal
from engine.worker import Worker
from market.feed import ReplayFeed
from settings import AppConfig
from state import keys
from state.models import AuditRecord
from state.reader import StateReader

T0 = 1_704_067_200_000
M = INTERVAL_MS["1m"]
BUY = Signal(Side.BUY, 1.0, "scripted buy")
SELL = Signal(Side.SELL, 1.0, "scripted sell")


class Scripted:
    name, warmup = "scripted", 1

    def __init__(self, script: dict[int, Signal]) -> None:
        self.script = script

    def evaluate(self, candles: object) -> Signal:
        return self.script.get((candles[-1].open_time - T0) // M, NO_SIGNAL)  # type: ignore[index]


def env(risk: dict[str, object], script: dict[int, Signal]) -> tuple[Worker, fakeredis.FakeRedis]:
    app = AppConfig(market={"symbols": ["BTCUSDT"], "warmup_candles": 1},
                    paper={"fee_pct": 0.0, "slippage_bps": 0},
                    bots=[{"name": "b", "mode": "paper", "symbol": "BTCUSDT", "strategy": "momentum",
                           "params": {"window": 2, "threshold_pct": 1}, "sizing": {"kind": "percent_equity", "value": 50},
                           "risk": {"max_position_pct": 100, "max_loss_per_trade_pct": None, "daily_loss_pct": None,
                                    "max_drawdown_pct": None, **risk}}])
    r = fakeredis.FakeRedis()
    w = Worker(app, r, ReplayFeed([]), clock=SimClock(T0))
    w.start()
    w.bots["b"].strategy = Scripted(script)  # type: ignore[assignment]
    return w, r


def feed(w: Worker, prices: list[float], start: int = 0, day: int = 0) -> None:
    for i, p in enumerate(prices):
        w.step([Candle("BTCUSDT", T0 + day * 86_400_000 + (start + i) * M, p, p, p, p, 1e6)])


def audit(r: fakeredis.FakeRedis) -> list[AuditRecord]:
    return [AuditRecord.model_validate_json(f[b"data"]) for _, f in r.xrange(keys.AUDIT)]


def entries_after(r: fakeredis.FakeRedis, t: int) -> list[str]:
    return [o.status for o in StateReader(r).orders("b") if o.purpose == "ENTRY" and o.created_at > t]


def test_daily_loss_pauses_the_bot_with_its_numbers() -> None:
    w, r = env({"daily_loss_value": 100.0}, {1: BUY, 4: SELL, 5: BUY})
    feed(w, [100, 100, 90, 80, 80, 80, 80])      # 50 units from 100: -500 at 90 -> breach
    assert r.hget(keys.control("bot", "b"), b"state") == b"PAUSED"
    a = [x for x in audit(r) if x.who == "risk"][0]
    assert a.command == "daily_loss" and "reached the limit (100)" in a.detail
    assert StateReader(r).snapshots()["b"].risk.breaches[0].startswith("daily_loss")
    (t,) = StateReader(r).trades("b")              # the exit at 4 still ran while paused
    assert t.exit_reason == "opposite_signal"
    assert entries_after(r, T0 + 3 * M) == ["REJECTED"]  # the BUY at 5 is refused...
    assert StateReader(r).denials("b")[0].rule == "trading_state"  # ...by the PAUSED state


def test_max_drawdown_flattens_then_halts() -> None:
    w, r = env({"max_drawdown_pct": 10.0}, {1: BUY, 6: BUY})
    feed(w, [100, 100, 110, 100, 75, 75, 75, 75])  # peak 10 500 at 110; 75 -> 8 750: -16.7 %
    snap = StateReader(r).snapshots()["b"]
    assert snap.position is None and r.hget(keys.control("bot", "b"), b"state") == b"HALTED"
    (t,) = StateReader(r).trades("b")
    assert t.exit_reason == "risk: max_drawdown"
    assert snap.risk.high_water == pytest.approx(10_500.0)
    assert entries_after(r, T0 + 5 * M) == ["REJECTED"]  # the BUY at 6: HALTED allows no orders
    assert StateReader(r).denials("b")[0].detail == "state HALTED allows no entries"


def test_consecutive_losses_pause() -> None:
    w, r = env({"max_consecutive_losses": 2}, {1: BUY, 2: SELL, 3: BUY, 4: SELL, 5: BUY})
    feed(w, [100, 100, 99, 99, 98, 98, 98])
    assert r.hget(keys.control("bot", "b"), b"state") == b"PAUSED"
    assert [a.command for a in audit(r) if a.who == "risk"] == ["consecutive_losses"]
    assert len(StateReader(r).trades("b")) == 2


def test_weekly_loss_pauses_across_days() -> None:
    w, r = env({"weekly_loss_value": 150.0}, {1: BUY})
    feed(w, [100, 100, 99])                        # -50 on Monday
    feed(w, [97], day=1)                           # -150 by Tuesday
    assert r.hget(keys.control("bot", "b"), b"state") == b"PAUSED"
    assert [a.command for a in audit(r) if a.who == "risk"] == ["weekly_loss"]


def test_lowered_limit_takes_effect_at_once_and_raising_is_refused() -> None:
    from state.commands import new_command

    w, r = env({}, {1: BUY})
    res = w.handle_command("1-0", new_command("set_limit", "bot", "b", limit="max_position_pct", value="10").fields())
    assert res.status == "applied" and "in effect now" in res.message
    feed(w, [100, 100])                            # 50 % entry > 10 % cap
    assert StateReader(r).denials("b")[0].rule == "max_position_pct"
    res = w.handle_command("2-0", new_command("set_limit", "bot", "b", limit="max_position_pct", value="90").fields())
    assert res.status == "rejected" and "restart" in res.message
    w2 = Worker(w.app, r, ReplayFeed([]), clock=SimClock(T0))  # a restart keeps the lowered limit
    w2.start()
    assert w2.bots["b"].risk.limits.max_position_pct == 10.0


def test_halted_survives_a_restart_with_its_high_water_mark() -> None:
    w, r = env({"max_drawdown_pct": 10.0}, {1: BUY})
    feed(w, [100, 100, 110, 75])
    w2 = Worker(w.app, r, ReplayFeed([]), clock=SimClock(T0))
    w2.start()
    assert w2.controls.get("bot", "b").state.value == "HALTED"
    assert w2.bots["b"].monitor.s.high_water == pytest.approx(10_500.0)  # type: ignore[union-attr]
