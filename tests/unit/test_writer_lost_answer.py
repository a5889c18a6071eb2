"""A batch whose answer was lost (Redis died between EXEC and the reply) is passed again by the
worker with what came since: StateWriter writes it once, whether or not the lost one was written;
and a connection dropped while the fence is watched is not mistaken for a lost lease."""
from __future__ import annotations

import fakeredis
import pytest
import redis

from core.types import Candle
from state import keys
from state.lease import LeaseLost
from state.models import AuditRecord, CommandResult
from state.writer import StateWriter


def candle(i: int) -> Candle:
    return Candle("BTCUSDT", 60_000 * i, 1.0, 1.0, 1.0, 1.0, 1.0)


def times(r: redis.Redis) -> list[int]:
    return [c.open_time for c in StateWriter(r).recent_candles("BTCUSDT")]


@pytest.mark.parametrize("written", [True, False])
def test_a_batch_whose_answer_was_lost_is_written_once(written: bool) -> None:
    r = fakeredis.FakeRedis()
    w = StateWriter(r)
    real = w._transaction
    calls = {"n": 0}

    def lose_the_answer(build, *rest):  # noqa: ANN001, ANN202
        calls["n"] += 1
        if calls["n"] == 1:
            if written:
                real(build, *rest)  # EXEC ran; the reply never came
            raise redis.ConnectionError("Connection closed by server.")
        real(build, *rest)

    w._transaction = lose_the_answer  # type: ignore[method-assign]
    with pytest.raises(redis.ConnectionError):
        w.commit([], [candle(1), candle(2)])
    assert w.kept == 2  # the caller drops its batch: the writer keeps it
    w.commit([], [candle(3)])
    assert times(r) == [60_000, 120_000, 180_000]
    assert w.kept == 0


def test_redis_gone_while_asking_keeps_everything_for_the_next_try() -> None:
    r = fakeredis.FakeRedis()
    w = StateWriter(r)
    w._kept = ([], [candle(1), candle(2)], [], [])
    w._unsure = [("lost-batch", (0, 2, 0, 0))]
    w.r = type("Down", (), {"get": lambda *_: (_ for _ in ()).throw(redis.ConnectionError("refused"))})()
    with pytest.raises(redis.ConnectionError):
        w.commit([], [candle(3)])
    assert w.kept == 3
    w.r = r
    r.set(keys.LAST_COMMIT, "lost-batch")  # the lost batch had been written after all
    w.commit([], [candle(4)])
    assert times(r) == [180_000, 240_000]  # its two candles are not written again; nothing else is lost


def test_a_failed_command_answer_keeps_its_effect_for_the_next_write() -> None:
    r = fakeredis.FakeRedis()
    w = StateWriter(r)
    real = w._transaction
    calls = {"n": 0}

    def down_once(build, *rest):  # noqa: ANN001, ANN202
        calls["n"] += 1
        if calls["n"] == 1:
            raise redis.ConnectionError("refused")
        real(build, *rest)

    w._transaction = down_once  # type: ignore[method-assign]
    audit = AuditRecord(time=1, who="t", command="flatten", target="b", result="applied", detail="")
    result = CommandResult(nonce="n1", entry_id="1-1", status="applied", message="", time=1)
    with pytest.raises(redis.ConnectionError):
        w.finish_command("1-1", result, audit, more_audits=[audit])
    w.commit([], [candle(1)])
    assert r.xlen(keys.AUDIT) == 1  # the effect's audit; the answer itself comes when the entry is read again
    assert times(r) == [60_000]


def test_a_dropped_connection_during_the_write_is_not_a_lost_lease(monkeypatch) -> None:  # noqa: ANN001
    """The one-script write (state/batch.py): a connection lost during it is an unknown outcome (the
    writer keeps the batch), not a lost lease; a moved fence is a lost lease, and nothing is written."""
    r = fakeredis.FakeRedis()
    r.set(keys.FENCE, 7)
    w = StateWriter(r)
    w.fence = 7
    from state.batch import BatchRunner
    real = BatchRunner._post

    def drop(self, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        raise redis.ConnectionError("Connection closed by server.")

    monkeypatch.setattr(BatchRunner, "_post", drop)
    with pytest.raises(redis.ConnectionError):
        w.commit([], [candle(1)])
    assert w.kept == 1
    monkeypatch.setattr(BatchRunner, "_post", real)
    r.set(keys.FENCE, 8)  # now another worker took the lease: that is a lost lease
    with pytest.raises(LeaseLost):
        w.commit([], [candle(2)])
    assert times(r) == [] and r.get(keys.LAST_COMMIT) is None  # nothing of either batch
    r.set(keys.FENCE, 7)
    w.commit([], [candle(3)])
    assert times(r) == [60_000, 120_000, 180_000]  # what was fenced out was kept, as any write that did not run


def test_a_dropped_connection_while_watching_the_fence_is_not_a_lost_lease(monkeypatch) -> None:  # noqa: ANN001
    """The general way (a batch holding a script of its own: WATCH, then MULTI/EXEC): redis-py's
    WatchError on a dropped connection is an unknown outcome, not a lost lease."""
    r = fakeredis.FakeRedis()
    r.set(keys.FENCE, 7)
    w = StateWriter(r)
    w.fence = 7

    def drop(self, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202 - redis-py's answer to a drop while watching
        raise redis.WatchError("A ConnectionError occurred on while watching one or more keys")

    def with_a_script(pipe) -> None:  # noqa: ANN001
        pipe.eval("return redis.call('SET', KEYS[1], ARGV[1])", 1, "k", "v")

    w._transaction(with_a_script)
    assert r.get("k") == b"v"  # the general way writes it
    monkeypatch.setattr(redis.client.Pipeline, "execute", drop)
    with pytest.raises(redis.ConnectionError):
        w._transaction(with_a_script)
    r.set(keys.FENCE, 8)  # now another worker took the lease: that is a lost lease
    with pytest.raises(LeaseLost):
        w._transaction(with_a_script)


def test_written_off_dust_goes_to_the_baseline_with_the_books_once_even_when_the_answer_is_lost() -> None:
    """Dust written off after an exit is part of the bot's update: it reaches the reconciliation baseline
    in the transaction that writes the books without it — not before (a crash in between then wrote it
    off twice: once in Redis, once again after the restart replayed the exit) and never twice."""
    from core.types import Side, Signal
    from tests.unit.test_tranches import flat, make_bot  # its paper bot harness

    bot = make_bot({0: Signal(Side.BUY, 0.8, "go")})
    bot.on_candle(flat(0, 100.0))
    bot.dust_key = lambda sym: sym.removesuffix("USDT")
    r = fakeredis.FakeRedis()
    w = StateWriter(r)
    dust = bot.write_off(bot.symbol, 100.0)
    assert dust > 0 and not bot.position.is_open
    assert r.hget(keys.recon_baseline(bot.name), "BTC") is None  # nothing written before the commit
    real, calls = w._transaction, {"n": 0}

    def lose_the_answer(build, *rest):  # noqa: ANN001, ANN202
        calls["n"] += 1
        real(build, *rest)
        if calls["n"] == 1:
            raise redis.ConnectionError("Connection closed by server.")

    w._transaction = lose_the_answer  # type: ignore[method-assign]
    update = bot.drain(1)
    assert update.dust == [("BTC", dust)]
    with pytest.raises(redis.ConnectionError):
        w.commit([update])
    w.commit([bot.drain(2)])
    assert float(r.hget(keys.recon_baseline(bot.name), "BTC")) == pytest.approx(dust)
    assert keys.snapshot(bot.name).encode() in set(r.keys())


@pytest.mark.parametrize("ran", [0, 1, 2, 3, 4])
def test_deferred_commits_on_a_lost_connection_are_written_once_whichever_of_them_ran(
        ran: int, monkeypatch) -> None:  # noqa: ANN001
    """Four commits sent ahead of their answers (commit(defer=True)); the connection dies after ``ran`` of
    them ran. The next write learns from the last id written which ran, and writes the others once."""
    from state.batch import BatchRunner
    from state.writer import DEFER_MAX

    r = fakeredis.FakeRedis()
    w = StateWriter(r)
    real_post = BatchRunner._post
    calls = {"n": 0}

    class Dead:  # the connection, gone: what was sent on it ran or not, and no answer comes
        def read_response(self) -> None:
            raise redis.ConnectionError("Connection closed by server.")

        def disconnect(self) -> None:
            pass

    def post(self, payload, conn=None):  # noqa: ANN001, ANN202
        calls["n"] += 1
        if calls["n"] <= ran:
            real_post(self, payload)  # it ran (its answer is never read)
        return Dead()

    monkeypatch.setattr(BatchRunner, "_post", post)
    monkeypatch.setattr(r.connection_pool, "release", lambda conn: None)
    for i in range(1, 1 + DEFER_MAX):
        w.commit([], [candle(i)], cursors={"a": i}, defer=True)
    with pytest.raises(redis.ConnectionError):
        w.settle()
    assert w.kept == DEFER_MAX
    monkeypatch.setattr(BatchRunner, "_post", real_post)
    w.commit([], [candle(9)], cursors={"b": 9})
    assert times(r) == [60_000 * i for i in (1, 2, 3, 4, 9)]  # each once, in order
    assert w.load_cursors() == {"a": DEFER_MAX, "b": 9} and w.kept == 0
