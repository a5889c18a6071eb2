"""Redis locked down as `make run` sets it up (ops.redis_acl), on a real redis-server with a real
worker: the worker signs in as ``worker`` and trades and answers commands; the dashboard's connection
reads state and posts a command, and cannot SET, DEL, FLUSHALL, write a control key or the audit (each
refused by Redis and in its ACL LOG; nothing changed); a connection without a password gets nothing.
The passwords live in a 0600 file outside the repository; the ACL file holds only their hashes."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from ops.redis_acl import passwords, url_for, write_acl
from ops.redis_server import free_port, start_redis, stop
from state import auth_store, golive_store, keys
from state.commands import new_command, post_command
from state.events import read_audit
from state.reader import StateReader
from support import ROOT, fast_config, result_of, start_worker, wait_for, write_config

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def locked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("BOT_SECRETS_DIR", str(tmp_path / "secrets"))
    pw = passwords()
    acl = write_acl(pw)
    port = free_port()
    proc = start_redis(port, tmp_path / "data", "everysec", tmp_path / "redis.log", acl, ("worker", pw["worker"]))
    base = f"redis://127.0.0.1:{port}/0"
    yield base, pw, acl
    stop(proc)


def client(base: str, pw: dict[str, str], user: str) -> redis.Redis:
    return redis.Redis.from_url(url_for(base, user, pw[user]), decode_responses=True)


def test_passwords_are_private_and_the_acl_file_holds_only_hashes(locked) -> None:
    base, pw, acl = locked
    for f in (acl, acl.with_name("redis-users.json")):
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
    text = acl.read_text()
    assert all(p not in text for p in pw.values())
    assert "user default off" in text
    assert passwords() == pw  # kept, not regenerated


def test_the_dashboard_connection_reads_and_posts_but_cannot_write_state(locked, tmp_path: Path) -> None:
    base, pw, _ = locked
    worker_r = client(base, pw, "worker")
    dash = client(base, pw, "dashboard")
    cfg = write_config(tmp_path / "config.yaml", fast_config("redis://127.0.0.1:1/0"))  # the URL comes from the env
    w = start_worker(cfg, tmp_path / "w.log", dash, {"BOT_REDIS__URL": url_for(base, "worker", pw["worker"])})
    try:
        reader = StateReader(dash)
        wait_for(lambda: reader.snapshots().get("paper-mom-btc") is not None, 30, "a snapshot, read as the dashboard")
        assert reader.heartbeat() is not None and reader.bots()
        assert golive_store.load(dash, "paper-mom-btc") is None and auth_store.read(dash, "x").failures == 0
        read_audit(dash, limit=5)

        # the one write it has: a command onto the stream, applied by the worker
        cmd = new_command("pause", "bot", "paper-mom-btc", user="dashboard:alice", reason="acl test")
        post_command(dash, cmd)
        res = wait_for(lambda: result_of(dash, cmd.nonce), 20, "the worker's answer")
        assert res.status == "applied"
        # with several shards, a bot's command goes to its shard's stream (state/shards.py): allowed too
        assert dash.xadd(keys.shard_commands(2), {"cmd": "pause"})
        worker_r.delete(keys.shard_commands(2))

        before = {k: worker_r.type(k) for k in worker_r.scan_iter(count=1000)}
        control = worker_r.hgetall(keys.control("bot", "paper-mom-btc"))
        attempts = {
            "SET": lambda: dash.set(keys.control("bot", "paper-mom-btc"), "x"),
            "HSET control": lambda: dash.hset(keys.control("bot", "paper-mom-btc"), "state", "ACTIVE"),
            "DEL": lambda: dash.delete(keys.BOTS),
            "FLUSHALL": lambda: dash.flushall(),
            "FLUSHDB": lambda: dash.flushdb(),
            "XADD audit": lambda: dash.xadd(keys.AUDIT, {"who": "forged"}),
            "XADD events": lambda: dash.xadd(keys.EVENTS, {"kind": "forged"}),
            "EVAL": lambda: dash.eval("return redis.call('SET', KEYS[1], 'x')", 1, keys.BOTS),
            "CONFIG SET": lambda: dash.config_set("appendonly", "no"),
        }
        for name, attempt in attempts.items():
            with pytest.raises(redis.exceptions.NoPermissionError):
                attempt()
        assert worker_r.hgetall(keys.control("bot", "paper-mom-btc")) == control
        after = {k: worker_r.type(k) for k in worker_r.scan_iter(count=1000)}
        assert set(before) <= set(after)  # nothing deleted
        denied = worker_r.acl_log()
        users = {(e["username"], e["object"]) for e in denied}
        assert ("dashboard", "set") in users and ("dashboard", "flushall") in users

        # the worker cannot flush either; a connection without a password gets nothing
        with pytest.raises(redis.exceptions.NoPermissionError):
            worker_r.flushall()
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis.from_url(base).get(keys.BOTS)
        # the notifier writes only its own key
        notifier = client(base, pw, "notifier")
        notifier.hset(keys.NOTIFIER, "status", "{}")
        got = notifier.xreadgroup(keys.NOTIFIER_GROUP, "acl-test", {keys.EVENTS: ">"}, count=1)
        for _stream, entries in (got.items() if isinstance(got, dict) else got):
            for entry_id, _fields in entries:
                notifier.xack(keys.EVENTS, keys.NOTIFIER_GROUP, entry_id)
        with pytest.raises(redis.exceptions.NoPermissionError):
            notifier.xadd(keys.AUDIT, {"who": "forged"})
        with pytest.raises(redis.exceptions.NoPermissionError):
            notifier.hset(keys.control("global"), "state", "ACTIVE")
        # the shell's kill switch finds make run's passwords and signs in as the dashboard user
        out = subprocess.run([sys.executable, str(ROOT / "bot_manager.py"), "send", "flatten", "--bot",
                              "paper-mom-btc", "--redis-url", base], capture_output=True, text=True, timeout=60,
                             env=os.environ.copy())
        assert out.returncode == 0, out.stderr
        nonce = out.stdout.split("nonce ")[1].rstrip(")\n")
        assert wait_for(lambda: result_of(dash, nonce), 20, "the answer to the CLI's flatten").status == "applied"
        assert w.alive()
    finally:
        w.stop()
    assert "Traceback" not in w.log() and "NOPERM" not in w.log(), w.log()[-3000:]
