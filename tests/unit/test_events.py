"""Events: each kind's builder gives a valid event of the right severity; the readers filter by
bot, kind, severity and time. (The capped stream on a real Redis: tests/integration.)"""
from __future__ import annotations

import time

import fakeredis
import pytest

from state import events as ev
from state import keys
from state.models import AuditRecord, TradeRecord

def all_kinds(T: int = 1_800_000_000_000) -> list[ev.Event]:  # noqa: N803 - the time base of the examples
    trade = TradeRecord(bot="b1", symbol="BTCUSDT", side="LONG", quantity=0.1, entry_price=100, exit_price=110,
                        entry_time=T, exit_time=T + 60_000, pnl=0.98, return_pct=9.8, fees=0.02, exit_reason="tp")
    return [
        ev.trade_opened("b1", "BTCUSDT", "BUY", 0.1, 100.0, "paper", now_ms=T),
        ev.trade_closed(trade, "paper", now_ms=T),
        ev.order_refused("b1", "max_position_pct", "position value 300 > 2% of equity", now_ms=T),
        ev.state_changed("bot", "b1", "ACTIVE", "PAUSED", "dashboard", "paused by operator", now_ms=T),
        ev.risk_breach("b1", "daily_loss", "PAUSED", "daily loss 31 > 30", now_ms=T),
        ev.kill_switch("emergency_stop", "", "api:ops", "closed 2 position(s)", True, now_ms=T),
        ev.kill_switch("flatten", "b1", "dashboard", "NOT closed: b1 (venue error)", False, now_ms=T),
        ev.reconciliation_drift("b1", "BTC: venue 0.2, bot 0.1", now_ms=T),
        ev.preflight_failed("b1", "key: not allowed to trade", now_ms=T),
        ev.venue_unhealthy("binance-spot", "12 errors in a minute", now_ms=T),
        ev.venue_unhealthy("binance-spot", "HTTP 418", banned_until_ms=T + 120_000, now_ms=T),
        ev.stale_data("BTCUSDT", 42.0, now_ms=T),
        ev.worker_started(123, 6, "0.1.0", now_ms=T),
        ev.worker_stopped(123, "SIGTERM", now_ms=T),
        ev.daily_summary("2027-01-15", {"b1": {"pnl": 12.5, "trades": 3}, "b2": {"pnl": -2.5, "trades": 1}}, now_ms=T),
        ev.command_rejected("signal", "b1", "webhook:json", "payload.side: ...", now_ms=T),
    ]


def test_every_kind_has_a_builder_and_a_severity() -> None:
    built = all_kinds()
    assert {e.kind for e in built} == set(ev.EVENT_KINDS)
    sev = {e.kind: e.severity for e in built}
    assert sev["risk_breach"] == sev["kill_switch_failed"] == sev["reconciliation_drift"] == "critical"
    assert sev["preflight_failed"] == sev["venue_ban"] == "critical"
    assert sev["order_refused"] == sev["stale_data"] == sev["kill_switch_applied"] == "warning"
    assert sev["trade_opened"] == sev["trade_closed"] == sev["daily_summary"] == "info"
    closed = next(e for e in built if e.kind == "trade_closed")
    assert closed.data["pnl"] == pytest.approx(0.98) and "+0.98" in closed.title
    summary = next(e for e in built if e.kind == "daily_summary")
    assert summary.data["pnl"] == pytest.approx(10.0) and summary.data["trades"] == 4


def test_state_change_severity_follows_the_direction() -> None:
    assert ev.state_changed("bot", "b", "PAUSED", "ACTIVE", "x", "").severity == "info"
    assert ev.state_changed("global", "", "ACTIVE", "PAUSED", "x", "").severity == "warning"
    assert ev.state_changed("mode", "live", "ACTIVE", "HALTED", "x", "").severity == "critical"
    assert ev.state_changed("mode", "live", "ACTIVE", "HALTED", "x", "").bot == ""


def test_queue_event_joins_the_callers_transaction() -> None:
    r = fakeredis.FakeRedis()
    pipe = r.pipeline(transaction=True)
    pipe.set("bot:control:global", "x")
    ev.queue_event(pipe, ev.risk_breach("b1", "max_drawdown", "HALTED", "dd 6% >= 5%"))
    assert r.xlen(keys.EVENTS) == 0  # nothing until the transaction runs
    pipe.execute()
    (got,) = ev.read_events(r)
    assert got.kind == "risk_breach" and got.bot == "b1" and got.id


def test_read_events_filters() -> None:
    # Event times are the publisher's wall clock, as Redis's stream ids are (the readers rely on it).
    T = int(time.time() * 1000) - 10_000  # noqa: N806
    r = fakeredis.FakeRedis()
    for i, e in enumerate(all_kinds(T)):
        ev.publish_event(r, e.model_copy(update={"time": T + i * 1000}))
    r.xadd(keys.EVENTS, {"data": "not json"})  # a foreign entry is skipped, never an error
    everything = ev.read_events(r)
    assert len(everything) == len(ev.EVENT_KINDS)
    assert [e.time for e in everything] == sorted((e.time for e in everything), reverse=True)  # newest first
    assert {e.bot for e in ev.read_events(r, bot="b1")} == {"b1"}
    assert all(e.bot == "" for e in ev.read_events(r, bot=""))
    assert {e.severity for e in ev.read_events(r, min_severity="critical")} == {"critical"}
    assert {e.severity for e in ev.read_events(r, min_severity="warning")} == {"warning", "critical"}
    assert [e.kind for e in ev.read_events(r, kinds=["venue_ban", "stale_data"])] == ["stale_data", "venue_ban"]
    window = ev.read_events(r, since_ms=T + 2000, until_ms=T + 4000)
    assert sorted(e.time for e in window) == [T + 2000, T + 3000, T + 4000]
    assert len(ev.read_events(r, limit=3)) == 3


def test_read_audit_filters() -> None:
    T = int(time.time() * 1000)  # noqa: N806
    r = fakeredis.FakeRedis()
    rows = [("dashboard", "pause", "b1", "applied"), ("api:ops", "set_limit", "b1", "rejected"),
            ("telegram:77", "emergency_stop", "global", "applied"), ("webhook:json", "signal", "b2", "rejected")]
    for i, (who, cmd, target, result) in enumerate(rows):
        a = AuditRecord(time=T + i, who=who, command=cmd, target=target, result=result, detail="d")
        r.xadd(keys.AUDIT, {"data": a.model_dump_json()})
    assert [a.command for a in ev.read_audit(r, bot="b1")] == ["set_limit", "pause"]
    assert [a.who for a in ev.read_audit(r, who="api:")] == ["api:ops"]
    assert [a.target for a in ev.read_audit(r, results=["rejected"])] == ["b2", "b1"]
    assert [a.time for a in ev.read_audit(r, since_ms=T + 2)] == [T + 3, T + 2]
