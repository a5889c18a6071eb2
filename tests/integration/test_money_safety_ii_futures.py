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


SIG_BOT = "live-fut-sig"


def command(r, name: str) -> str:
    cmd = new_command(name, "bot", SIG_BOT, user="pytest", reason="test")
    post_command(r, cmd)
    res = wait_for(lambda: result_of(r, cmd.nonce), 20, f"the worker's answer to {name}")
    assert res.status == "applied", res
    return res.message


def close_candle(sim, r) -> None:
    """Close one candle and wait for the worker to store it (the series a USD-M bot reads)."""
    advance(sim)
    t = sim.client("futures").klines(SYMBOL, "1m", limit=1)[-1].open_time
    wait_for(lambda: (c := StateReader(r).candles(f"{SYMBOL}:futures", 1)) and c[-1].t == t, 10,
             "the worker storing the candle")


def test_a_phantom_futures_position_backs_off_its_refused_exits_and_halts_with_the_reason(r, sim, redis_server,
                                                                                         tmp_path):
    # max_hold_candles 1: the bot tries to exit on every candle while it believes it holds a position
    cfg = live_config(tmp_path, redis_server.url, sim.url, [{
        "name": SIG_BOT, "mode": "live", "market": "futures", "symbol": SYMBOL, "strategy": "webhook",
        "allocation": 1000, "sizing": {"kind": "fixed_quote", "value": 150}, "max_hold_candles": 1,
        "risk": {**OPEN_RISK, "max_loss_per_trade_value": 50}}], protective_orders=False)
    w = start_worker(cfg, tmp_path / "w.log", r, OVERRIDE)
    try:
        for _ in range(2):  # the first candle after a start may bring the one before it: both seen first
            close_candle(sim, r)
        price = wait_for(lambda: last_price(r, SIG_BOT), 30, "the bot's first price")
        send_signal(r, SIG_BOT, "BUY", stop=round(price * 0.9, 2), alert="open-1")
        qty = wait_for(lambda: held(r, SIG_BOT), 20, "the live position")
        # the position goes away on the venue behind the bot's back; the operator ignores the difference
        on_venue = venue_holding(sim, "futures")
        assert on_venue > 0, on_venue
        sim.client("futures").raw.futures_create_order(symbol=SYMBOL, side="SELL", type="MARKET",
                                                       quantity=str(on_venue))
        assert venue_holding(sim, "futures") == 0
        wait_for(lambda: drift_audits(r), 15, "reconciliation seeing the difference")
        assert "ignored" in command(r, "ignore_drift")
        command(r, "resume")
        assert held(r, SIG_BOT) == qty  # a phantom: the bot holds what the venue does not
        seen: list[str] = []
        for _ in range(10):  # ten candles: the bot tries to exit, the venue refuses the reduce-only order
            close_candle(sim, r)
            time.sleep(0.3)
            seen.append(snapshots(r)[SIG_BOT].effective_state.value)
    finally:
        w.stop()
    exits = sorted((o for o in StateReader(r).orders(SIG_BOT) if o.purpose == "EXIT"), key=lambda o: o.created_at)
    assert [o.status for o in exits] == ["REJECTED"] * 3, [(o.status, o.reason) for o in exits]
    gaps = [(b.created_at - a.created_at) // 60_000 for a, b in zip(exits, exits[1:])]
    assert gaps == [2, 4], gaps  # waited 2, then 4 candles; the third refusal halted the bot
    ctl = StateReader(r).control("bot", SIG_BOT)
    assert ctl.state.value == "HALTED" and "refused the exit of BTCUSDT 3 times in a row" in ctl.reason, ctl
    assert seen[-1] == "HALTED"
