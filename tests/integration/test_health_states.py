"""A sick market or venue is acted on, not only logged: a silent market-data feed and a rate-limit ban
each move the affected bots to REDUCE_ONLY by themselves and back to ACTIVE once healthy; the worker
leaves a health view (market data age on the wall clock, last REST success, weight, ban) for the
dashboard's venue status line. Real worker, real local exchange, real Redis.

Before: the stale-price rule compared a candle's close with the bot's own "now" (that same close), so
a feed that stopped was never stale; bans and silent feeds went only to the log."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim_process import SimProcess
from state import keys
from support import start_worker, wait_for, write_config

LIVE = "live-h"
PAPER = "paper-h"


@pytest.fixture
def stack(r, redis_server, tmp_path: Path):  # type: ignore[no-untyped-def]
    sim = SimProcess(tmp_path / "exchange.log", "--source", "synthetic", "--symbols", "BTCUSDT", "--seed", "5",
                     "--speed", "600", "--warmup", "60")
    cfg = write_config(tmp_path / "config.yaml", {
        "redis": {"url": redis_server.url, "embedded": False},
        "market": {"source": "exchange", "symbols": ["BTCUSDT"], "warmup_candles": 30, "speed": 600},
        "exchange": {"venue": "local", "local_url": sim.url, "reconcile_every_s": 1, "stale_after_s": 2},
        "worker": {"heartbeat_ttl_s": 3, "heartbeat_every_s": 0.3},
        "bots": [
            {"name": LIVE, "mode": "live", "symbol": "BTCUSDT", "strategy": "momentum",
             "params": {"window": 50, "threshold_pct": 50}, "risk": {"blackout_hours_utc": None}},
            {"name": PAPER, "mode": "paper", "symbol": "BTCUSDT", "strategy": "momentum",
             "params": {"window": 50, "threshold_pct": 50}},
        ],
    })
    w = start_worker(cfg, tmp_path / "worker.log", r, {"BOT_RISK_OVERRIDE": "test: no blackout hours"})
    yield r, sim, w
    w.stop()
    sim.close()


def control(r, bot: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    rec = {k.decode(): v.decode() for k, v in r.hgetall(keys.control("bot", bot)).items()}
    return rec.get("state", "ACTIVE"), rec.get("set_by", "")


def view(r) -> dict:  # type: ignore[no-untyped-def, type-arg]
    raw = r.get(keys.HEALTH)
    return json.loads(raw) if raw else {}


def test_a_silent_feed_holds_every_bot_on_it_in_reduce_only_and_releases_them(stack) -> None:  # type: ignore[no-untyped-def]
    r, sim, w = stack
    wait_for(lambda: view(r).get("market_data_age_s", {}).get("BTCUSDT") is not None, 30, "market data")
    assert control(r, LIVE)[0] == "ACTIVE" and control(r, PAPER)[0] == "ACTIVE"
    # the trading loop's latency for the health panel (a candle batch in -> committed), measured as it runs
    loop = wait_for(lambda: (v := view(r)).get("loop_samples") and v, 10, "the loop latency in the view")
    assert 0 < loop["loop_ms_p50"] <= loop["loop_ms_p99"], loop
    # a fresh live bot's equity points are at market times (none at time 0 before its first candle)
    times = [json.loads(f[b"data"])["time"] for _, f in r.xrange(keys.equity(LIVE))]
    assert times and min(times) > 10**12, times[:3]
    sim.admin("POST", "/admin/speed", {"speed": 0})  # the market stops: no more candles
    wait_for(lambda: control(r, LIVE) == ("REDUCE_ONLY", "health") and control(r, PAPER) == ("REDUCE_ONLY", "health"),
             20, "both bots held by health")
    reason = r.hget(keys.control("bot", PAPER), "reason").decode()
    assert "no market data for BTCUSDT" in reason
    # the dashboard's view says why, with the age on the wall clock
    held = wait_for(lambda: (v := view(r)).get("held", {}).get(PAPER) and v, 10, "the held bots in the view")
    assert "no market data for BTCUSDT" in held["held"][PAPER][0]
    sim.admin("POST", "/admin/speed", {"speed": 600})
    wait_for(lambda: control(r, LIVE)[0] == "ACTIVE" and control(r, PAPER)[0] == "ACTIVE", 20, "both bots released")
    assert w.alive()


def test_a_ban_holds_the_venue_bots_and_not_the_others(stack) -> None:  # type: ignore[no-untyped-def]
    r, sim, w = stack
    wait_for(lambda: view(r).get("markets", {}).get("spot", {}).get("last_ok_ms", 0) > 0, 30, "a REST success")
    sim.admin("POST", "/admin/faults", {"rate_limit_burst": 100_000})  # the next requests hit 429, then 418
    wait_for(lambda: control(r, LIVE) == ("REDUCE_ONLY", "health"), 30, "the live bot held by health")
    # The ban also stops the REST gap-fill of the market data, so the stale-data rule may hold the bot
    # first (its record then names that reason): the health view lists every reason holding a bot, and
    # the ban must be among the live bot's, with the ban's end in the venue's line.
    held = wait_for(lambda: (v := view(r)) and any("banned" in x for x in v.get("held", {}).get(LIVE, [])) and v,
                    10, "the ban among the reasons holding the live bot")
    assert held["markets"]["spot"]["blocked_until_ms"] > 0
    reason = r.hget(keys.control("bot", LIVE), "reason").decode()
    assert "banned" in reason or "no market data" in reason, reason
    # a paper bot on the simulated venue is not held by the venue's ban
    assert not any("banned" in x for x in held.get("held", {}).get(PAPER, [])), held["held"]
    wait_for(lambda: control(r, LIVE)[0] == "ACTIVE", 120, "the live bot released when the ban ends")
