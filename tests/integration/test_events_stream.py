"""The events stream on a real redis-server: an event joins the transaction of the change it tells
of (all or nothing), and the stream stays capped."""
from __future__ import annotations

import pytest
import redis

from state import events as ev
from state import keys


def test_an_event_is_written_with_its_change_or_not_at_all(r: redis.Redis) -> None:
    pipe = r.pipeline(transaction=True)
    pipe.hset(keys.control("bot", "b1"), mapping={"state": "PAUSED", "set_by": "risk"})
    ev.queue_event(pipe, ev.state_changed("bot", "b1", "ACTIVE", "PAUSED", "risk", "daily loss"))
    pipe.execute()
    (e,) = ev.read_events(r, bot="b1")
    assert e.kind == "state_changed" and r.hget(keys.control("bot", "b1"), "state") == b"PAUSED"
    pipe = r.pipeline(transaction=True)
    pipe.hset(keys.control("bot", "b1"), "state", "HALTED")
    ev.queue_event(pipe, ev.risk_breach("b1", "max_drawdown", "HALTED", "dd"))
    pipe.reset()  # a transaction that never runs (a crash before EXEC) leaves neither behind
    assert len(ev.read_events(r, bot="b1")) == 1 and r.hget(keys.control("bot", "b1"), "state") == b"PAUSED"


def test_the_stream_is_capped(r: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ev, "EVENTS_KEEP", 1000)
    pipe = r.pipeline(transaction=False)
    for i in range(5000):
        ev.queue_event(pipe, ev.stale_data("BTCUSDT", float(i)))
    pipe.execute()
    assert 1000 <= r.xlen(keys.EVENTS) < 1200  # MAXLEN ~: trimmed by whole macro nodes
    assert ev.read_events(r, limit=1)[0].data["age_s"] == 4999.0
