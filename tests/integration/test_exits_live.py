"""A live USD-M bot's exits on the local exchange (a real server; real Redis; the real worker): its stop rests
on the venue as a STOP_MARKET order and follows the trailing stop up as the price makes new highs; while a
scale-out target remains no take-profit rests there (it would close the whole position); the target is then
taken by the bot as its own partial exit."""
from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path

import pytest
import redis

from exchange.protective import ProtectiveOrders
from sim_process import SimProcess
from state.commands import new_command, post_command
from state.reader import StateReader
from support import result_of, snapshots, start_worker, wait_for, write_config

BOT = "live-trail"
OVERRIDE = {"BOT_RISK_OVERRIDE": "exits test: no blackout hours"}


@pytest.fixture
def venue(tmp_path: Path):
    sim = SimProcess(tmp_path / "exchange.log", "--source", "synthetic", "--symbols", "BTCUSDT", "--seed", "3",
                     "--speed", "30", "--warmup", "60")
    yield sim
    sim.close()


def stops_resting(sim: SimProcess) -> list[Decimal]:
    rows = ProtectiveOrders(sim.client("futures")).open_algos("BTCUSDT")
    return [leg.stop_price for o in rows for leg in o.legs if leg.role == "stop"]


def takes_resting(sim: SimProcess) -> list:
    rows = ProtectiveOrders(sim.client("futures")).open_algos("BTCUSDT")
    return [leg for o in rows for leg in o.legs if leg.role == "take_profit"]


def signal(r: redis.Redis, price: float, stop: float) -> None:
    payload = json.dumps({"side": "BUY", "symbol": "BTCUSDT", "stop_loss": stop, "alert_time": int(time.time() * 1000),
                          "alert_id": "trail-1"})
    cmd = new_command("signal", "bot", BOT, user="pytest", payload=payload)
    post_command(r, cmd)
    res = wait_for(lambda: result_of(r, cmd.nonce), 20, "the worker's answer to the signal")
    assert res.status == "applied" and "denied" not in res.message, res


def test_trailing_stop_rests_on_the_venue_and_follows_the_price(r, venue, redis_server, tmp_path):
    cfg = write_config(tmp_path / "config.yaml", {
        "redis": {"url": redis_server.url, "embedded": False},
        "market": {"source": "exchange", "symbols": ["BTCUSDT"], "warmup_candles": 30, "speed": 30},
        "exchange": {"venue": "local", "local_url": venue.url, "reconcile_every_s": 1},
        "worker": {"heartbeat_ttl_s": 3, "heartbeat_every_s": 0.3},
        "bots": [{"name": BOT, "mode": "live", "market": "futures", "symbol": "BTCUSDT", "strategy": "webhook",
                  "allocation": 1000, "max_tranches": 1, "sizing": {"kind": "fixed_quote", "value": 150},
                  "exits": {"trailing_pct": 3.0, "targets": [[1.5, 50]]},
                  "risk": {"blackout_hours_utc": None, "min_entry_interval_s": 0, "max_position_pct": 50,
                           "max_mode_exposure_value": 1000, "max_position_value": 200}}],
    })
    w = start_worker(cfg, tmp_path / "w.log", r, OVERRIDE)
    try:
        price = wait_for(lambda: (s := snapshots(r).get(BOT)) and s.last_price, 30, "the bot's first price")
        stop0 = round(price * 0.98, 1)
        signal(r, price, stop0)
        wait_for(lambda: snapshots(r)[BOT].position is not None, 20, "the live position")
        first = wait_for(lambda: stops_resting(venue), 20, "the stop resting on the venue", every=0.5)
        assert float(first[0]) == pytest.approx(stop0, abs=0.2)
        assert not takes_resting(venue)  # a target remains: no take-profit for the whole position rests
        # a new high: the trailing stop (3 % under the best price) rises above the entry's stop (2 % under it)
        high = round(price * 1.02, 1)
        venue.set_price("BTCUSDT", str(high))
        moved = wait_for(lambda: [s for s in stops_resting(venue) if float(s) > stop0 + 1], 40,
                         "the venue's stop following the trailing stop up", every=0.5)
        pos = snapshots(r)[BOT].position
        assert pos is not None and float(moved[0]) == pytest.approx(pos.stop_loss, abs=0.2)
        assert pos.stop_loss > stop0
        # the target (+1.5 R) is taken by the bot as a partial exit; the rest stays protected
        venue.set_price("BTCUSDT", str(round(price + 1.6 * (price - stop0), 1)))
        trade = wait_for(lambda: next((t for t in StateReader(r).trades(BOT) if t.exit_reason == "take_profit_1"),
                                      None), 40, "the scale-out target booked as its own trade")
        # (a market exit on the venue at the candle's close: its price is the market's then, not the target's;
        # the local exchange's set price is a spike, after which its synthetic path goes on where it was)
        assert trade.quantity == pytest.approx(0.001)
        # the rest: protected on the venue again, or already closed by its trailing stop (the spike moved the
        # trailing stop to 3 % under it, above the market the path returned to)
        rest = [t for t in StateReader(r).trades(BOT) if t.exit_reason != "take_profit_1"]
        if not rest:
            wait_for(lambda: stops_resting(venue) or snapshots(r)[BOT].position is None, 20,
                     "the rest protected again (or closed by its trailing stop)", every=0.5)
    finally:
        w.stop()
