"""Issue 12, items 9 and 10: a live DCA deal's resting orders through a real worker, the local exchange
(its market paused; the test closes the candles and moves the price) and a real redis-server.

9.  A take-profit re-placed after a take-profit step and a safety order filled in the same bar is
    sized on what the deal holds.
10. A safety order a rule refuses is marked blocked with the rule (in the snapshot the DCA tab reads)
    and placed when the rule lifts; a DCA bot that could never place its first safety order is refused
    when it is configured or saved, with the numbers.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import pytest

from safety_support import OVERRIDE, advance, drift_audits, held, intents, live_config, venue
from sim_process import SimProcess
from state.commands import new_command, post_command
from state.reader import StateReader
from support import PY, ROOT, fast_config, result_of, start_worker, wait_for, write_config

BOT = "live-dca"
SYMBOL = "BTCUSDT"
DCA = {"base_order": 20, "safety_order": 20, "deviation_pct": 1, "step_scale": 1, "volume_scale": 1,
       "max_safety_orders": 3, "active_safety_orders": 1, "take_profit_pct": 1, "stop_loss_pct": 10,
       "side": "long", "cooldown_s": 10_000_000}
RISK = {"blackout_hours_utc": None, "max_position_value": 200, "max_mode_exposure_value": 400,
        "max_orders_per_minute": 60, "max_loss_per_trade_value": 50, "daily_loss_value": 100}


@pytest.fixture
def sim(tmp_path: Path):
    s = venue(tmp_path, speed=0, seed=8)
    yield s
    s.close()


def deal(r) -> dict | None:
    s = StateReader(r).snapshots([BOT]).get(BOT)
    return s.dca["deals"][0] if s is not None and s.dca and s.dca["deals"] else None


def open_tags(r, sim: SimProcess) -> list[str]:
    recs = {i.client_order_id: i.tag for i in intents(r, BOT)}
    return sorted(recs.get(o.client_order_id, f"stray:{o.client_order_id}") for o in sim.client().open_orders(SYMBOL))


def command(r, name: str) -> None:
    cmd = new_command(name, "bot", BOT, user="pytest", reason="test")
    post_command(r, cmd)
    res = wait_for(lambda: result_of(r, cmd.nonce), 20, f"the worker's answer to {name}")
    assert res.status == "applied", res


def last_closed(sim: SimProcess) -> int:
    return sim.client().klines(SYMBOL, "1m", limit=1)[-1].open_time


def open_deal(sim: SimProcess, r) -> dict:
    """Close candles one at a time, each given time to be acted on, until the bot opens its deal."""
    for _ in range(5):
        advance(sim)
        try:
            return wait_for(lambda: deal(r), 4, "the deal to open", every=0.1)
        except AssertionError:
            continue
    raise AssertionError("no deal opened in 5 candles")


def test_a_safety_order_a_rule_refused_is_shown_blocked_and_placed_when_the_rule_lifts(r, sim, redis_server, tmp_path):
    # one order a minute of market time: the base order takes the minute, so SO1 waits for the next candle
    cfg = live_config(tmp_path, redis_server.url, sim.url, [{
        "name": BOT, "mode": "live", "kind": "dca", "market": "spot", "symbol": SYMBOL, "dca": DCA,
        "risk": {**RISK, "max_orders_per_minute": 1}}])
    w = start_worker(cfg, tmp_path / "w.log", r, OVERRIDE)
    try:
        # paused over the first candles (the first one after a start may bring the one before it too):
        # the deal opens on a candle of its own once resumed
        command(r, "pause")
        for _ in range(2):
            advance(sim)
            wait_for(lambda: StateReader(r).candles(SYMBOL, 1)[-1].t == last_closed(sim), 10, "the candle")
        command(r, "resume")
        d = open_deal(sim, r)
        assert d["safety_placed"] == 0
        assert d["blocked"].startswith("SO1 not resting") and "orders in the last minute >= 1" in d["blocked"], d["blocked"]
        assert open_tags(r, sim) == ["TP1"]
        advance(sim)  # the minute has passed on the next candle: the rule lets it
        wait_for(lambda: open_tags(r, sim) == ["SO1", "TP1"], 15, "SO1 resting on the exchange once the rule lifts")
        d = wait_for(lambda: (x := deal(r)) and not x["blocked"] and x, 10, "the deal no longer blocked")
        assert d["safety_placed"] == 1
        assert not drift_audits(r)
    finally:
        w.stop()


# The DCA form's own defaults (ui/dca.py): base 100, safety 200, no stop; a paper bot's loss limit per
# trade is 1 % of its 10,000 (PAPER_DEFAULTS): without a stop each order risks its whole notional (with
# fee and slippage): the base order 100.24 > 100, SO1 200.48 > 100.
FORM_DEFAULTS = {"base_order": 100, "safety_order": 200, "deviation_pct": 1, "step_scale": 1.5, "volume_scale": 1.5,
                 "max_safety_orders": 4, "active_safety_orders": 2, "take_profit_pct": 1, "side": "long",
                 "cooldown_s": 300}


def test_a_dca_bot_that_can_never_place_its_first_safety_order_is_refused_with_the_numbers(r, redis_server, tmp_path):
    # at config time: the worker does not start, and says why
    bad = fast_config(redis_server.url)
    bad["bots"] = [{"name": "dca-big-so", "mode": "paper", "kind": "dca", "symbol": "BTCUSDT",
                    "dca": {**FORM_DEFAULTS, "base_order": 50},
                    "risk": {"max_position_pct": 50, "max_bot_exposure_pct": 50}}]
    path = write_config(tmp_path / "bad.yaml", bad)
    run = subprocess.run([PY, str(ROOT / "bot_manager.py"), "run"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, env={**os.environ, "BOT_CONFIG": str(path)})
    out = run.stdout + run.stderr
    assert run.returncode != 0, out[-2000:]
    assert "bots.0.dca: SO1 of 200 would risk 200." in out and "> max loss per trade 100.00" in out, out[-2000:]
    # when saved from the DCA form: the running worker refuses it with the numbers and keeps running
    w = start_worker(write_config(tmp_path / "ok.yaml", fast_config(redis_server.url)), tmp_path / "w.log", r)
    try:
        payload = json.dumps({"mode": "paper", "kind": "dca", "symbol": "BTCUSDT", "dca": FORM_DEFAULTS,
                              "risk": {"max_position_pct": 50, "max_bot_exposure_pct": 50}})
        cmd = new_command("upsert_dca_bot", "bot", "dca-form", user="pytest", payload=payload)
        post_command(r, cmd)
        res = wait_for(lambda: result_of(r, cmd.nonce), 20, "the worker's answer to the save")
        assert res.status == "rejected", res
        assert "BO of 100 would risk 100.24" in res.message and "> max loss per trade 100.00" in res.message, res.message
        assert "dca-form" not in StateReader(r).bots()
        assert w.alive()
    finally:
        w.stop()


def test_a_take_profit_replaced_after_a_safety_fill_and_a_take_profit_fill_is_sized_on_what_is_held(
        r, sim, redis_server, tmp_path):
    cfg = live_config(tmp_path, redis_server.url, sim.url, [{
        "name": BOT, "mode": "live", "kind": "dca", "market": "spot", "symbol": SYMBOL,
        "dca": {**DCA, "max_safety_orders": 2}, "risk": RISK}], reconcile_every_s=30)
    w = start_worker(cfg, tmp_path / "w.log", r, OVERRIDE)
    try:
        d = open_deal(sim, r)
        wait_for(lambda: open_tags(r, sim) == ["SO1", "TP1"], 10, "SO1 and the take-profit resting")
        tp1 = next(o for o in sim.client().open_orders(SYMBOL) if o.side == "SELL")
        so1 = next(i for i in intents(r, BOT) if i.tag == "SO1")
        # Every answer of the venue 1.5 s late: while the worker books SO1 and re-places the ladder and the
        # take-profit, the old take-profit trades in part; the bot learns it only when it replaces it.
        sim.faults(latency_ms=1500)
        sim.set_price(SYMBOL, str((Decimal(str(d["base_price"])) * Decimal("0.988")).quantize(Decimal("0.01"))))
        wait_for(lambda: next(i for i in intents(r, BOT) if i.tag == "SO1").status == "FILLED", 10,
                 "SO1 filled on the venue")
        sim.admin("POST", "/admin/price", {"symbol": SYMBOL, "price": str(tp1.price * Decimal("1.001")),
                                           "volume": "0.0002"})  # thin: a third of the take-profit trades
        # back under where the new take-profit will go (and above SO2), before the worker places it
        sim.set_price(SYMBOL, str((Decimal(str(d["base_price"])) * Decimal("0.995")).quantize(Decimal("0.01"))))
        wait_for(lambda: (x := deal(r)) and x["safety_filled"] == 1 and x["tp_steps_filled"] >= 1, 30,
                 "the deal booking SO1 and the take-profit's part")
        time.sleep(2)
        sim.clear()
        tps = [i for i in intents(r, BOT) if i.tag.startswith("TP")]
        assert not [i for i in tps if i.status == "REJECTED"], [(i.tag, i.quantity, i.reason) for i in tps]
        held_now = Decimal(str(held(r, BOT)))
        resting = [o for o in sim.client().open_orders(SYMBOL) if o.side == "SELL"]
        assert len(resting) == 1, resting
        left = resting[0].orig_qty - resting[0].executed_qty
        assert Decimal("0") <= held_now - left < Decimal("0.00001"), (held_now, left)
        assert so1.client_order_id not in {o.client_order_id for o in sim.client().open_orders(SYMBOL)}
    finally:
        w.stop()
