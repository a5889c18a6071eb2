"""The Live tab in a real browser: a live bot on the local exchange trades, and Close all
positions leaves it flat on the venue (real worker, exchange, Redis and dashboard)."""
from __future__ import annotations

import sys

import pytest
from playwright.sync_api import Page, expect

from conftest import wait_for_app_run
from ops.redis_server import stop
from support import ROOT, RedisServer, snapshots, start_dashboard, start_worker, wait_for, write_config

sys.path.insert(0, str(ROOT / "tests" / "integration"))
from sim_process import SimProcess  # noqa: E402

BOT = "live-e2e"


@pytest.fixture(scope="module")
def live_stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("live")
    redis_server = RedisServer(tmp / "redis")
    sim = SimProcess(tmp / "exchange.log", "--source", "synthetic", "--symbols", "BTCUSDT", "--seed", "3",
                     "--speed", "600", "--warmup", "60")
    cfg = write_config(tmp / "config.yaml", {
        "redis": {"url": redis_server.url, "embedded": False},
        "market": {"source": "exchange", "symbols": ["BTCUSDT"], "warmup_candles": 30, "speed": 600},
        "exchange": {"venue": "local", "local_url": sim.url, "reconcile_every_s": 2},
        "worker": {"heartbeat_ttl_s": 3, "heartbeat_every_s": 0.3},
        "bots": [{"name": BOT, "mode": "live", "symbol": "BTCUSDT", "strategy": "rsi_reversion",
                  "params": {"period": 14, "oversold": 49, "overbought": 99, "stop_loss_pct": 5},
                  "sizing": {"kind": "fixed_quote", "value": 40}, "risk": {"blackout_hours_utc": None,
                                                                          "min_entry_interval_s": 0}}],
    })
    r = redis_server.client()
    worker = dash = None
    try:
        worker = start_worker(cfg, tmp / "worker.log", r, {"BOT_RISK_OVERRIDE": "e2e: no blackout hours"})
        dash, url = start_dashboard(cfg, redis_server.url, tmp / "dashboard.log")
        yield url, r, sim
    finally:
        if dash is not None:
            stop(dash)
        if worker is not None:
            worker.stop()
        sim.close()
        redis_server.close()


def btc_on_venue(sim: SimProcess) -> float:
    b = sim.client().balances().get("BTC")
    return float(b.total) if b is not None else 0.0


def test_live_bot_trades_and_close_all_leaves_it_flat_on_the_venue(page: Page, live_stack) -> None:
    url, r, sim = live_stack
    wait_for(lambda: (s := snapshots(r).get(BOT)) is not None and s.position is not None, 90, "a live position")
    assert btc_on_venue(sim) > 0
    page.set_viewport_size({"width": 1500, "height": 1800})
    page.goto(url)
    wait_for_app_run(page)
    page.get_by_role("tab", name="Live").click()
    live = page.get_by_role("tabpanel", name="Live")
    expect(live.locator(f".st-key-venue_{BOT}")).to_contain_text("no real money")
    expect(live.locator(f".st-key-preflight_{BOT}")).to_contain_text("passed")
    expect(live).to_contain_text("Fills")
    sim.speed(0)  # hold the market so no new entry follows the close
    live.locator(f".st-key-live_flatten_{BOT}").get_by_role("button", name="Close all positions").click()
    dialog = page.get_by_test_id("stDialog")
    expect(dialog).to_contain_text("at market now")
    dialog.locator(".st-key-confirm_send button").click()
    wait_for(lambda: snapshots(r)[BOT].position is None, 10, "the bot flat in Redis")
    assert btc_on_venue(sim) < 1e-5  # flat on the venue (lot-size dust at most)
    expect(live.locator(f".st-key-live_state_{BOT}")).to_contain_text("PAUSED", timeout=5_000)
