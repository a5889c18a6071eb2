"""Issue 12, items 2 and 6: USD-M futures through a real worker, the local exchange (its market paused;
the test closes the candles and moves the price) and a real redis-server.

2. A LIMIT order that fills the moment it is placed (the USD-M answer carries no trades) is booked:
   a DCA safety order placed above a market that already fell through it.
6. A phantom position (the bot holds what the venue does not): its reduce-only exit is refused; the
   bot waits 2, 4, 8 candles between attempts and the third refusal halts it with the reason.
"""
from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import pytest

from safety_support import (OPEN_RISK, OVERRIDE, advance, assert_booked_once, drift_audits, held, intents,
                            last_price, live_config, send_signal, venue, venue_holding)
from state.commands import new_command, post_command
from state.reader import StateReader
from support import result_of, snapshots, start_worker, wait_for

SYMBOL = "BTCUSDT"


@pytest.fixture
def sim(tmp_path: Path):
    s = venue(tmp_path, speed=0, seed=9)
    yield s
    s.close()


DCA_BOT = "live-fut-dca"
# USD-M BTCUSDT: 100 USDT notional at least
DCA = {"base_order": 150, "safety_order": 150, "deviation_pct": 1, "step_scale": 1, "volume_scale": 1,
       "max_safety_orders": 3, "active_safety_orders": 1, "take_profit_pct": 1, "stop_loss_pct": 8,
       "side": "long", "cooldown_s": 10_000_000}
DCA_RISK = {"blackout_hours_utc": None, "min_entry_interval_s": 0, "max_orders_per_minute": 200,
            "max_position_pct": 90, "max_position_value": 700, "max_mode_exposure_value": 1500,
            "max_loss_per_trade_value": 60, "daily_loss_value": 500}


def deal(r) -> dict | None:
    s = StateReader(r).snapshots([DCA_BOT]).get(DCA_BOT)
    return s.dca["deals"][0] if s is not None and s.dca and s.dca["deals"] else None


def test_a_usdm_limit_order_that_fills_when_placed_is_booked(r, sim, redis_server, tmp_path):
    cfg = live_config(tmp_path, redis_server.url, sim.url, [{
        "name": DCA_BOT, "mode": "live", "kind": "dca", "market": "futures", "symbol": SYMBOL, "dca": DCA,
        "allocation": 1500, "risk": DCA_RISK}])
    w = start_worker(cfg, tmp_path / "w.log", r, OVERRIDE)
    try:
        def opened():
            advance(sim)
            return deal(r)

        d = wait_for(opened, 30, "the deal to open", every=0.5)
        so1 = wait_for(lambda: next((i for i in intents(r, DCA_BOT) if i.tag == "SO1" and i.status == "NEW"), None),
                       10, "SO1 resting")
        base = Decimal(str(d["base_price"]))
        # one trade down through SO1 (-1 %) and below where SO2 (-2 %) will be placed: SO1 fills on the
        # venue, and SO2, placed when the bot books it, crosses the book and fills the moment it is placed
        sim.set_price(SYMBOL, str((base * Decimal("0.975")).quantize(Decimal("0.01"))))
        so2 = wait_for(lambda: next((i for i in intents(r, DCA_BOT) if i.tag == "SO2" and i.final), None), 15,
                       "SO2 placed and filled at once")
        assert so2.status == "FILLED" and so1.client_order_id != so2.client_order_id
        wait_for(lambda: (x := deal(r)) and x["safety_filled"] == 2, 10, "the deal booking SO1 and SO2")
        for _ in range(3):  # candles and reconciliation passes
            advance(sim)
            time.sleep(0.7)
        assert abs(float(venue_holding(sim, "futures")) - held(r, DCA_BOT)) < 1e-9
        assert not drift_audits(r), drift_audits(r)
    finally:
        w.stop()
    assert_booked_once(r, sim, DCA_BOT, "futures")
