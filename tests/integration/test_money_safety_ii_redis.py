"""Issue 12, items 4 and 5: live DCA deals' resting orders filling on the local exchange, a real worker
and a real redis-server.

4. A resting order that fills while Redis is down (the test SIGKILLs its own redis-server and starts it
   again on the same port and data) is written to Redis when it is back, without a restart of the
   worker, and booked once.
5. Reconciliation does not pause healthy bots: a minute of resting orders filling while reconciliation
   runs every second ends with no drift audit.
"""
from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import pytest

from ops.redis_server import start_redis
from safety_support import (OVERRIDE, advance, assert_booked_once, baseline, drift_audits, held, intents, live_config,
                            venue, venue_holding)
from state.reader import StateReader
from support import RedisServer, start_worker, wait_for

BOT = "live-dca-redis"
SYMBOL = "BTCUSDT"
DCA = {"base_order": 20, "safety_order": 20, "deviation_pct": 1, "step_scale": 1, "volume_scale": 1,
       "max_safety_orders": 2, "active_safety_orders": 1, "take_profit_pct": 1, "stop_loss_pct": 10,
       "side": "long", "cooldown_s": 10_000_000}
RISK = {"blackout_hours_utc": None, "max_position_value": 200, "max_mode_exposure_value": 400,
        "max_orders_per_minute": 60, "max_loss_per_trade_value": 50, "daily_loss_value": 100}


@pytest.fixture
def own_redis(tmp_path: Path):
    """A redis-server of this test's own: killed and started again on the same port and data."""
    server = RedisServer(tmp_path / "redis")
    yield server
    server.close()


def kill_redis(server: RedisServer) -> None:
    server.proc.kill()
    server.proc.wait(10)


def revive_redis(server: RedisServer, tmp_path: Path) -> None:
    server.proc = start_redis(server.port, tmp_path / "redis", "always", tmp_path / "redis" / "redis.log")


def deal(r) -> dict | None:
    s = StateReader(r).snapshots([BOT]).get(BOT)
    return s.dca["deals"][0] if s is not None and s.dca and s.dca["deals"] else None


def test_a_resting_fill_during_a_redis_outage_is_written_when_redis_is_back(own_redis, tmp_path):
    sim = venue(tmp_path, speed=0, seed=8)
    r = own_redis.client()
    cfg = live_config(tmp_path, own_redis.url, sim.url, [{
        "name": BOT, "mode": "live", "kind": "dca", "market": "spot", "symbol": SYMBOL, "dca": DCA, "risk": RISK}])
    w = start_worker(cfg, tmp_path / "w.log", r, OVERRIDE)
    try:
        def opened():
            advance(sim)
            return deal(r)

        d = wait_for(opened, 30, "the deal to open", every=0.5)
        so1 = wait_for(lambda: next((i for i in intents(r, BOT) if i.tag == "SO1" and i.status == "NEW"), None), 10,
                       "SO1 resting")
        kill_redis(own_redis)
        # SO1 (-1 %) fills on the venue while Redis is down; SO2 (-2 %) stays out of reach
        sim.set_price(SYMBOL, str((Decimal(str(d["base_price"])) * Decimal("0.988")).quantize(Decimal("0.01"))))
        filled = sim.client().raw.get_order(symbol=SYMBOL, origClientOrderId=so1.client_order_id)
        assert filled["status"] == "FILLED"
        time.sleep(2)  # the user-data event reaches the worker; nothing can be written
        revive_redis(own_redis, tmp_path)
        rec = wait_for(lambda: next((i for i in intents(r, BOT) if i.client_order_id == so1.client_order_id
                                     and i.status == "FILLED" and i.fills), None), 20,
                       "SO1's fill written to Redis once it is back")
        assert sum(Decimal(f.qty) for f in rec.fills) == Decimal(filled["executedQty"])
        wait_for(lambda: (x := deal(r)) and x["safety_filled"] == 1, 15, "the deal booking SO1")
        for _ in range(3):
            advance(sim)
            time.sleep(0.7)
        assert w.alive(), w.log()[-3000:]
        assert abs(float(venue_holding(sim, "spot") - baseline(r, BOT)) - held(r, BOT)) < 1e-6
        assert not drift_audits(r), drift_audits(r)
    finally:
        w.stop()
        try:
            assert_booked_once(r, sim, BOT, "spot")
        finally:
            sim.close()


FAST_DCA = {"deviation_pct": 0.1, "step_scale": 1, "volume_scale": 1, "max_safety_orders": 3, "active_safety_orders": 2,
            "take_profit_pct": 0.15, "stop_loss_pct": 8, "side": "long", "cooldown_s": 0}
FAST_RISK = {"blackout_hours_utc": None, "min_entry_interval_s": 0, "max_orders_per_minute": 200,
             "max_position_pct": 90, "max_position_value": 700, "max_mode_exposure_value": 3000,
             "max_loss_per_trade_value": 60, "daily_loss_value": 1000, "max_consecutive_losses": 1000}
RUN_S = 50


def test_reconciliation_does_not_pause_healthy_bots(r, redis_server, tmp_path):
    # a market at 300x (five candles a second): deals open, ladders and take-profits fill all the
    # time, on spot and USD-M, while reconciliation compares the bots with the venue every second
    sim = venue(tmp_path, symbols="BTCUSDT,ETHUSDT", speed=300, seed=11)
    names = ["recon-spot-dca", "recon-fut-dca"]
    cfg = live_config(tmp_path, redis_server.url, sim.url, [
        {"name": names[0], "mode": "live", "kind": "dca", "market": "spot", "symbol": "ETHUSDT",
         "dca": {**FAST_DCA, "base_order": 20, "safety_order": 20}, "allocation": 1500, "risk": FAST_RISK},
        {"name": names[1], "mode": "live", "kind": "dca", "market": "futures", "symbol": "BTCUSDT",
         "dca": {**FAST_DCA, "base_order": 150, "safety_order": 150}, "allocation": 1500, "risk": FAST_RISK},
    ], symbols=("BTCUSDT", "ETHUSDT"), reconcile_every_s=1)
    try:
        w = start_worker(cfg, tmp_path / "w.log", r, OVERRIDE)
        try:
            # every answer of the venue 100 ms late: orders fill between reconciliation's poll of the
            # resting orders and its read of the balances (the race the issue saw twice a minute)
            sim.faults(latency_ms=100)
            time.sleep(RUN_S)
            assert w.alive(), w.log()[-3000:]
        finally:
            w.stop()
        filled = [i for b in names for i in intents(r, b) if i.tag and i.status == "FILLED"]
        assert len(filled) >= 10, f"only {len(filled)} resting orders filled: the run proves little"
        assert not drift_audits(r), drift_audits(r)
        snaps = StateReader(r).snapshots(names)
        assert all(s.effective_state.value == "ACTIVE" for s in snaps.values()), {
            n: s.effective_state.value for n, s in snaps.items()}
    finally:
        sim.close()
