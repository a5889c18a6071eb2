"""The notifier as a real process (`python -m notify`) over a real redis-server, sending through
apprise's JSON target to a real local HTTP sink: thresholds, de-duplication of a flapping rule,
retries of a dead target, no loss and no repeat across restarts, the worker-down alert, masked logs."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import redis

from reach_support import Proc, start_notifier
from standins import HttpSink
from state import keys
from state.events import order_refused, publish_event, risk_breach, stale_data, trade_opened
from state.notifier_store import read_notifier_status
from support import RedisServer, fast_config, start_worker, wait_for, write_config

TOKEN = "hooktoken0123456789"  # stands for a token inside a target URL: it must never be logged


@pytest.fixture
def env(tmp_path: Path):
    server = RedisServer(tmp_path / "redis")
    sink = HttpSink()
    procs: list[Proc] = []
    try:
        yield server, sink, write_config(tmp_path / "config.yaml", fast_config(server.url)), procs, tmp_path
    finally:
        for p in procs:
            p.stop()
        sink.close()
        server.close()


def titles(sink: HttpSink) -> list[str]:
    return [m["title"] for m in sink.messages()]


def status_of(r: redis.Redis):  # noqa: ANN201
    return read_notifier_status(r)


def notifier(config: Path, log: Path, urls: str, procs: list[Proc], **extra: str) -> Proc:
    p = start_notifier(config, log, {"BOT_NOTIFY_URLS": urls, **extra})
    procs.append(p)
    return p


def test_events_reach_each_target_by_its_threshold(env) -> None:  # noqa: ANN001
    server, sink, cfg, procs, tmp = env
    r = server.client()
    n = notifier(cfg, tmp / "notify.log", f"{sink.url('all-' + TOKEN)} critical={sink.url('pager')}", procs)
    wait_for(lambda: status_of(r) is not None, 20, "the notifier's status")
    publish_event(r, trade_opened("b1", "BTCUSDT", "BUY", 0.1, 50000.0))
    publish_event(r, risk_breach("b1", "max_drawdown", "HALTED", "drawdown 5.2% >= 5%"))
    wait_for(lambda: len(sink.messages()) >= 3, 45, "three deliveries")
    by_path = {}
    for path, m in zip(sink.paths, sink.messages()):
        by_path.setdefault(path, []).append(m["title"])
    # sorted: a critical event queued beside an older one goes first (notify.targets: a breach never waits
    # behind trade news), which is the order a loaded machine delivers them in
    assert sorted(by_path[f"/all-{TOKEN}"]) == ["[CRITICAL] b1: risk limit max_drawdown breached -> HALTED",
                                                "[INFO] b1: opened BUY 0.1 BTCUSDT @ 50000"]
    assert by_path["/pager"] == ["[CRITICAL] b1: risk limit max_drawdown breached -> HALTED"]
    breach = next(m for m in sink.messages() if "max_drawdown" in m["title"])
    assert breach["type"] == "failure" and breach["message"].startswith("drawdown 5.2% >= 5%\nrisk_breach · ")
    want = [("#1 json", "info", "ok", 2), ("#2 json", "critical", "ok", 1)]
    st = wait_for(lambda: (s := status_of(r)) and [(t.label, t.min_severity, t.state, t.events)
                                                   for t in s.targets] == want and s, 5, "the status (written each s)")
    assert TOKEN not in json.dumps(st.model_dump())
    assert n.alive() and TOKEN not in n.log()


def test_a_flapping_rule_sends_two_messages_not_a_thousand(env) -> None:  # noqa: ANN001
    server, sink, cfg, procs, tmp = env
    r = server.client()
    notifier(cfg, tmp / "notify.log", sink.url(), procs, BOT_NOTIFY_DEDUPE_WINDOW_S="5")
    wait_for(lambda: status_of(r) is not None, 20, "the notifier's status")
    pipe = r.pipeline(transaction=False)
    for i in range(1000):
        event = order_refused("b1", "max_position_pct", f"position value {i} > 200")
        publish_event(pipe, event)  # type: ignore[arg-type]
    pipe.execute()
    wait_for(lambda: any("repeated" in t for t in titles(sink)), 20, "the summary")
    assert titles(sink) == ["[WARNING] b1: entry refused by risk rule max_position_pct",
                            "[WARNING] b1: entry refused by risk rule max_position_pct (repeated 999 more times in "
                            "5 s)"]
    assert sink.messages()[1]["message"].startswith("position value 999 > 200")
    wait_for(lambda: status_of(r).suppressed == 999 and r.xpending(keys.EVENTS, keys.NOTIFIER_GROUP)["pending"] == 0,
             10, "every event acknowledged")


def test_a_dead_target_is_retried_and_the_others_are_not_held_back(env) -> None:  # noqa: ANN001
    server, sink, cfg, procs, tmp = env
    r = server.client()
    dead = HttpSink()
    try:
        dead.fail = 3  # three failed attempts (backoff 1 s, 2 s, 4 s), then it answers
        n = notifier(cfg, tmp / "notify.log", f"{dead.url('down-' + TOKEN)} {sink.url()}", procs)
        wait_for(lambda: status_of(r) is not None, 20, "the notifier's status")
        publish_event(r, stale_data("BTCUSDT", 42.0))
        wait_for(lambda: len(sink.messages()) == 1, 5, "the healthy target's message")
        retrying = wait_for(lambda: (s := status_of(r)) and s.targets[0].state == "retrying" and s, 5,
                            "the dead target shown as retrying")
        assert retrying.targets[0].failures >= 1 and retrying.targets[0].next_retry > 0
        publish_event(r, stale_data("ETHUSDT", 50.0))  # queued behind the failing one
        wait_for(lambda: len(dead.messages()) >= 1, 20, "the dead target, back, gets what it missed")
        assert dead.failed == 3
        # what queued up while it was down comes as one digest
        (digest,) = dead.messages()
        assert digest["title"].startswith("[WARNING] 2 events (")
        assert digest["message"].splitlines() == ["• [WARNING] BTCUSDT: no market data for 42 s",
                                                  "• [WARNING] ETHUSDT: no market data for 50 s"]
        wait_for(lambda: status_of(r).targets[0].state == "ok", 5, "the target back to ok")
        log = n.log()
        assert "send failed (attempt 1" in log and TOKEN not in log
    finally:
        dead.close()


def test_a_restart_loses_nothing_and_repeats_nothing(env) -> None:  # noqa: ANN001
    server, sink, cfg, procs, tmp = env
    r = server.client()
    slow = HttpSink()
    try:
        slow.fail = 10_000  # the second target is down for now
        urls = f"{sink.url()} {slow.url('slow')}"
        first = notifier(cfg, tmp / "notify1.log", urls, procs, BOT_NOTIFY_DEDUPE_WINDOW_S="0")
        wait_for(lambda: status_of(r) is not None, 20, "the notifier's status")
        for i in range(3):
            publish_event(r, stale_data(f"SYM{i}", 30.0 + i))
        wait_for(lambda: len(sink.messages()) >= 1 and sum(int(t.events) for t in status_of(r).targets) >= 3, 10,
                 "the first target has all three")
        first.kill9()  # a crash: the second target never got them, the events are unacknowledged
        assert r.xpending(keys.EVENTS, keys.NOTIFIER_GROUP)["pending"] == 3
        publish_event(r, stale_data("SYM3", 33.0))  # published while the notifier is down
        slow.fail = 0
        notifier(cfg, tmp / "notify2.log", urls, procs, BOT_NOTIFY_DEDUPE_WINDOW_S="0")
        wait_for(lambda: r.xpending(keys.EVENTS, keys.NOTIFIER_GROUP)["pending"] == 0
                 and r.xlen(keys.EVENTS) == 4 and len(_lines(slow)) == 4, 20, "every event delivered everywhere")
        assert Counter(_lines(sink)) == Counter(f"SYM{i}: no market data for {30 + i} s" for i in range(4))
        assert Counter(_lines(slow)) == Counter(f"SYM{i}: no market data for {30 + i} s" for i in range(4))
        assert not [f for f in r.hkeys(keys.NOTIFIER) if f.startswith(b"sent:")]  # nothing left in flight
    finally:
        slow.close()


def _lines(sink: HttpSink) -> list[str]:
    """Each event's title, whether it came alone or in a digest."""
    out = []
    for m in sink.messages():
        if " events (" in m["title"]:
            out += [ln.split("] ", 1)[1] for ln in m["message"].splitlines()]
        else:
            out.append(m["title"].split("] ", 1)[1])
    return out


def test_the_worker_dying_is_told(env) -> None:  # noqa: ANN001
    server, sink, cfg, procs, tmp = env
    r = server.client()
    worker = start_worker(cfg, tmp / "worker.log", r)
    try:
        notifier(cfg, tmp / "notify.log", f"critical={sink.url()}", procs)
        wait_for(lambda: (s := status_of(r)) is not None and s.worker == "up", 20, "the notifier seeing the worker")
        worker.kill9()
        wait_for(lambda: sink.messages(), 15, "the worker-down alert")
        assert sink.messages()[0]["title"] == "[CRITICAL] WORKER DOWN: no heartbeat"
        assert status_of(r).worker == "down"
    finally:
        worker.stop()
