"""Order intents do not grow without bound: final ones beyond the newest N and older than the window go
(open ones never); applied-command nonces expire (tests/unit/test_worker_commands.py checks their TTL)."""
from __future__ import annotations

import fakeredis

from state import keys
from state.intents import IntentRecord, RedisIntentStore

DAY = 24 * 3600 * 1000


def rec(i: int, status: str, t: int) -> IntentRecord:
    return IntentRecord(client_order_id=f"c{i}", bot="b", venue="local", market="spot", symbol="BTCUSDT", side="BUY",
                        quantity="1", status=status, created_at=t, updated_at=t)


def test_old_final_intents_beyond_the_newest_are_pruned_and_open_ones_kept() -> None:
    r = fakeredis.FakeRedis()
    store = RedisIntentStore(r)
    now = 100 * DAY
    for i in range(10):
        x = rec(i, "INTENT", now - (20 - i) * DAY)
        assert store.create(x)
        x.status = "REJECTED" if i % 2 else "FILLED"  # rejected orders count too
        store.update(x)
    opened = rec(99, "INTENT", now - 30 * DAY)
    store.create(opened)  # an old open intent: recovery still needs it
    gone = store.prune("b", keep=3, older_than_ms=7 * DAY, now_ms=now)
    assert gone == 7
    assert sorted(store.get("b", f"c{i}") is not None for i in range(10)) == [False] * 7 + [True] * 3
    assert [x.client_order_id for x in store.open("b")] == ["c99"]
    assert r.zcard(keys.final_intents("b")) == 3
    assert store.prune("b", keep=3, older_than_ms=7 * DAY, now_ms=now) == 0
