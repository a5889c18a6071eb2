"""A live USD-M DCA deal's stop-loss rests on the exchange itself (a STOP_MARKET reduce-only on the
Algo service, for the deal's quantity at the deal's stop): re-placed when a safety order fill moves
the average and the quantity, cancelled when the deal closes by its take-profit, and when the worker
is SIGKILLed the venue closes the deal by itself; the restarted worker books that exit once, with no
drift and no second exit. The worker as a real subprocess, the local exchange as a real server (its
market paused; the test moves the price), a real redis-server, python-binance unmodified."""
from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path

import pytest

from exchange.protective import ProtectiveOrders
from sim_process import SimProcess
from state import keys
from state.intents import RedisIntentStore
from state.models import AuditRecord
from state.reader import StateReader
from support import WorkerProcess, start_worker, wait_for, write_config

BOT = "live-dca-stop"
SYMBOL = "BTCUSDT"
# USD-M BTCUSDT: lots of 0.001 BTC, 100 USDT at least. BO and SO of 200 USDT, SO1 at -1 %, SO2 at -2 %;
# take-profit 1 % over the average; stop 5 % under the average (re-measured after each safety fill).
DCA = {"base_order": 200, "safety_order": 200, "deviation_pct": 1, "step_scale": 1, "volume_scale": 1,
       "max_safety_orders": 2, "active_safety_orders": 2, "take_profit_pct": 1, "stop_loss_pct": 5,
       "stop_loss_reference": "average", "side": "long", "cooldown_s": 10_000_000}
RISK = {"blackout_hours_utc": None, "max_position_value": 1500, "max_mode_exposure_value": 2000,
        "max_orders_per_minute": 60, "max_loss_per_trade_value": 100, "daily_loss_value": 200}


@pytest.fixture
def venue(tmp_path: Path):
    sim = SimProcess(tmp_path / "exchange.log", "--source", "synthetic", "--symbols", SYMBOL, "--seed", "8",
                     "--speed", "0", "--warmup", "60")
    yield sim
    sim.close()


def config(tmp_path: Path, redis_url: str, venue_url: str, **dca: object) -> Path:
    return write_config(tmp_path / "config.yaml", {
        "redis": {"url": redis_url, "embedded": False},
        "market": {"source": "exchange", "symbols": [SYMBOL], "warmup_candles": 30},
        "exchange": {"venue": "local", "local_url": venue_url, "reconcile_every_s": 1},
        "worker": {"heartbeat_ttl_s": 3, "heartbeat_every_s": 0.3},
        "bots": [{"name": BOT, "mode": "live", "kind": "dca", "market": "futures", "symbol": SYMBOL,
                  "dca": {**DCA, **dca}, "risk": RISK}],
    })


def start(cfg: Path, log: Path, r) -> WorkerProcess:  # noqa: ANN001
    return start_worker(cfg, log, r, env={"BOT_RISK_OVERRIDE": "live DCA stop test: no blackout hours"})


def snap(r):  # noqa: ANN001, ANN201
    return StateReader(r).snapshots([BOT]).get(BOT)


def deal(r) -> dict | None:  # noqa: ANN001
    s = snap(r)
    return s.dca["deals"][0] if s is not None and s.dca and s.dca["deals"] else None


def closed_deals(r) -> list[dict]:  # noqa: ANN001
    return [json.loads(f[b"data"]) for _, f in r.xrange(keys.deals(BOT))]


def stops(sim: SimProcess) -> list:
    return ProtectiveOrders(sim.client("futures")).open_algos(SYMBOL)


def position(sim: SimProcess) -> Decimal:
    pos = next((p for p in sim.client("futures").positions() if p.symbol == SYMBOL), None)
    return pos.amount if pos is not None else Decimal(0)


def the_stop_of(sim: SimProcess, d: dict):  # noqa: ANN201
    """The one STOP_MARKET resting for deal ``d``: reduce-only, its quantity, its stop price (one tick)."""
    rest = stops(sim)
    if len(rest) != 1:
        return None
    (o,) = rest
    leg = o.legs[0]
    if leg.quantity != Decimal(str(round(d["quantity"], 6))) or abs(float(leg.stop_price) - d["stop_price"]) > 0.11:
        return None
    assert o.kind == "stop_market" and o.side == ("SELL" if d["side"] == "long" else "BUY")
    assert o.reduce_only and not o.close_position
    return o


def open_deal(sim: SimProcess, r) -> dict:  # noqa: ANN001
    def opened():  # noqa: ANN202
        sim.admin("POST", "/admin/advance", {"steps": 1})
        return deal(r)

    return wait_for(opened, 30, "the deal to open", every=0.3)


def venue_sells(sim: SimProcess, side: str = "SELL") -> list[dict]:
    return [o for o in sim.client("futures").raw.futures_get_all_orders(symbol=SYMBOL)
            if o["side"] == side and o["status"] == "FILLED"]


def reconcile_audits(r) -> list[str]:  # noqa: ANN001
    audits = [AuditRecord.model_validate_json(f[b"data"]) for _, f in r.xrange(keys.AUDIT)]
    return [a.detail for a in audits if a.who == "reconcile"]


def test_the_stop_follows_the_average_and_is_cancelled_when_the_take_profit_closes_the_deal(
        venue, r, redis_server, tmp_path):
    w = start(config(tmp_path, redis_server.url, venue.url), tmp_path / "w.log", r)
    try:
        d = open_deal(venue, r)
        p0 = Decimal(str(d["base_price"]))
        first = wait_for(lambda: the_stop_of(venue, deal(r)), 10, "the deal's stop resting on the venue", every=0.3)
        assert first.legs[0].stop_price == pytest.approx(Decimal(str(d["stop_price"])), abs=Decimal("0.11"))
        assert abs(d["stop_price"] - d["cost"] / d["quantity"] * 0.95) < 1  # 5 % under the average
        intents = {i.client_order_id: i for i in RedisIntentStore(r).all(BOT) if i.tag == "protect"}
        assert set(intents) == {first.client_id}  # recorded intent-first under the bot's client id
        # A dip through SO1 (-1 %), not SO2 (-2 %): more quantity, a lower average, a lower stop.
        venue.set_price(SYMBOL, str((p0 * Decimal("0.985")).quantize(Decimal("0.01"))))
        wait_for(lambda: (x := deal(r)) and x["safety_filled"] == 1, 5, "the safety fill booked")
        d2 = deal(r)
        assert d2["quantity"] > d["quantity"] and d2["stop_price"] < d["stop_price"]
        second = wait_for(lambda: the_stop_of(venue, deal(r)), 10, "the stop re-placed for the new quantity/average",
                          every=0.3)
        assert second.client_id != first.client_id
        old = RedisIntentStore(r).get(BOT, first.client_id)
        assert old is not None and old.status == "CANCELED"
        # A rise through the take-profit: the deal closes and nothing of it rests on the venue.
        venue.set_price(SYMBOL, str((p0 * Decimal("1.01")).quantize(Decimal("0.01"))))
        wait_for(lambda: closed_deals(r), 5, "the take-profit closing the deal")
        wait_for(lambda: stops(venue) == [], 5, "the stop cancelled with the deal closed")
        (done,) = closed_deals(r)
        assert done["status"] == "CLOSED" and done["close_reason"] == "take profit"
        assert venue.client("futures").open_orders(SYMBOL) == []
        assert position(venue) == 0
        assert all(i.final for i in RedisIntentStore(r).all(BOT) if i.tag == "protect")
        time.sleep(2)  # reconciliation passes after the close: no drift
        assert not reconcile_audits(r)
        assert w.alive(), w.log()
    finally:
        w.stop()


def test_the_venue_stops_the_deal_while_the_worker_is_dead_and_the_restart_books_it_once(
        venue, r, redis_server, tmp_path):
    cfg = config(tmp_path, redis_server.url, venue.url, max_safety_orders=1, active_safety_orders=1)
    w = start(cfg, tmp_path / "w1.log", r)
    try:
        d = open_deal(venue, r)
        p0 = Decimal(str(d["base_price"]))
        wait_for(lambda: the_stop_of(venue, deal(r)), 10, "the deal's stop resting on the venue", every=0.3)
        venue.set_price(SYMBOL, str((p0 * Decimal("0.985")).quantize(Decimal("0.01"))))  # SO1 fills
        wait_for(lambda: (x := deal(r)) and x["safety_filled"] == 1, 5, "the safety fill booked")
        rest = wait_for(lambda: the_stop_of(venue, deal(r)), 10, "the stop for the deal after SO1", every=0.3)
        d = deal(r)
        qty, stop = d["quantity"], d["stop_price"]
        assert rest.legs[0].quantity == Decimal(str(round(qty, 6)))
        w.kill9()  # the worker dies with the deal open
        assert position(venue) == Decimal(str(round(qty, 6)))
        venue.set_price(SYMBOL, str(round(stop * 0.995, 2)))  # the market falls through the stop
        wait_for(lambda: position(venue) == 0, 20, "the venue's own stop closing the deal while no worker runs",
                 every=0.5)
        assert stops(venue) == []
        assert len(venue_sells(venue)) == 1
    finally:
        w.stop()
    w2 = start(cfg, tmp_path / "w2.log", r)
    try:
        wait_for(lambda: closed_deals(r), 30, "the restarted worker booking the venue's stop as the deal's exit")
        time.sleep(4)  # several reconciliation passes and candles: nothing is booked again, no drift
        venue.admin("POST", "/admin/advance", {"steps": 3})
        time.sleep(2)
        (done,) = closed_deals(r)
        assert done["status"] == "STOPPED" and done["close_reason"] == "stop_loss (on the venue)", done
        assert done["realized_pnl"] < 0
        trades = StateReader(r).trades(BOT)
        exits = [t for t in trades if "on the venue" in t.exit_reason]
        assert len(exits) == 1 and len(trades) == 1, [(t.exit_reason, t.quantity) for t in trades]
        assert exits[0].quantity == pytest.approx(qty)
        s = snap(r)
        assert s.positions == [] and s.dca["deals"] == [] and s.dca["resting"] == []
        assert s.realized_pnl == pytest.approx(done["realized_pnl"], abs=0.01) or s.realized_pnl < 0
        assert position(venue) == 0 and stops(venue) == []
        assert venue.client("futures").open_orders(SYMBOL) == []  # the deal's take-profit is cancelled
        assert len(venue_sells(venue)) == 1  # the venue's stop, and no exit of the bot's after it
        assert not reconcile_audits(r)
        assert s.effective_state.value == "ACTIVE"
        assert w2.alive(), w2.log()
    finally:
        w2.stop()


def test_a_flatten_cancels_the_deals_stop_first_and_exits_once(venue, r, redis_server, tmp_path):
    from state.commands import new_command, post_command
    from support import result_of

    w = start(config(tmp_path, redis_server.url, venue.url), tmp_path / "w.log", r)
    try:
        open_deal(venue, r)
        wait_for(lambda: the_stop_of(venue, deal(r)), 10, "the deal's stop resting on the venue", every=0.3)
        cmd = new_command("flatten", "bot", BOT, user="pytest", reason="test")
        post_command(r, cmd)
        res = wait_for(lambda: result_of(r, cmd.nonce), 20, "the flatten")
        assert res.status == "applied", res
        wait_for(lambda: closed_deals(r), 5, "the deal closed by the flatten")
        assert stops(venue) == []  # released before the market exit: the venue never closes the deal twice
        assert venue.client("futures").open_orders(SYMBOL) == []
        assert position(venue) == 0 and len(venue_sells(venue)) == 1
        (done,) = closed_deals(r)
        assert "on the venue" not in done["close_reason"]
        prot = [i for i in RedisIntentStore(r).all(BOT) if i.tag == "protect"]
        assert [i.status for i in prot] == ["CANCELED"]
        time.sleep(2)
        assert not reconcile_audits(r)
    finally:
        w.stop()


def test_a_short_deals_stop_that_fires_while_the_worker_runs_is_booked_once(venue, r, redis_server, tmp_path):
    cfg = config(tmp_path, redis_server.url, venue.url, side="short", max_safety_orders=1, active_safety_orders=1)
    w = start(cfg, tmp_path / "w.log", r)
    try:
        d = open_deal(venue, r)
        p0 = Decimal(str(d["base_price"]))
        assert d["stop_price"] > d["base_price"]  # a short's stop rests above, a BUY
        wait_for(lambda: the_stop_of(venue, deal(r)), 10, "the short deal's stop resting on the venue", every=0.3)
        venue.set_price(SYMBOL, str((p0 * Decimal("1.015")).quantize(Decimal("0.01"))))  # SO1 sells
        wait_for(lambda: (x := deal(r)) and x["safety_filled"] == 1, 5, "the safety fill booked")
        wait_for(lambda: the_stop_of(venue, deal(r)), 10, "the stop for the deal after SO1", every=0.3)
        d = deal(r)
        venue.set_price(SYMBOL, str(round(d["stop_price"] * 1.005, 2)))  # the market rises through the stop
        wait_for(lambda: closed_deals(r), 10, "the worker booking the venue's stop as the deal's exit")
        venue.admin("POST", "/admin/advance", {"steps": 3})  # candles beyond the stop: no software exit follows
        time.sleep(3)
        (done,) = closed_deals(r)
        assert done["status"] == "STOPPED" and done["close_reason"] == "stop_loss (on the venue)", done
        assert done["realized_pnl"] < 0
        trades = StateReader(r).trades(BOT)
        assert [t.exit_reason for t in trades] == ["stop_loss (on the venue)"]
        assert trades[0].quantity == pytest.approx(d["quantity"])
        assert len(venue_sells(venue, "BUY")) == 1  # the venue's stop, and nothing after it
        assert position(venue) == 0 and stops(venue) == []
        assert venue.client("futures").open_orders(SYMBOL) == []  # the take-profit cancelled
        assert snap(r).positions == []
        assert not reconcile_audits(r)
        assert w.alive(), w.log()
    finally:
        w.stop()
