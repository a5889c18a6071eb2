"""One worker trades the bots of a Redis: a second one refuses to start and names the holder; a worker
whose lease is taken over stops at once and writes nothing after. Real worker processes, real Redis.

Before the lease, two workers traded the same bots side by side and an emergency stop reached only
the one whose consumer read it."""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from state import keys
from support import PY, ROOT, fast_config, heartbeat, snapshots, start_worker, wait_for, write_config


def test_a_second_worker_refuses_to_start_naming_the_one_that_trades(r, redis_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config(tmp_path / "config.yaml", fast_config(redis_server.url))
    first = start_worker(cfg, tmp_path / "a.log", r)
    try:
        t0 = time.monotonic()
        second = subprocess.run([PY, str(ROOT / "bot_manager.py"), "run"], cwd=ROOT, capture_output=True, text=True,
                                timeout=60, env={**__import__("os").environ, "BOT_CONFIG": str(cfg)})
        assert second.returncode == 3, second.stderr[-2000:]
        assert f"worker pid {first.proc.pid}" in second.stderr, second.stderr[-2000:]  # type: ignore[union-attr]
        assert time.monotonic() - t0 < 30  # it waits out one TTL (3 s here) for a dead holder, not longer
        assert first.alive() and heartbeat(r).pid == first.proc.pid  # type: ignore[union-attr]
    finally:
        first.stop()


def test_a_worker_that_loses_its_lease_stops_trading_at_once_and_writes_nothing(r, redis_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config(tmp_path / "config.yaml", fast_config(redis_server.url))
    w = start_worker(cfg, tmp_path / "w.log", r)
    try:
        wait_for(lambda: (s := snapshots(r).get("paper-mom-btc")) is not None and s.candles_seen > 5, 30, "candles")
        # What a successor does once it has the lease: a new token in the fence, itself as the holder.
        token = r.incr(keys.LEASE_SEQ)
        r.set(keys.FENCE, token)
        r.set(keys.LEASE, json.dumps({"token": token, "host": "elsewhere", "pid": 1, "since": 0}), px=60_000)
        taken = time.monotonic()
        wait_for(lambda: not w.alive(), 15, "the worker to stop")
        assert w.proc.returncode == 3, w.log()[-2000:]  # type: ignore[union-attr]
        assert time.monotonic() - taken < 5  # at its next heartbeat (every 0.3 s here), give or take a write
        assert "LEASE LOST" in w.log()
        after = {n: s.updated_at for n, s in snapshots(r).items()}
        time.sleep(1.5)
        assert {n: s.updated_at for n, s in snapshots(r).items()} == after  # nothing written since
        assert r.get(keys.FENCE) == str(token).encode()  # and it did not take the lease back
    finally:
        w.stop()


def test_a_clean_stop_releases_the_lease_and_a_restart_takes_it_at_once(r, redis_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config(tmp_path / "config.yaml", fast_config(redis_server.url))
    start_worker(cfg, tmp_path / "a.log", r).stop()
    assert r.get(keys.LEASE) is None
    t0 = time.monotonic()
    again = start_worker(cfg, tmp_path / "b.log", r)
    try:
        assert time.monotonic() - t0 < 20 and again.alive()
    finally:
        again.stop()


