"""Bots sharded over several workers: real worker processes (`bot_manager.py run --shards N`), one real
redis-server and, for the live bots, the real local exchange over HTTP/WebSocket.

A worker that dies (SIGKILL — here right after the venue filled its order and before it booked it) has
its shard taken over by another once its lease expired: the open intent is resolved by asking the venue
(booked once, never sent again), the bot continues on the new worker with the venue's position, and an
emergency stop posted once flattens and pauses the bots of every worker.
"""
from __future__ import annotations

import os
import socket
import subprocess
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sim_process import SimProcess
from state import keys
from state import shards as shard_store
from state.commands import await_result, new_command, post_command
from state.connection import connect
from state.intents import RedisIntentStore
from state.lease import holder
from state.reader import StateReader
from state.venue_store import VenueStore
from support import LOOSE_RISK, PY, ROOT, WorkerProcess, snapshots, wait_for, write_config

OVERRIDE = {"BOT_RISK_OVERRIDE": "shards test: no blackout hours"}
LIVE = ("live-btc", "live-eth")


def holder_pid(r, shard: int) -> int | None:  # type: ignore[no-untyped-def]
    h = holder(r, shard)
    return h.pid if h is not None else None


def paper_bot(name: str, symbol: str, shard: int) -> dict[str, Any]:
    return {"name": name, "mode": "paper", "symbol": symbol, "strategy": "momentum", "shard": shard,
            "params": {"window": 5, "threshold_pct": 0.05}, "sizing": {"kind": "percent_equity", "value": 20},
            "risk": LOOSE_RISK}


def live_bot(name: str, symbol: str, shard: int) -> dict[str, Any]:
    return {"name": name, "mode": "live", "symbol": symbol, "strategy": "momentum", "shard": shard,
            "params": {"window": 2, "threshold_pct": 0.01, "stop_loss_pct": 2.0},
            "sizing": {"kind": "fixed_quote", "value": 30},
            "risk": {"blackout_hours_utc": None, "min_entry_interval_s": 0}}


@pytest.fixture
def venue(tmp_path: Path):  # type: ignore[no-untyped-def]
    sim = SimProcess(tmp_path / "exchange.log", "--source", "synthetic", "--symbols", "BTCUSDT,ETHUSDT", "--seed",
                     "5", "--speed", "600", "--warmup", "60")
    yield sim
    sim.close()


def held(sim: SimProcess, asset: str) -> Decimal:
    b = sim.client().balances().get(asset)
    return b.total if b is not None else Decimal(0)


def test_a_killed_workers_shard_is_taken_over_its_intent_resolved_once_and_one_stop_reaches_every_worker(
        r, venue, redis_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config(tmp_path / "config.yaml", {
        "redis": {"url": redis_server.url, "embedded": False},
        "market": {"source": "exchange", "symbols": ["BTCUSDT", "ETHUSDT"], "warmup_candles": 30, "speed": 600},
        "exchange": {"venue": "local", "local_url": venue.url, "reconcile_every_s": 2},
        "worker": {"heartbeat_ttl_s": 3, "heartbeat_every_s": 0.3, "shards": 3},
        # live bots share one shard (their cross-bot ceilings need one worker's view); paper bots anywhere
        "bots": [live_bot("live-btc", "BTCUSDT", 0), live_bot("live-eth", "ETHUSDT", 0),
                 paper_bot("paper-0", "BTCUSDT", 0), paper_bot("paper-1", "ETHUSDT", 1),
                 paper_bot("paper-2", "BTCUSDT", 2)],
    })
    # A trades shard 0 and kills itself (SIGKILL) right after the venue filled its first live order,
    # before booking it; B and C trade shards 1 and 2 and may take over.
    a = WorkerProcess(cfg, tmp_path / "a.log", {**OVERRIDE, "BOT_CHAOS": "kill_after_send"},
                      args=["--shards", "0", "--no-takeover"]).start()
    b = WorkerProcess(cfg, tmp_path / "b.log", args=["--shards", "1"], env=OVERRIDE).start()
    c = WorkerProcess(cfg, tmp_path / "c.log", args=["--shards", "2"], env=OVERRIDE).start()
    workers = [a, b, c]
    try:
        wait_for(lambda: holder_pid(r, 1) == b.proc.pid and holder_pid(r, 2) == c.proc.pid, 60,  # type: ignore[union-attr]
                 "B and C holding shards 1 and 2")
        wait_for(lambda: a.proc.poll() is not None, 90, "A to die right after its first order")  # type: ignore[union-attr]
        store = RedisIntentStore(r)
        opened = [(bot, i) for bot in LIVE for i in store.all(bot)]
        assert len(opened) == 1, opened
        bot, first = opened[0]
        assert first.status == "INTENT"  # sent and filled, never booked: the dead worker's open intent
        orders = lambda: {sym: venue.client().raw.get_all_orders(symbol=sym) for sym in ("BTCUSDT", "ETHUSDT")}  # noqa: E731
        assert [(o["clientOrderId"], o["status"]) for os_ in orders().values() for o in os_] == \
            [(first.client_order_id, "FILLED")]

        taker = wait_for(lambda: holder_pid(r, 0) in (b.proc.pid, c.proc.pid) and holder_pid(r, 0), 30,  # type: ignore[union-attr]
                         "shard 0 taken over by B or C")
        resolved = wait_for(lambda: (i := store.get(bot, first.client_order_id)) and i.final and i, 30,
                            "the dead worker's open intent resolved by asking the venue")
        assert resolved.status == "FILLED"
        snap = wait_for(lambda: (s := snapshots(r).get(bot)) and s.position and s.position.quantity > 0 and s,
                        30, "the recovered fill booked on the new worker")
        # The booked entry is the venue's fill, net of the fee charged in the base asset (compared per order:
        # the bot trades on at once, so a later exit may already have moved its position and the wallet).
        asset = first.symbol.removesuffix("USDT")
        raw = venue.client().raw
        venue_order = raw.get_order(symbol=first.symbol, origClientOrderId=first.client_order_id)
        fills = raw.get_my_trades(symbol=first.symbol, orderId=venue_order["orderId"])
        net = sum(Decimal(t["qty"]) - (Decimal(t["commission"]) if t["commissionAsset"] == asset else 0) for t in fills)
        # Booked once: the bot's fill records of that order are the venue's fills, no more. (On a slow machine
        # the position may already be closed and opened again, so the tranche is checked only while it stands.)
        recorded = [f for f in StateReader(r).fills(bot, 1000) if f.client_order_id == first.client_order_id]
        # (a fill is booked net of a fee charged in the base asset; its fee is then kept in quote terms)
        assert len(recorded) == len(fills) and abs(sum(f.quantity for f in recorded) - float(net)) < 1e-9, \
            (recorded, fills)
        booked = [t for t in snap.position.tranches if t.order_id == first.client_order_id]
        assert len(booked) <= 1 and all(abs(t.quantity - float(net)) < 1e-9 for t in booked), (booked, fills)
        taker_log = wait_for(lambda: "SHARD 0 TAKEN OVER" in (t := (b if taker == b.proc.pid else c).log()) and t,  # type: ignore[union-attr]
                             10, "the takeover logged")
        assert "recovered 1 fill(s) of " + first.client_order_id in taker_log

        # They trade on there: new orders, each client order id once on the venue, the first never again.
        wait_for(lambda: sum(len(store.all(n)) for n in LIVE) >= 4, 90, "the live bots trading on after the takeover")
        for placed in orders().values():
            ids = [o["clientOrderId"] for o in placed]
            assert len(ids) == len(set(ids)), f"duplicate orders on the venue: {ids}"
        assert [o["clientOrderId"] for o in orders()[first.symbol]].count(first.client_order_id) == 1
        rows = {row.shard: row for row in shard_store.holders(r)}
        assert rows[0].holder is not None and rows[0].holder.pid == taker and rows[0].bots == ["live-btc", "live-eth", "paper-0"]
        assert rows[1].holder.pid == b.proc.pid and rows[2].holder.pid == c.proc.pid  # type: ignore[union-attr]

        # One emergency stop, posted once: every bot on every worker flat and paused.
        cmd = new_command("emergency_stop", scope="global", user="test")
        post_command(r, cmd)
        answer = wait_for(lambda: (res := await_result(r, cmd.nonce, 1)) and res.status != "pending" and res, 60,
                          "every shard's answer")
        assert answer.status == "applied", answer.message
        assert all(f"shard {n}: EMERGENCY STOP" in answer.message for n in range(3)), answer.message

        def all_flat() -> bool:
            snaps = snapshots(r)
            return len(snaps) == 5 and all(not s.position or not s.position.quantity for s in snaps.values())

        wait_for(all_flat, 60, "every bot flat")
        for name in ("live-btc", "paper-0", "live-eth", "paper-1", "paper-2"):
            assert r.hget(keys.control("bot", name), "state") == b"PAUSED", name
        assert r.hget(keys.control("global"), "state") == b"PAUSED"
    finally:
        for w in workers:
            w.stop()
    # After a clean stop nothing moves: each bot's (zero) position is what the venue holds, beside the
    # lot-size dust its exits wrote off to its reconciliation baseline.
    for bot, asset, symbol in (("live-btc", "BTC", "BTCUSDT"), ("live-eth", "ETH", "ETHUSDT")):
        snap = snapshots(r)[bot]
        qty = snap.position.quantity if snap.position else 0.0
        dust = VenueStore(connect(redis_server.url)).baseline(bot, asset) or Decimal(0)
        assert abs(held(venue, asset) - dust - Decimal(str(qty))) < Decimal("1e-8"), \
            f"{bot}: venue holds {held(venue, asset)} ({dust} of it dust), the bot {qty}"
        ids = [o["clientOrderId"] for o in venue.client().raw.get_all_orders(symbol=symbol)]
        assert len(ids) == len(set(ids))
        filled = {i.client_order_id for i in RedisIntentStore(r).all(bot) if i.status == "FILLED"}
        assert filled == {o["clientOrderId"] for o in venue.client().raw.get_all_orders(symbol=symbol)
                          if o["status"] == "FILLED"}


def test_a_stop_posted_while_a_shard_has_no_worker_is_applied_when_its_shard_is_taken_over(
        r, redis_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config(tmp_path / "config.yaml", {
        "redis": {"url": redis_server.url, "embedded": False},
        "market": {"symbols": ["BTCUSDT", "ETHUSDT"], "seed": 11, "speed": 1200, "warmup_candles": 60},
        "worker": {"heartbeat_ttl_s": 3, "heartbeat_every_s": 0.3, "shards": 2},
        "bots": [{**paper_bot("paper-0", "BTCUSDT", 0), "max_hold_candles": 30},
                 {**paper_bot("paper-1", "ETHUSDT", 1), "max_hold_candles": 30}],
    })
    a = WorkerProcess(cfg, tmp_path / "a.log", args=["--shards", "0"]).start()
    b = WorkerProcess(cfg, tmp_path / "b.log", args=["--shards", "1"]).start()
    try:
        wait_for(lambda: holder_pid(r, 0) == a.proc.pid and holder_pid(r, 1) == b.proc.pid, 60,  # type: ignore[union-attr]
                 "A and B holding shards 0 and 1")
        status = subprocess.run([PY, str(ROOT / "bot_manager.py"), "status", "--redis-url", redis_server.url], cwd=ROOT,
                                capture_output=True, text=True, timeout=60).stdout
        host = socket.gethostname()
        assert f"shard 0: worker {a.proc.pid}@{host}: paper-0" in status, status  # type: ignore[union-attr]
        assert f"shard 1: worker {b.proc.pid}@{host}: paper-1" in status, status  # type: ignore[union-attr]
        # A shard another worker holds is refused, naming that worker.
        third = subprocess.run([PY, str(ROOT / "bot_manager.py"), "run", "--shards", "1"], cwd=ROOT,
                               capture_output=True, text=True, timeout=60, env={**os.environ, "BOT_CONFIG": str(cfg)})
        assert third.returncode == 3 and f"shard 1's bots: worker pid {b.proc.pid}" in third.stderr, third.stderr[-2000:]  # type: ignore[union-attr]
        wait_for(lambda: (s := snapshots(r).get("paper-0")) and s.position and s.position.quantity, 60,
                 "paper-0 (shard 0, worker A) in a position")
        a.kill9()
        at_kill = snapshots(r)["paper-0"]  # nobody writes it from here until the takeover
        cmd = new_command("emergency_stop", scope="global", user="test")
        post_command(r, cmd)
        # Shard 1 answers at once; shard 0 has no worker: the answer says so and stays pending.
        part = wait_for(lambda: (res := await_result(r, cmd.nonce, 1)) and res, 10, "shard 1's answer")
        assert part.status == "pending" and "shard 1: EMERGENCY STOP" in part.message, part.message
        assert "not answered yet by shard 0" in part.message
        assert snapshots(r)["paper-0"].updated_at == at_kill.updated_at  # nobody touched shard 0's bot yet
        # B takes shard 0 over once A's lease has expired (3 s) and stayed free one more TTL, and applies it.
        wait_for(lambda: holder_pid(r, 0) == b.proc.pid, 30, "B taking shard 0 over")  # type: ignore[union-attr]
        done = wait_for(lambda: (res := await_result(r, cmd.nonce, 1)) and res.status != "pending" and res, 30,
                        "shard 0's answer")
        assert done.status == "applied" and "shard 0: EMERGENCY STOP" in done.message, done.message
        if at_kill.position and at_kill.position.quantity:  # (it may have closed just before the kill)
            assert "shard 0: EMERGENCY STOP: closed 1 position(s) (paper-0" in done.message, done.message
        snap = wait_for(lambda: (s := snapshots(r)["paper-0"]) and not (s.position and s.position.quantity) and s, 10,
                        "paper-0 flat")
        assert r.hget(keys.control("bot", "paper-0"), "state") == b"PAUSED"
        assert snap.trade_count >= 1
        # B now writes the heartbeat (it holds shard 0) and is the only worker.
        wait_for(lambda: (hb := r.get(keys.HEARTBEAT)) and f'"pid":{b.proc.pid}'.encode() in hb, 10,  # type: ignore[union-attr]
                 "B's heartbeat")
        # A worker that loses one of its shards stops trading at once.
        token = r.incr(keys.LEASE_SEQ)
        r.set(keys.shard_fence(1), token)
        wait_for(lambda: not b.alive(), 15, "B to stop after losing shard 1")
        assert b.proc.returncode == 3 and "LEASE LOST" in b.log()  # type: ignore[union-attr]
    finally:
        a.stop()
        b.stop()


def test_a_standby_worker_takes_over_the_single_worker(r, redis_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """One shard (the default config): a `--standby` worker holds nothing, then trades every bot once the
    worker dies, continuing them from their snapshots."""
    cfg = write_config(tmp_path / "config.yaml", {
        "redis": {"url": redis_server.url, "embedded": False},
        "market": {"symbols": ["BTCUSDT", "ETHUSDT"], "seed": 11, "speed": 1200, "warmup_candles": 60},
        "worker": {"heartbeat_ttl_s": 3, "heartbeat_every_s": 0.3},
        "bots": [paper_bot("paper-x", "BTCUSDT", 0), paper_bot("paper-y", "ETHUSDT", 0)],
    })
    s = WorkerProcess(cfg, tmp_path / "s.log", args=["--standby"]).start()
    a = WorkerProcess(cfg, tmp_path / "a.log")
    try:
        wait_for(lambda: "worker started: 0 bots" in s.log(), 90, "the standby started with no bots")
        time.sleep(3 * 3)  # three TTLs: a shard no worker ever held is not "orphaned": the standby leaves it
        assert holder(r, 0) is None
        a.start()
        wait_for(lambda: holder_pid(r, 0) == a.proc.pid, 90, "A trading")  # type: ignore[union-attr]
        wait_for(lambda: (snaps := snapshots(r)).keys() == {"paper-x", "paper-y"}
                 and all(x.candles_seen > 20 for x in snaps.values()), 60, "both bots' snapshots past 20 candles")
        assert r.get(keys.SHARD_COUNT) == b"1" and not r.keys(keys.COMMANDS + ":shard:*")
        a.kill9()
        seen = {n: x.candles_seen for n, x in snapshots(r).items()}
        wait_for(lambda: holder_pid(r, 0) == s.proc.pid, 30, "the standby taking the shard over")  # type: ignore[union-attr]
        wait_for(lambda: all(x.candles_seen > seen[n] + 10 for n, x in snapshots(r).items()), 30,
                 "both bots trading on in the standby")
        wait_for(lambda: (hb := r.get(keys.HEARTBEAT)) and f'"pid":{s.proc.pid}'.encode() in hb, 10,  # type: ignore[union-attr]
                 "the standby's heartbeat")
        cmd = new_command("pause", target="paper-y", user="test")
        post_command(r, cmd)
        assert wait_for(lambda: await_result(r, cmd.nonce, 1), 10, "the answer").status == "applied"
    finally:
        a.stop()
        s.stop()
