"""Backup and restore through the real CLI: a worker trades (an open position, a paused bot, closed
trades), the archive is made, restored into a fresh redis-server, and a worker started there continues
with the same positions, states and P&L. Corrupt, foreign and truncated archives, a busy target and a
non-empty one are refused with a clear message, before anything is written."""
from __future__ import annotations

import gzip
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from records.store import RecordStore
from state import keys
from state.commands import new_command, post_command
from support import PY, ROOT, RedisServer, fast_config, result_of, snapshots, start_worker, wait_for, write_config
from test_records_archiver import ArchiverProcess

BOT = "paper-mom-btc"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([PY, str(ROOT / "bot_manager.py"), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def state_of(r) -> dict[str, tuple]:
    """What must survive: each bot's position, control state, realized P&L, trade count and fees."""
    out = {}
    for name, s in snapshots(r).items():
        pos = tuple((p.symbol, p.side, round(p.quantity, 12), round(p.avg_entry, 8)) for p in s.open_positions)
        out[name] = (pos, s.control.state.value, round(s.realized_pnl, 8), s.trade_count, round(s.fees_paid, 8),
                     len(s.open_signals))
    return out


@pytest.fixture
def traded(redis_server, r, tmp_path):
    """A worker that traded and was stopped with an open position and a paused bot; its records archived."""
    cfg = write_config(tmp_path / "config.yaml", fast_config(redis_server.url))
    worker = start_worker(cfg, tmp_path / "worker.log", r)
    archiver = ArchiverProcess(redis_server.url, tmp_path / "records", tmp_path / "archiver.log").start()
    try:
        wait_for(lambda: (s := snapshots(r).get(BOT)) and s.trade_count >= 2 and s.position is not None, 90,
                 f"{BOT} with trades and an open position")
        command = new_command("pause", "bot", "paper-sma-eth", user="pytest", reason="backup test")
        post_command(r, command)
        wait_for(lambda: result_of(r, command.nonce), 10, "the pause")
        wait_for(lambda: (s := snapshots(r).get(BOT)) and s.position is not None, 60, "an open position again")
    finally:
        worker.stop()
    wait_for(lambda: RecordStore(tmp_path / "records").manifest().rows() > 100, 30, "archived records")
    archiver.stop()
    return cfg, tmp_path


def test_restore_into_a_fresh_redis_and_the_worker_continues(redis_server, r, traded, tmp_path_factory):
    cfg, tmp = traded
    before = state_of(r)
    assert before[BOT][0] and before["paper-sma-eth"][1] == "PAUSED"
    opened = snapshots(r)[BOT].position.opened_at
    (tmp / "var").mkdir()
    (tmp / "var" / "exchange-state.json").write_text('{"stand-in": "the local exchange state file"}')
    archive = tmp / "backup.tar.gz"
    made = cli("backup", "--out", str(archive), "--redis-url", redis_server.url, "--dir", str(tmp / "records"),
               "--config", str(cfg), "--exchange-state", str(tmp / "var" / "exchange-state.json"))
    assert made.returncode == 0, made.stderr
    assert "archived records" in made.stdout and "the exchange state" in made.stdout
    fresh = RedisServer(tmp_path_factory.mktemp("fresh-redis"))
    try:
        r2 = fresh.client()
        restored = cli("restore", str(archive), "--redis-url", fresh.url, "--dir", str(tmp / "restored-records"),
                       "--exchange-state", str(tmp / "var2" / "exchange-state.json"),
                       "--config-out", str(tmp / "var2" / "config.yaml"))
        assert restored.returncode == 0, restored.stderr
        assert "every checksum matches" in restored.stdout
        assert state_of(r2) == before  # same positions, states, P&L, trades, fees
        assert r2.xlen(keys.trades(BOT)) == r.xlen(keys.trades(BOT))
        assert not r2.exists(keys.HEARTBEAT) and not r2.exists(keys.LEASE)  # no phantom worker
        assert (tmp / "var2" / "config.yaml").read_bytes() == cfg.read_bytes()
        assert json.loads((tmp / "var2" / "exchange-state.json").read_text())["stand-in"]
        orig, back = RecordStore(tmp / "records"), RecordStore(tmp / "restored-records")
        assert back.manifest().rows() == orig.manifest().rows()
        assert back.read("trades").equals(orig.read("trades"))
        # the worker on the restored Redis carries on from there
        cfg2 = write_config(tmp / "config2.yaml", {**fast_config(fresh.url)})
        worker = start_worker(cfg2, tmp / "worker2.log", r2)
        try:
            first = state_of(r2)
            assert first[BOT][0] == before[BOT][0], "the open position came back as it was"
            assert first["paper-sma-eth"][1] == "PAUSED", "a paused bot stays paused"
            assert first[BOT][2] == before[BOT][2] and first[BOT][3] == before[BOT][3]
            wait_for(lambda: snapshots(r2)[BOT].trade_count > before[BOT][3], 90, "a trade after the restore")
            # the first trade after the restore closes the position held before the backup
            nxt = r2.xrange(keys.trades(BOT), count=before[BOT][3] + 1)[-1][1][b"data"]
            assert json.loads(nxt)["entry_time"] == opened
        finally:
            worker.stop()
    finally:
        fresh.close()


def _refused(archive: Path, url: str, tmp: Path) -> str:
    res = cli("restore", str(archive), "--redis-url", url, "--dir", str(tmp / "x-records"),
              "--exchange-state", str(tmp / "x-var" / "exchange-state.json"), "--config-out", str(tmp / "x-var" / "c.yaml"))
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert not (tmp / "x-records").exists() and not (tmp / "x-var").exists()
    return res.stderr


def test_corrupt_foreign_truncated_and_busy_are_refused_and_nothing_is_written(redis_server, r, tmp_path,
                                                                               tmp_path_factory):
    r.set(keys.snapshot("x"), "{}")  # something to back up
    good = tmp_path / "good.tar.gz"
    assert cli("backup", "--out", str(good), "--redis-url", redis_server.url, "--dir", str(tmp_path / "none"),
               "--config", str(ROOT / "config.yaml")).returncode == 0
    empty = RedisServer(tmp_path_factory.mktemp("target"))
    try:
        # a file altered inside a valid archive: rebuilt with the same manifest and one changed byte
        with tarfile.open(good, "r:gz") as tar:
            members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
        altered = tmp_path / "altered.tar.gz"
        with tarfile.open(altered, "w:gz") as tar:
            for m, data in members:
                if m.name == "config/config.yaml":
                    data = data.replace(b"seed: 7", b"seed: 8")
                tar.addfile(m, io.BytesIO(data))
        assert "does not match its checksum" in _refused(altered, empty.url, tmp_path)
        truncated = tmp_path / "truncated.tar.gz"
        truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
        assert "corrupt (truncated or damaged)" in _refused(truncated, empty.url, tmp_path)
        foreign = tmp_path / "foreign.tar.gz"
        with tarfile.open(foreign, "w:gz") as tar:
            info = tarfile.TarInfo("photos/cat.jpg")
            info.size = 3
            tar.addfile(info, io.BytesIO(b"cat"))
        assert "not a backup made by 'bot_manager.py backup'" in _refused(foreign, empty.url, tmp_path)
        not_gzip = tmp_path / "notes.tar.gz"
        not_gzip.write_text("hello")
        assert "corrupt" in _refused(not_gzip, empty.url, tmp_path)
        newer = tmp_path / "newer.tar.gz"
        with tarfile.open(newer, "w:gz") as tar:
            data = json.dumps({"format": "tradingbot-backup", "version": 99, "files": []}).encode()
            info = tarfile.TarInfo("backup.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        assert "newer version" in _refused(newer, empty.url, tmp_path)
        # a target that is not empty, then one a worker runs against
        assert "is not empty" in _refused(good, redis_server.url, tmp_path)
        e = empty.client()
        e.set(keys.HEARTBEAT, "{}", ex=30)
        assert "a worker is running" in _refused(good, empty.url, tmp_path)
        assert e.dbsize() == 1  # nothing was restored
    finally:
        empty.close()
    assert gzip.decompress(good.read_bytes())  # the good archive was never touched
