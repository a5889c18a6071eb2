"""Issue 12, items 1 and 3: a crash between the venue's answer and the commit of the bot's books loses
nothing. The worker is a real process that kills itself with SIGKILL at the exact point
(``BOT_CHAOS``, ops/chaos.py); the exchange is the local one with its market paused (the test closes
the candles) and Redis a real redis-server.

1. ``kill_after_fill``: a market entry's fills are recorded on its intent (FILLED) and the worker dies
   before the bot's books are saved; the candle is not replayed. The restart books the fills once and
   the bot does not open the same position again.
3. ``kill_after_send_exit``: a signal bot's take-profit exit (decided at its level, sent at market)
   reaches the venue and the worker dies before the answer is recorded. The restart resolves it and
   books the exit once.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from safety_support import (OPEN_RISK, OVERRIDE, advance, assert_booked_once, baseline, drift_audits, held, intents,
                            last_price, live_config, send_signal, venue, venue_holding)
from state.reader import StateReader
from support import start_worker, wait_for

BOT = "live-crash"
DUST = 0.00001  # spot: what a lot step leaves of a fee-reduced holding


@pytest.fixture
def sim(tmp_path: Path):
    s = venue(tmp_path, speed=0, seed=5)
    yield s
    s.close()


def test_fills_recorded_on_the_intent_but_not_in_the_saved_books_are_booked_once_at_restart(
        r, sim, redis_server, tmp_path):
    cfg = live_config(tmp_path, redis_server.url, sim.url, [{
        "name": BOT, "mode": "live", "symbol": "BTCUSDT", "strategy": "momentum",
        "params": {"window": 2, "threshold_pct": 0.01, "stop_loss_pct": 5.0},
        "sizing": {"kind": "fixed_quote", "value": 30}, "risk": OPEN_RISK}], protective_orders=False)
    w = start_worker(cfg, tmp_path / "w1.log", r, {**OVERRIDE, "BOT_CHAOS": "kill_after_fill"})
    try:
        def died() -> bool:  # close candles until the bot's first entry fills and the worker dies there
            if w.alive():
                advance(sim)
            return not w.alive()

        wait_for(died, 60, "the worker to die right after its first fill", every=0.3)
    finally:
        w.stop()
    (first,) = intents(r, BOT)
    assert first.status == "FILLED" and first.fills and first.purpose == "ENTRY"
    assert held(r, BOT) == 0.0  # the books were never saved with it
    qty = venue_holding(sim, "spot")
    assert qty > 0
    w2 = start_worker(cfg, tmp_path / "w2.log", r, OVERRIDE)
    try:
        wait_for(lambda: held(r, BOT) > 0, 30, "the restarted worker booking the lost fill")
        for _ in range(6):  # candles and reconciliation passes after the restart
            advance(sim)
            time.sleep(0.5)
        wait_for(lambda: all(i.final for i in intents(r, BOT)), 20, "no order in flight")
    finally:
        w2.stop()
    assert_booked_once(r, sim, BOT, "spot")
    later = [i for i in intents(r, BOT) if i.created_at > first.created_at]
    assert not later or later[0].purpose != "ENTRY", "the bot opened the same position again"
    assert abs(float(venue_holding(sim, "spot") - baseline(r, BOT)) - held(r, BOT)) < 1e-6
    assert not drift_audits(r), drift_audits(r)


def test_a_take_profit_exit_in_flight_at_a_crash_is_recovered_and_booked_once(r, sim, redis_server, tmp_path):
    cfg = live_config(tmp_path, redis_server.url, sim.url, [{
        "name": BOT, "mode": "live", "symbol": "BTCUSDT", "strategy": "webhook",
        "sizing": {"kind": "fixed_quote", "value": 30}, "risk": OPEN_RISK}], protective_orders=False)
    w = start_worker(cfg, tmp_path / "w1.log", r, {**OVERRIDE, "BOT_CHAOS": "kill_after_send_exit"})
    try:
        advance(sim)
        price = wait_for(lambda: last_price(r, BOT), 30, "the bot's first price")
        take = round(price * 1.02, 2)
        send_signal(r, BOT, "BUY", stop=round(price * 0.9, 2), take=take, alert="tp-1")
        wait_for(lambda: held(r, BOT), 20, "the live position")
        sim.set_price("BTCUSDT", str(round(take * 1.01, 2)))  # the market trades through the take-profit

        def died() -> bool:  # the candle closes above it: the bot exits, the worker dies after the send
            if w.alive():
                advance(sim)
            return not w.alive()

        wait_for(died, 30, "the worker to die right after sending the take-profit exit", every=0.3)
    finally:
        w.stop()
    exit_rec = next(i for i in intents(r, BOT) if i.purpose == "EXIT")
    assert exit_rec.status == "INTENT"  # sent, the answer never recorded
    assert venue_holding(sim, "spot") - baseline(r, BOT) < DUST  # the venue sold it
    assert held(r, BOT) > 0  # the books still hold it
    w2 = start_worker(cfg, tmp_path / "w2.log", r, OVERRIDE)
    try:
        wait_for(lambda: held(r, BOT) < DUST, 30, "the restarted worker booking the take-profit exit")
        for _ in range(4):
            advance(sim)
            time.sleep(0.5)
    finally:
        w2.stop()
    rec = next(i for i in intents(r, BOT) if i.client_order_id == exit_rec.client_order_id)
    assert rec.status == "FILLED"
    assert_booked_once(r, sim, BOT, "spot")
    trades = StateReader(r).trades(BOT)
    # the only exit this position could take: its take-profit (the stop is 10 % below, no time limit)
    assert [t.exit_reason for t in trades] == [f"recovered {exit_rec.client_order_id}"]
    assert not drift_audits(r), drift_audits(r)
