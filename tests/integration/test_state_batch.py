"""state/batch.py against a real redis-server: the one-script write and the general WATCH + MULTI/EXEC
write leave the same data; a moved fence writes nothing; a refused command does not stop the others;
the script comes back after Redis forgot it (SCRIPT FLUSH, as after a restart)."""
from __future__ import annotations

import pytest
import redis

from state.batch import SCRIPT_ARGS_MAX, Batch, BatchRunner
from state.lease import LeaseLost


def queue(b: Batch) -> None:
    b.set("snap:a", '{"x": 1}')
    b.set("res:a", "done", ex=60)
    b.hset("h", mapping={"f1": "1", "f2": 2.5})
    b.hincrby("counts", "k", 3)
    b.hincrbyfloat("base", "BTC", 0.25)
    b.rpush("candles", "c1", "c2", "c3")
    b.ltrim("candles", -2, -1)
    b.xadd("events", {"data": "é ünïcode"}, maxlen=5, approximate=True)
    b.sadd("set", "m")
    b.delete("gone")


def dump(r: redis.Redis) -> dict[str, object]:
    ev = r.xrange("events")
    return {"snap": r.get("snap:a"), "ttl": 0 < r.ttl("res:a") <= 60, "h": r.hgetall("h"), "counts": r.hget("counts", "k"),
            "base": float(r.hget("base", "BTC")), "candles": r.lrange("candles", 0, -1),
            "events": [f for _, f in ev], "set": r.smembers("set"), "gone": r.exists("gone")}


def test_the_script_writes_what_the_general_way_writes(r: redis.Redis) -> None:
    runner = BatchRunner(r)
    r.set("gone", 1)
    b = Batch()
    queue(b)
    assert b.scripted()
    runner.execute(b, {})
    one = dump(r)
    r.flushall()
    r.set("gone", 1)
    runner._watched(b, {})
    assert dump(r) == one
    assert one["candles"] == [b"c2", b"c3"] and one["events"] == [{b"data": "é ünïcode".encode()}]


def test_a_moved_fence_writes_nothing(r: redis.Redis) -> None:
    runner = BatchRunner(r)
    r.set("fence:0", 7)
    r.set("fence:1", 9)
    b = Batch()
    queue(b)
    runner.execute(b, {"fence:0": 7, "fence:1": 9})
    assert r.get("snap:a") == b'{"x": 1}'
    r.flushall()
    r.set("fence:0", 7)
    r.set("fence:1", 10)  # shard 1 was taken over
    with pytest.raises(LeaseLost, match="fence:1 holds 10, not 9"):
        runner.execute(b, {"fence:0": 7, "fence:1": 9})
    r.delete("fence:1")  # or its fence is gone
    with pytest.raises(LeaseLost):
        runner.execute(b, {"fence:0": 7, "fence:1": 9})
    assert set(r.keys()) == {b"fence:0"}


def test_a_refused_command_does_not_stop_the_others_and_is_raised(r: redis.Redis) -> None:
    r.set("str", "x")
    b = Batch()
    b.set("before", 1)
    b.hset("str", "f", "v")  # WRONGTYPE
    b.set("after", 2)
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        BatchRunner(r).execute(b, {})
    assert (r.get("before"), r.get("after")) == (b"1", b"2")  # as MULTI/EXEC would


def test_a_record_append_in_the_short_form_is_refused_and_raised_the_same(r: redis.Redis) -> None:
    """A record append goes to the script in its short form ("x", key, maxlen, field, value); one Redis
    refuses is raised, and the appends around it are written, trimmed as asked."""
    r.set("str", "x")
    b = Batch()
    for i in range(30):
        b.xadd("recs", {"data": f"r{i}"}, maxlen=5, approximate=False if i == 0 else True)
    b.xadd("str", {"data": "no"}, maxlen=5, approximate=True)  # WRONGTYPE
    b.xadd("recs2", {b"data": b"\x00bytes"}, maxlen=1000, approximate=True)
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        BatchRunner(r).execute(b, {})
    got = [f[b"data"] for _, f in r.xrange("recs")]
    assert got[-1] == b"r29" and 5 <= len(got) <= 30 and got == [b"r%d" % i for i in range(30 - len(got), 30)]
    assert [f for _, f in r.xrange("recs2")] == [{b"data": b"\x00bytes"}]


def test_the_script_comes_back_after_redis_forgot_it(r: redis.Redis) -> None:
    runner = BatchRunner(r)
    b = Batch()
    b.set("k", 1)
    runner.execute(b, {})
    r.script_flush()
    b2 = Batch()
    b2.set("k", 2)
    runner.execute(b2, {})
    assert r.get("k") == b"2"


def test_a_command_too_long_for_lua_and_a_script_of_its_own_go_the_general_way(r: redis.Redis) -> None:
    r.set("fence:0", 3)
    b = Batch()
    b.hset("cursors", mapping={f"bot{i}": i for i in range(SCRIPT_ARGS_MAX)})
    assert not b.scripted()
    BatchRunner(r).execute(b, {"fence:0": 3})
    assert r.hlen("cursors") == SCRIPT_ARGS_MAX
    b = Batch()
    b.eval("return redis.call('SET', KEYS[1], ARGV[1])", 1, "k", "v")
    assert not b.scripted()
    with pytest.raises(LeaseLost):
        BatchRunner(r).execute(b, {"fence:0": 4})
    assert r.get("k") is None
    BatchRunner(r).execute(b, {"fence:0": 3})
    assert r.get("k") == b"v"


def test_text_is_encoded_with_the_clients_policy_as_redis_py_would(redis_server) -> None:  # type: ignore[no-untyped-def]
    """The writer packs arguments itself: text that is not valid UTF-8 (a lone surrogate) is replaced as the
    project's client (state/connection.py, errors='replace') has redis-py do, not refused."""
    from state.connection import connect

    r = connect(redis_server.url)
    r.flushall()
    b = Batch()
    b.set("t", "ok \ud800 end")
    BatchRunner(r).execute(b, {})
    script_way = r.get("t")
    r.delete("t")
    BatchRunner(r)._watched(b, {})
    assert script_way == r.get("t") == "ok ? end"


def test_every_kind_of_argument_is_packed_as_redis_py_packs_it(r: redis.Redis) -> None:
    """The one-pass packer (BatchRunner._pack) against redis-py's own path: text, bytes, ints, floats,
    a value past the packer's table of headers (4096 bytes) and one of several hundred KB."""
    values = ["", "é", b"\x00\xff", 0, -7, 2**70, 1.5, -0.0, 1e300, float("inf"),
              "x" * 4095, "y" * 4096, b"z" * 300_000]
    b = Batch()
    for i, v in enumerate(values):
        b.set(f"v:{i}", v)
    b.hset("hv", mapping={f"f{i}": v for i, v in enumerate(values)})
    b.xadd("sv", {f"f{i}": v for i, v in enumerate(values)}, maxlen=10)
    BatchRunner(r).execute(b, {})
    def written() -> tuple[object, ...]:
        return [r.get(f"v:{i}") for i in range(len(values))], r.hgetall("hv"), [f for _, f in r.xrange("sv")]

    script_way = written()
    r.flushall()
    BatchRunner(r)._watched(b, {})
    assert script_way == written()
    assert script_way[0][11] == b"y" * 4096 and len(script_way[0][12]) == 300_000 and script_way[0][6] == b"1.5"
