"""Where commands go with shards, and how the shards' answers merge, on a real redis-server (the merge
is a Lua script). One shard keeps the single-worker stream and keys."""
from __future__ import annotations

from state import keys
from state import shards
from state.commands import await_result, new_command, post_command
from state.models import AuditRecord, CommandResult
from state.writer import StateWriter


def _len(r, stream: str) -> int:  # type: ignore[no-untyped-def]
    return r.xlen(stream) if r.exists(stream) else 0


def test_one_shard_posts_to_the_single_worker_stream(r) -> None:  # type: ignore[no-untyped-def]
    post_command(r, new_command("emergency_stop", scope="global"))
    post_command(r, new_command("pause", target="any-bot"))
    assert _len(r, keys.COMMANDS) == 2 and not r.keys(keys.COMMANDS + ":shard:*")


def test_a_bots_command_goes_to_its_shard_and_a_kill_switch_to_every_shard(r) -> None:  # type: ignore[no-untyped-def]
    shards.publish(r, {"b0": 0, "b2": 2}, 3)
    post_command(r, new_command("pause", target="b2"))
    assert [_len(r, keys.shard_commands(s)) for s in range(3)] == [0, 0, 1]
    post_command(r, new_command("halt", target="unknown-yet"))  # not published: the hash rule
    assert _len(r, keys.shard_commands(shards.shard_of("unknown-yet", 3))) == 2 - (shards.shard_of("unknown-yet", 3) != 2)
    for cmd in (new_command("emergency_stop", scope="global"), new_command("pause", scope="mode", target="live")):
        before = [_len(r, keys.shard_commands(s)) for s in range(3)]
        post_command(r, cmd)
        assert [_len(r, keys.shard_commands(s)) for s in range(3)] == [n + 1 for n in before]
    assert [row.bots for row in shards.holders(r)] == [["b0"], [], ["b2"]]


def test_the_answer_to_a_fanned_out_command_is_pending_until_every_shard_answered(r) -> None:  # type: ignore[no-untyped-def]
    w = StateWriter(r)
    cmd = new_command("emergency_stop", scope="global")

    def answer(shard: int, status: str, msg: str) -> None:
        stream = keys.shard_commands(shard)
        shards.ensure_group(r, shard)
        entry = r.xadd(stream, cmd.fields()).decode()
        res = CommandResult(nonce=cmd.nonce, entry_id=entry, status=status, message=msg, time=1)  # type: ignore[arg-type]
        w.finish_command(entry, res, AuditRecord(time=1, who="t", command="emergency_stop", target="global",
                                                 result=status, detail=msg), route=shards.route(shard, 3, "global"))

    answer(2, "applied", "closed 1")
    # each shard keeps its own nonce: the shard that applied it would answer a copy as a duplicate, the others not
    assert w.already_applied(cmd.nonce, shards.route(2, 3, "global"))
    assert w.already_applied(cmd.nonce, shards.route(1, 3, "global")) is None
    got = await_result(r, cmd.nonce, 1)
    assert got is not None and got.status == "pending"
    assert got.message == "shard 2: closed 1 | not answered yet by shard 0, 1 (applied there when its worker reads it)"
    answer(0, "pending", "NOT closed yet: x")
    answer(1, "applied", "closed 0")
    got = await_result(r, cmd.nonce, 1)
    assert got.status == "pending" and got.message == "shard 0: NOT closed yet: x | shard 1: closed 0 | shard 2: closed 1"
    r.delete(keys.command_parts(cmd.nonce), keys.command_result(cmd.nonce))
    for s in range(3):
        answer(s, "applied", "ok")
    assert await_result(r, cmd.nonce, 1).status == "applied"  # type: ignore[union-attr]


def test_a_sender_needs_no_right_but_reading_and_xadd(r, redis_server) -> None:  # type: ignore[no-untyped-def]
    """The API runs as a Redis user that may write nothing but XADDs to the command streams."""
    import redis as redis_lib

    r.execute_command("ACL", "SETUSER", "sender", "reset", "on", ">sender-password-0123", "%R~*",
                      f"%W~{keys.COMMANDS}*", "+@read", "+xadd", "+ping")
    sender = redis_lib.Redis(host="127.0.0.1", port=redis_server.port, username="sender",
                             password="sender-password-0123")
    try:
        shards.publish(r, {"b1": 1}, 2)
        post_command(sender, new_command("emergency_stop", scope="global"))
        post_command(sender, new_command("pause", target="b1"))
        assert [_len(r, keys.shard_commands(s)) for s in range(2)] == [1, 2]
    finally:
        r.execute_command("ACL", "DELUSER", "sender")


def test_only_a_dead_workers_shard_is_orphaned(r) -> None:  # type: ignore[no-untyped-def]
    """Taken over: a shard whose lease expired. Not: one never held, one released by a clean stop."""
    import time

    from state.lease import Lease, orphaned

    assert not orphaned(r, 1)  # never held
    lease = Lease(r, 0.3, shard=1)
    lease.acquire()
    assert not orphaned(r, 1)  # held
    lease.release()
    assert not orphaned(r, 1)  # a clean stop: it waits for its worker
    lease.acquire()
    time.sleep(0.5)  # the holder died: its lease expired
    assert orphaned(r, 1)
