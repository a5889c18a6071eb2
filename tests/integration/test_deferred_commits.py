"""Deferred commits (``StateWriter.commit(defer=True)``, the trading loop's) against a real redis-server:
they land in the order they were made, every other write lands after them, a moved fence keeps them
all and writes none, and a Redis killed while they wait for their answers loses none and doubles none."""
from __future__ import annotations

import signal
from pathlib import Path

import pytest
import redis

from core.types import Candle
from ops.redis_server import free_port, start_redis, stop
from state import keys
from state.lease import LeaseLost
from state.writer import DEFER_MAX, StateWriter

M = 60_000


def candle(i: int, close: float = 100.0) -> Candle:
    return Candle("BTCUSDT", i * M, close, close, close, close, 1.0)


def times(w: StateWriter) -> list[int]:
    return [c.open_time for c in w.recent_candles("BTCUSDT")]


def test_deferred_commits_land_in_order_with_their_cursors(r: redis.Redis) -> None:
    w = StateWriter(r)
    for i in range(1, 11):
        w.commit([], [candle(i)], cursors={"a": i * M, **({"b": i * M} if i % 2 else {})}, defer=True)
        assert len(w._inflight) <= DEFER_MAX
    assert w._inflight  # sent ahead of their answers
    w.settle()
    assert not w._inflight and w.kept == 0
    assert times(w) == [i * M for i in range(1, 11)]
    assert w.load_cursors() == {"a": 10 * M, "b": 9 * M}
    assert r.connection_pool._in_use_connections == set()  # the held connection went back to the pool


def test_a_write_made_after_deferred_commits_lands_after_them(r: redis.Redis) -> None:
    """A kill switch's write follows trading steps whose answers are not read yet: Redis must run it after
    them, or a step computed before it would overwrite what it wrote. The deferred batches are large, so
    Redis is still reading them when a write on another connection could overtake them."""
    w = StateWriter(r)
    for i in range(1, 21):
        w.commit([], [candle(i)], cursors={f"bot{j}": i * M for j in range(3_000)}, defer=True)
        assert w._inflight
        w.transaction(lambda pipe: pipe.hset(keys.SNAPSHOT_CURSORS, "bot0", -1))  # the later write
        assert r.hget(keys.SNAPSHOT_CURSORS, "bot0") == b"-1"
    assert times(w) == [i * M for i in range(1, 21)]


def test_a_fence_moved_under_deferred_commits_writes_none_of_them_and_keeps_them(r: redis.Redis) -> None:
    r.set(keys.FENCE, 7)
    w = StateWriter(r)
    w.fence = 7
    w.commit([], [candle(1)], cursors={"a": M}, defer=True)
    w.settle()
    r.set(keys.FENCE, 8)  # another worker took the lease over
    for i in range(2, 2 + DEFER_MAX):
        w.commit([], [candle(i)], cursors={"a": i * M}, defer=True)
    with pytest.raises(LeaseLost, match="holds 8, not 7"):
        w.commit([], [candle(9)], defer=True)  # the oldest answer is read before a fifth is sent
    assert times(w) == [M] and w.load_cursors() == {"a": M}  # none of them ran
    assert not w._inflight and r.connection_pool._in_use_connections == set()
    assert w.kept == 1 + DEFER_MAX  # kept, as any write that did not run (the worker stops)


def test_redis_killed_under_deferred_commits_loses_none_and_doubles_none(tmp_path: Path) -> None:
    """Redis dies while batches wait for their answers (some ran, some did not, the worker cannot tell):
    after it is back, the next write asks which ran, writes the others, and each candle, record and
    cursor is there once."""
    port = free_port()
    proc = start_redis(port, tmp_path, "always")  # what Redis answered is on disk
    client = redis.Redis.from_url(f"redis://127.0.0.1:{port}/0")
    w = StateWriter(client)
    try:
        for i in range(1, 4):
            w.commit([], [candle(i)], cursors={"a": i * M}, defer=True)
        w.settle()
        for i in range(4, 4 + DEFER_MAX):
            w.commit([], [candle(i)], cursors={"a": i * M, "b": i * M}, defer=True)
        assert len(w._inflight) == DEFER_MAX
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        try:
            w.settle()  # the answers come, or some are lost with the connection (which ran is asked later)
        except redis.ConnectionError:
            assert 1 <= len(w._unsure) == w.kept <= DEFER_MAX  # those not answered (a candle each), kept
        with pytest.raises(redis.ConnectionError):  # Redis is down: kept
            w.commit([], [candle(4 + DEFER_MAX)], cursors={"a": (4 + DEFER_MAX) * M}, defer=True)
        assert not w._inflight and w.kept >= 1
        proc = start_redis(port, tmp_path, "always")  # its append-only file holds what ran
        w.commit([], [candle(5 + DEFER_MAX)], cursors={"a": (5 + DEFER_MAX) * M})
        assert times(w) == [i * M for i in range(1, 6 + DEFER_MAX)]  # each once, in order
        assert w.load_cursors() == {"a": (5 + DEFER_MAX) * M, "b": (3 + DEFER_MAX) * M}
        assert w.kept == 0
    finally:
        stop(proc)
