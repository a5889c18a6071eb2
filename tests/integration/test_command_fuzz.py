"""No command entry, however malformed, can stall the command reader: hundreds of random entries
(bytes that are not UTF-8, unknown limits, bad blackout hours, NaN, huge or missing fields, unknown
commands and scopes, valid commands for unknown bots) are each answered and acknowledged, and an
emergency stop posted behind them is applied. A real worker process and a real redis-server.

Before the command table caught every failure, one `set_limit` with an unknown limit name stayed
pending, was re-read first forever, and nothing after it (the emergency stop included) was applied."""
from __future__ import annotations

import time
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from state import keys
from state.commands import new_command
from support import fast_config, result_of, snapshots, start_worker, wait_for, write_config

CMDS = ["pause", "flatten", "resume", "reduce_only", "halt", "set_limit", "upsert_dca_bot", "adopt", "ignore_drift",
        "backtest", "emergency_stop", "resume_all", "signal", "", "drop_tables", "set_limit\x00"]
NASTY = st.one_of(
    st.binary(min_size=1, max_size=40).map(lambda b: b + b"\xff\xfe"),       # never valid UTF-8
    st.text(max_size=40), st.sampled_from(["nan", "inf", "-1", "1e400", "25,2", "22", "a,b", "", "null"]),
    st.just("x" * 10_000), st.integers().map(str),
)


def entry() -> st.SearchStrategy[dict[bytes | str, bytes | str]]:
    fields = st.fixed_dictionaries(
        {"cmd": st.sampled_from(CMDS)},
        optional={
            "scope": st.one_of(st.sampled_from(["bot", "mode", "global", "galaxy"]), NASTY),
            "target": st.one_of(st.sampled_from(["paper-mom-btc", "nope", "paper", ""]), NASTY),
            "nonce": st.one_of(st.uuids().map(lambda u: u.hex), NASTY),
            "user": NASTY, "ts": st.one_of(st.integers(min_value=-5, max_value=2**70).map(str), NASTY),
            "limit": st.one_of(st.sampled_from(["max_position_value", "blackout_hours_utc", "max_positon_value",
                                                 "fee_pct", "symbol_whitelist"]), NASTY),
            "value": NASTY, "payload": NASTY, "reason": NASTY,
        })
    return st.one_of(fields, st.dictionaries(NASTY, NASTY, min_size=1, max_size=4))


@pytest.fixture(scope="module")
def worker(redis_server, tmp_path_factory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("fuzz")
    r = redis_server.client()
    r.flushall()
    cfg = write_config(tmp / "config.yaml", fast_config(redis_server.url))
    w = start_worker(cfg, tmp / "worker.log", r)
    yield r, w
    w.stop()


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(entries=st.lists(entry(), min_size=150, max_size=250))
def test_random_entries_never_stall_the_reader_and_the_emergency_stop_behind_them_applies(worker, entries) -> None:  # type: ignore[no-untyped-def]
    r, w = worker
    for fields in entries:
        r.xadd(keys.COMMANDS, fields)
    stop = new_command("emergency_stop", "global", user="fuzz", reason=f"behind {len(entries)} bad entries")
    r.xadd(keys.COMMANDS, stop.fields())
    wait_for(lambda: result_of(r, stop.nonce) is not None, 60, "the emergency stop's answer")
    res = result_of(r, stop.nonce)
    assert res is not None and res.status == "applied", res
    assert r.hget(keys.control("global"), "state") == b"PAUSED"
    # every entry before it was answered and acknowledged: nothing stays pending for the reader
    pending = r.xpending(keys.COMMANDS, keys.COMMAND_GROUP)
    assert pending["pending"] == 0, pending
    assert w.alive(), w.log()[-3000:]
    # back to ACTIVE for the next example
    resume = new_command("resume_all", "global", user="fuzz")
    r.xadd(keys.COMMANDS, resume.fields())
    wait_for(lambda: result_of(r, resume.nonce) is not None, 30, "resume all")


def test_a_set_limit_typo_and_nan_are_rejected_with_their_reasons_and_change_nothing(worker) -> None:  # type: ignore[no-untyped-def]
    r, w = worker
    bot = "paper-mom-btc"
    before = snapshots(r)[bot].risk.limits["max_position_value"]
    posted = []
    for limit, value in (("max_positon_value", "10"), ("max_position_value", "nan"), ("blackout_hours_utc", "25,2")):
        nonce = uuid.uuid4().hex
        r.xadd(keys.COMMANDS, {"cmd": "set_limit", "scope": "bot", "target": bot, "nonce": nonce, "user": "t",
                               "ts": str(int(time.time() * 1000)), "limit": limit, "value": value})
        posted.append(nonce)
    for nonce in posted:
        wait_for(lambda n=nonce: result_of(r, n) is not None, 30, "an answer")
        res = result_of(r, nonce)
        assert res is not None and res.status == "rejected" and "set_limit" in res.message, res
    assert snapshots(r)[bot].risk.limits["max_position_value"] == before
    assert not r.hgetall(keys.limits(bot))  # nothing stored to come back after a restart
