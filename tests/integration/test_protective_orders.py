"""A live position's stop and take-profit rest on the exchange itself: the worker (a real process)
places them intent-first when the position opens, the venue closes the position by itself while the
worker is SIGKILLed, and the restarted worker books that exit once, with no drift and no second exit.
Spot (an OCO) and USD-M (STOP_MARKET + TAKE_PROFIT_MARKET on the Algo service), on the local
exchange as a real server, with real Redis."""
from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path

import pytest
import redis

from exchange.protective import ProtectiveOrders
from sim_process import SimProcess
from state import keys
from state.commands import new_command, post_command
from state.intents import RedisIntentStore
from state.models import AuditRecord
from state.reader import StateReader
from support import result_of, snapshots, start_worker, wait_for, write_config

BOT = "live-guard"
DUST = Decimal("0.00002")  # spot: what a lot step leaves of a fee-reduced holding (the bot writes it off)
OVERRIDE = {"BOT_RISK_OVERRIDE": "protective-order test: no blackout hours"}


@pytest.fixture
def venue(tmp_path: Path):
    # a slow market: the levels stay where the test puts them until it moves the price itself
    sim = SimProcess(tmp_path / "exchange.log", "--source", "synthetic", "--symbols", "BTCUSDT", "--seed", "3",
                     "--speed", "30", "--warmup", "60")
    yield sim
    sim.close()


def config(tmp_path: Path, redis_url: str, venue_url: str, market: str) -> Path:
    return write_config(tmp_path / "config.yaml", {
        "redis": {"url": redis_url, "embedded": False},
        "market": {"source": "exchange", "symbols": ["BTCUSDT"], "warmup_candles": 30, "speed": 30},
        "exchange": {"venue": "local", "local_url": venue_url, "reconcile_every_s": 1},
        "worker": {"heartbeat_ttl_s": 3, "heartbeat_every_s": 0.3},
        # USD-M BTCUSDT trades 0.001 BTC lots and 100 USDT at least: a bigger allocation there (raised: audited)
        "bots": [{"name": BOT, "mode": "live", "market": market, "symbol": "BTCUSDT", "strategy": "webhook",
                  "allocation": 1000, "sizing": {"kind": "fixed_quote", "value": 40 if market == "spot" else 150},
                  "risk": {"blackout_hours_utc": None, "min_entry_interval_s": 0, "max_position_pct": 50,
                           "max_mode_exposure_value": 1000, "max_position_value": 200}}],
    })


def signal(r: redis.Redis, side: str, price: float, stop: float, take: float, alert: str) -> None:
    payload = json.dumps({"side": side, "symbol": "BTCUSDT", "stop_loss": stop, "take_profit": take,
                          "alert_time": int(time.time() * 1000), "alert_id": alert})
    cmd = new_command("signal", "bot", BOT, user="pytest", payload=payload)
    post_command(r, cmd)
    res = wait_for(lambda: result_of(r, cmd.nonce), 20, "the worker's answer to the signal")
    assert res.status == "applied" and "denied" not in res.message, res


def held(r: redis.Redis) -> float:
    snap = snapshots(r).get(BOT)
    return snap.position.quantity if snap is not None and snap.position is not None else 0.0


def venue_holding(sim: SimProcess, market: str) -> Decimal:
    if market == "futures":
        pos = next((p for p in sim.client("futures").positions() if p.symbol == "BTCUSDT"), None)
        return pos.amount if pos is not None else Decimal(0)
    b = sim.client().balances().get("BTC")
    return b.total if b is not None else Decimal(0)


def resting(sim: SimProcess, market: str) -> list:
    p = ProtectiveOrders(sim.client(market))
    return p.open_algos("BTCUSDT") if market == "futures" else p.open_order_lists("BTCUSDT")


@pytest.mark.parametrize("market", ["spot", "futures"])
def test_the_venue_closes_a_position_while_the_worker_is_dead_and_the_restart_books_it_once(
        r, venue, redis_server, tmp_path, market):
    cfg = config(tmp_path, redis_server.url, venue.url, market)
    w = start_worker(cfg, tmp_path / "w1.log", r, OVERRIDE)
    try:
        price = wait_for(lambda: (s := snapshots(r).get(BOT)) and s.last_price, 30, "the bot's first price")
        stop, take = round(price * 0.97, 2), round(price * 1.10, 2)
        signal(r, "BUY", price, stop, take, "open-1")
        qty = wait_for(lambda: held(r), 20, "the live position")
        # the protection rests on the venue, recorded intent-first under the bot's client ids
        rest = wait_for(lambda: resting(venue, market), 20, "the protective orders on the venue", every=0.5)
        kinds = sorted(o.kind for o in rest)
        assert kinds == (["stop_market", "take_profit_market"] if market == "futures" else ["oco"])
        intents = {i.client_order_id: i for i in RedisIntentStore(r).all(BOT) if i.tag == "protect"}
        assert {o.client_id for o in rest} <= set(intents)
        assert all(o.legs[0].quantity == Decimal(str(qty)) or market == "spot" for o in rest)
        assert "stop" in snapshots(r)[BOT].protection
        w.kill9()  # the worker dies with the position open
        before = venue_holding(venue, market)
        assert before > 0
        # the market falls through the stop (and stays above a spot stop-limit's limit price, 0.5 % lower)
        venue.set_price("BTCUSDT", str(round(stop * 0.998, 2)))
        wait_for(lambda: venue_holding(venue, market) < DUST, 20,
                 "the venue's own stop closing the position while no worker runs", every=0.5)
        left = resting(venue, market)  # an OCO's other leg is gone; a USD-M take-profit waits for the worker
        assert [o.kind for o in left] == (["take_profit_market"] if market == "futures" else [])
    finally:
        w.stop()
    w2 = start_worker(cfg, tmp_path / "w2.log", r, OVERRIDE)
    try:
        wait_for(lambda: held(r) == 0.0, 30, "the restarted worker booking the venue's exit")
        time.sleep(4)  # several reconciliation passes and candles: nothing is booked again, no drift
        trades = StateReader(r).trades(BOT)
        exits = [t for t in trades if "on the venue" in t.exit_reason]
        assert len(exits) == 1 and len(trades) == 1, [(t.exit_reason, t.quantity) for t in trades]
        assert exits[0].exit_reason.startswith("stop_loss")
        assert 0 <= qty - exits[0].quantity < 0.00001  # spot: the lot-rounded holding; the rest is dust, written off
        audits = [AuditRecord.model_validate_json(f[b"data"]) for _, f in r.xrange(keys.AUDIT)]
        assert not [a for a in audits if a.who == "reconcile"], [a.detail for a in audits if a.who == "reconcile"]
        assert snapshots(r)[BOT].effective_state.value == "ACTIVE"
        assert not resting(venue, market)  # a USD-M take-profit left over is cancelled, never left to fire
        assert venue_holding(venue, market) < DUST
    finally:
        w2.stop()


def venue_exit_orders(sim: SimProcess, market: str) -> list[dict]:
    """Every SELL order the venue filled for the bot's symbol (market exits and triggered protection)."""
    c = sim.client(market)
    rows = c.raw.futures_get_all_orders(symbol="BTCUSDT") if market == "futures" else c.raw.get_all_orders(
        symbol="BTCUSDT")
    return [o for o in rows if o["side"] == "SELL" and o["status"] == "FILLED"]


@pytest.mark.parametrize("market", ["spot", "futures"])
def test_a_stop_that_fires_while_the_worker_runs_is_booked_once_and_not_exited_again(
        r, venue, redis_server, tmp_path, market):
    cfg = config(tmp_path, redis_server.url, venue.url, market)
    w = start_worker(cfg, tmp_path / "w.log", r, OVERRIDE)
    try:
        price = wait_for(lambda: (s := snapshots(r).get(BOT)) and s.last_price, 30, "the bot's first price")
        stop = round(price * 0.97, 2)
        signal(r, "BUY", price, stop, round(price * 1.10, 2), "open-2")
        wait_for(lambda: held(r), 20, "the live position")
        wait_for(lambda: resting(venue, market), 20, "the protective orders on the venue", every=0.5)
        venue.set_price("BTCUSDT", str(round(stop * 0.998, 2)))
        wait_for(lambda: held(r) == 0.0, 20, "the bot booking the venue's stop")
        time.sleep(3)  # candles below the stop, reconciliation passes: no software exit follows it
        trades = StateReader(r).trades(BOT)
        assert [t.exit_reason for t in trades] == ["stop_loss (on the venue)"]
        assert len(venue_exit_orders(venue, market)) == 1  # the venue's stop, and nothing after it
        assert not resting(venue, market)  # the USD-M take-profit is cancelled with the position gone
        audits = [AuditRecord.model_validate_json(f[b"data"]) for _, f in r.xrange(keys.AUDIT)]
        assert not [a.detail for a in audits if a.who == "reconcile"]
    finally:
        w.stop()


@pytest.mark.parametrize("market", ["spot", "futures"])
def test_a_flatten_cancels_the_protection_first_and_exits_once(r, venue, redis_server, tmp_path, market):
    cfg = config(tmp_path, redis_server.url, venue.url, market)
    w = start_worker(cfg, tmp_path / "w.log", r, OVERRIDE)
    try:
        price = wait_for(lambda: (s := snapshots(r).get(BOT)) and s.last_price, 30, "the bot's first price")
        signal(r, "BUY", price, round(price * 0.97, 2), round(price * 1.10, 2), "open-3")
        wait_for(lambda: held(r), 20, "the live position")
        wait_for(lambda: resting(venue, market), 20, "the protective orders on the venue", every=0.5)
        cmd = new_command("flatten", "bot", BOT, user="pytest", reason="test")
        post_command(r, cmd)
        res = wait_for(lambda: result_of(r, cmd.nonce), 20, "the flatten")
        assert res.status == "applied", res
        assert held(r) == 0.0
        assert not resting(venue, market)  # cancelled before the market exit: the coins were not locked
        assert len(venue_exit_orders(venue, market)) == 1
        time.sleep(2)
        trades = StateReader(r).trades(BOT)
        assert len(trades) == 1 and "on the venue" not in trades[0].exit_reason
        assert snapshots(r)[BOT].protection == ""
    finally:
        w.stop()
