"""Which worker holds which bots, on the page: two real worker processes on their own shards, the real
dashboard in Chromium; one worker is killed (SIGKILL) and the page shows its shard without a worker, then
held by a standby worker after the takeover."""
from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from conftest import open_dashboard
from ops.redis_server import stop
from state.lease import holder
from support import LOOSE_RISK, RedisServer, WorkerProcess, start_dashboard, wait_for, write_config


@pytest.fixture
def two_workers(tmp_path: Path):  # type: ignore[no-untyped-def]
    server = RedisServer(tmp_path / "redis")
    r = server.client()
    bot = {"mode": "paper", "strategy": "momentum", "params": {"window": 5, "threshold_pct": 0.05}, "risk": LOOSE_RISK}
    cfg = write_config(tmp_path / "config.yaml", {
        "redis": {"url": server.url, "embedded": False},
        "market": {"symbols": ["BTCUSDT", "ETHUSDT"], "seed": 11, "speed": 600, "warmup_candles": 60},
        "worker": {"heartbeat_ttl_s": 3, "heartbeat_every_s": 0.3, "shards": 2},
        "bots": [{**bot, "name": "paper-a", "symbol": "BTCUSDT", "shard": 0},
                 {**bot, "name": "paper-b", "symbol": "ETHUSDT", "shard": 1}],
    })
    a = WorkerProcess(cfg, tmp_path / "a.log", args=["--shards", "0", "--no-takeover"]).start()
    b = WorkerProcess(cfg, tmp_path / "b.log", args=["--shards", "1"]).start()
    dash: subprocess.Popen[bytes] | None = None
    try:
        wait_for(lambda: (h0 := holder(r, 0)) and h0.pid == a.proc.pid and (h1 := holder(r, 1)) and  # type: ignore[union-attr]
                 h1.pid == b.proc.pid, 60, "both workers holding their shards")  # type: ignore[union-attr]
        dash, url = start_dashboard(cfg, server.url, tmp_path / "dashboard.log", timeout=60)
        c = WorkerProcess(cfg, tmp_path / "c.log", args=["--standby"])
        yield url, a, b, c
    finally:
        if dash is not None:
            stop(dash)
        a.stop()
        b.stop()
        c.stop()
        server.close()


def test_the_page_shows_which_worker_holds_which_bots_and_a_takeover(page: Page, two_workers) -> None:  # type: ignore[no-untyped-def]
    url, a, b, c = two_workers
    app = open_dashboard(page, url)
    panel = app.locator(".st-key-workers")
    host = socket.gethostname()
    expect(panel).to_contain_text("Workers and shards", timeout=30_000)
    expect(panel.get_by_text(f"Shard 0 — worker {a.proc.pid}@{host}")).to_contain_text("paper-a", timeout=30_000)
    expect(panel.get_by_text(f"Shard 1 — worker {b.proc.pid}@{host}")).to_contain_text("paper-b", timeout=30_000)
    b.kill9()
    # its lease expires after 3 s: shard 1 has no worker (A does not take over), in red
    expect(panel).to_contain_text("Shard 1 — no worker: paper-b not trading", timeout=30_000)
    c.start()  # a standby worker takes the dead worker's shard over
    expect(panel.get_by_text(f"Shard 1 — worker {c.proc.pid}@{host}")).to_contain_text("paper-b", timeout=90_000)
    expect(panel.get_by_text(f"Shard 0 — worker {a.proc.pid}@{host}")).to_contain_text("paper-a")
    expect(app.get_by_test_id("stException")).to_have_count(0)
