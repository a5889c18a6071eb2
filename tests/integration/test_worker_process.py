"""The worker as a real subprocess against a real redis-server: commands, crashes, restarts."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from state import keys
from state.commands import new_command, post_command
from state.models import AuditRecord, TradeRecord
from support import PY, ROOT, fast_config, heartbeat, result_of, snapshots, start_worker, wait_for, write_config


@pytest.fixture
def worker(redis_server, r, tmp_path: Path):
    cfg = write_config(tmp_path / "config.yaml", fast_config(redis_server.url))
    w = start_worker(cfg, tmp_path / "worker.log", r)  # stopped by start_worker if no heartbeat comes
    yield w
    w.stop()


def send(r, cmd: str, scope: str = "bot", target: str = ""):
    command = new_command(cmd, scope, target, user="pytest", reason=f"test {cmd}")
    post_command(r, command)
    return wait_for(lambda: result_of(r, command.nonce), 10, f"the answer to {command.label}")


def trades(r, bot: str) -> list[tuple[bytes, TradeRecord]]:
    return [(i, TradeRecord.model_validate_json(f[b"data"])) for i, f in r.xrange(keys.trades(bot))]


def audit(r) -> list[AuditRecord]:
    return [AuditRecord.model_validate_json(f[b"data"]) for _, f in r.xrange(keys.AUDIT)]


def test_command_round_trip(r, worker):
    res = send(r, "pause", "bot", "paper-mom-btc")
    assert res.status == "applied"
    ctl = {k.decode(): v.decode() for k, v in r.hgetall(keys.control("bot", "paper-mom-btc")).items()}
    assert ctl["state"] == "PAUSED" and ctl["set_by"] == "pytest" and ctl["reason"] == "test pause"
    assert r.xpending(keys.COMMANDS, keys.COMMAND_GROUP)["pending"] == 0
    last = audit(r)[-1]
    assert (last.who, last.command, last.target, last.result) == ("pytest", "pause", "paper-mom-btc", "applied")
    wait_for(lambda: snapshots(r)["paper-mom-btc"].effective_state.value == "PAUSED", 5, "snapshot shows PAUSED")
    # Paused: no entry orders after the pause, while the other bots keep trading.
    seen = r.xlen(keys.orders("paper-mom-btc"))
    at_pause = snapshots(r)["paper-mom-btc"].candles_seen
    wait_for(lambda: snapshots(r)["paper-mom-btc"].candles_seen > at_pause + 40, 20, "40 more candles while paused")
    new = [f for _, f in r.xrange(keys.orders("paper-mom-btc"))][seen:]
    assert all(b'"purpose":"ENTRY"' not in f[b"data"] or b'"status":"REJECTED"' in f[b"data"] for f in new)
    assert send(r, "resume", "bot", "paper-mom-btc").status == "applied"
    assert r.hget(keys.control("bot", "paper-mom-btc"), "state") == b"ACTIVE"


def test_malformed_command_is_rejected_recorded_and_worker_keeps_running(r, worker):
    r.xadd(keys.COMMANDS, {"cmd": "explode", "nonce": "bad-nonce-123", "ts": "x"})
    r.xadd(keys.COMMANDS, {"garbage": "\x00\xff"})
    wait_for(lambda: r.xlen(keys.REJECTS) >= 2, 10, "two rejects recorded")
    # the reject record is written before the answer's transaction (audit, result, XACK): wait for both
    rejected = wait_for(lambda: (x := [a for a in audit(r) if a.result == "rejected"]) and len(x) >= 2 and x, 10,
                        "two rejected commands audited")
    assert len(rejected) == 2
    assert "cmd" in rejected[0].detail  # names the field
    answer = result_of(r, "bad-nonce-123")
    assert answer is not None and answer.status == "rejected"
    assert r.xpending(keys.COMMANDS, keys.COMMAND_GROUP)["pending"] == 0
    # Still alive and still obeying.
    assert worker.alive()
    assert send(r, "pause", "mode", "ghost").status == "applied"
    unknown = send(r, "pause", "bot", "no-such-bot")
    assert unknown.status == "rejected" and "no-such-bot" in unknown.message
    assert worker.alive() and heartbeat(r) is not None


def test_same_command_twice_is_applied_once(r, worker):
    command = new_command("flatten", "bot", "paper-mom-btc", user="pytest")
    post_command(r, command)
    wait_for(lambda: result_of(r, command.nonce), 10, "first answer")
    orders_after_first = r.xlen(keys.orders("paper-mom-btc"))
    post_command(r, command)  # a retried post: same nonce
    wait_for(lambda: r.xpending(keys.COMMANDS, keys.COMMAND_GROUP)["pending"] == 0 and len(audit(r)) >= 2, 10,
             "second answer")
    assert [a.result for a in audit(r)][-2:] == ["applied", "duplicate"]
    assert r.xlen(keys.orders("paper-mom-btc")) >= orders_after_first


def test_sigkill_and_restart_keep_states_and_trades(r, worker, redis_server, tmp_path):
    wait_for(lambda: sum(r.xlen(keys.trades(b)) for b in ("paper-mom-btc", "paper-sma-eth")) >= 3, 60,
             "three paper trades")
    assert send(r, "pause", "bot", "paper-sma-eth").status == "applied"
    assert send(r, "pause", "mode", "ghost").status == "applied"
    worker.kill9()
    before = {b: trades(r, b) for b in ("paper-mom-btc", "paper-sma-eth", "ghost-mom-btc")}
    snaps_before = snapshots(r)
    for b, ts in before.items():  # committed atomically: snapshot count == stream length
        assert snaps_before[b].trade_count == len(ts), b

    again = start_worker(worker.config, tmp_path / "worker2.log", r)
    try:
        wait_for(lambda: snapshots(r)["paper-mom-btc"].candles_seen > snaps_before["paper-mom-btc"].candles_seen + 20,
                 30, "the restarted worker trading on")
        assert r.hget(keys.control("bot", "paper-sma-eth"), "state") == b"PAUSED"
        assert r.hget(keys.control("mode", "ghost"), "state") == b"PAUSED"
        snaps = snapshots(r)
        assert snaps["paper-sma-eth"].effective_state.value == "PAUSED"
        assert snaps["ghost-mom-btc"].effective_state.value == "PAUSED"
        for b, old in before.items():
            now = trades(r, b)
            assert now[: len(old)] == old, f"{b}: trade history changed across the restart"
            assert snaps[b].trade_count == len(now)
            assert snaps[b].trade_count >= snaps_before[b].trade_count
        # Continuity: the restarted bot continued from its stored balances, not from scratch.
        assert snaps["paper-mom-btc"].starting_balance == snaps_before["paper-mom-btc"].starting_balance
        assert snaps["paper-sma-eth"].realized_pnl == pytest.approx(snaps_before["paper-sma-eth"].realized_pnl)
        # Candle history strictly increasing across the restart.
        times = [int(row.split(b'"t":')[1].split(b",")[0]) for row in r.lrange(keys.candles("BTCUSDT"), 0, -1)]
        assert times == sorted(set(times))
    finally:
        again.stop()


def test_emergency_stop_flattens_and_pauses_everything_then_resume(r, worker):
    wait_for(lambda: any(s.position for s in snapshots(r).values() if s.mode == "paper"), 60, "an open paper position")
    res = send(r, "emergency_stop", "global")
    assert res.status == "applied" and "EMERGENCY STOP" in res.message
    snaps = snapshots(r)
    assert all(s.effective_state.value == "PAUSED" for s in snaps.values())
    assert all(s.position is None for s in snaps.values() if s.mode == "paper")
    assert r.hget(keys.control("global"), "state") == b"PAUSED"
    assert send(r, "resume_all", "global").status == "applied"
    assert all(s.effective_state.value == "ACTIVE" for s in snapshots(r).values())
    wait_for(lambda: any(s.position for s in snapshots(r).values() if s.mode == "paper"), 60, "trading again")


def test_bad_config_exits_non_zero_before_touching_redis(r, redis_server, tmp_path):
    cfg = fast_config(redis_server.url)
    cfg["bots"][1]["params"] = {"window": 1, "threshold_pct": 0.05}
    path = write_config(tmp_path / "bad.yaml", cfg)
    proc = subprocess.run([PY, str(ROOT / "bot_manager.py"), "run"], cwd=ROOT, capture_output=True, text=True,
                          env={**__import__("os").environ, "BOT_CONFIG": str(path)}, timeout=60)
    assert proc.returncode == 2
    assert "bots.1" in proc.stderr and "window" in proc.stderr
    assert r.dbsize() == 0
