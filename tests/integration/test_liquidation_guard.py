"""Futures on the local exchange: a leveraged position driven toward liquidation is alerted at 80%
of the way (REDUCE_ONLY) and closed at 90% by the bot's own reduce-only order, before the exchange
liquidates it. Real worker, real exchange, real Redis."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from sim_process import SimProcess
from state import keys
from state.models import AuditRecord
from support import snapshots, start_worker, wait_for, write_config

BOT = "live-lev"


@pytest.fixture
def sim(tmp_path: Path):
    p = SimProcess(tmp_path / "exchange.log", "--source", "synthetic", "--symbols", "BTCUSDT", "--seed", "9",
                   "--speed", "600", "--warmup", "60")
    yield p
    p.close()


def test_liquidation_alert_then_close_before_the_venue_liquidates(r, redis_server, sim, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "config.yaml", {
        "redis": {"url": redis_server.url, "embedded": False},
        "market": {"source": "exchange", "symbols": ["BTCUSDT"], "warmup_candles": 30, "speed": 600},
        "exchange": {"venue": "local", "local_url": sim.url, "reconcile_every_s": 1},
        "worker": {"heartbeat_ttl_s": 3, "heartbeat_every_s": 0.3},
        "bots": [{"name": BOT, "mode": "live", "market": "futures", "symbol": "BTCUSDT", "strategy": "rsi_reversion",
                  # buys as soon as RSI(14) crosses 49; sells only when it falls back under 99 (practically
                  # never), so no signal closes the position: only the liquidation guard can
                  "params": {"period": 14, "oversold": 49, "overbought": 99},
                  "sizing": {"kind": "fixed_quote", "value": 200},
                  # 20x and no stop, so that only the liquidation guard stands between the bot and the venue's
                  # liquidation engine (raised live ceilings: allowed by the audited override only)
                  "risk": {"max_leverage": 20, "max_position_value": 500, "max_mode_exposure_value": 500,
                           "max_loss_per_trade_value": 1000, "blackout_hours_utc": None, "min_entry_interval_s": 0}}],
    })
    w = start_worker(cfg, tmp_path / "worker.log", r, {"BOT_RISK_OVERRIDE": "liquidation guard test"})
    client = sim.client("futures")
    try:
        pos = wait_for(lambda: next(iter(client.positions()), None), 60, "the bot's futures position")
        sim.speed(0)  # freeze the market: from here only our price moves, and no new signals come
        pos = next(iter(client.positions()))
        assert pos.leverage == 20
        entry, liq = float(pos.entry_price), float(pos.liquidation_price)
        assert liq > 0
        seen: list[str] = []
        for i in range(1, 200):
            # walk the price 0.5 % of the distance at a time toward the liquidation price
            price = entry + (liq - entry) * min(0.97, i * 0.005)
            sim.set_price("BTCUSDT", f"{price:.1f}")
            time.sleep(0.05)
            seen = [a.command for a in (AuditRecord.model_validate_json(f[b"data"])
                                        for _, f in r.xrange(keys.AUDIT)) if a.who == "risk"]
            if "liquidation_reduce" in seen and not client.positions():
                break
        assert seen[:2] == ["liquidation_alert", "liquidation_reduce"], seen
        shown = snapshots(r)[BOT].risk  # what the dashboard's risk panel showed at the last check
        assert shown.liquidation_distance_pct is not None and shown.liquidation_distance_pct >= 80
        assert shown.margin_utilization_pct is not None and 0 < shown.margin_utilization_pct < 50
        assert not client.positions(), "the position is still open"
        orders = client.raw.futures_get_all_orders(symbol="BTCUSDT")
        closing = orders[-1]
        assert closing["reduceOnly"] is True and closing["clientOrderId"].startswith("tb"), closing  # ours
        assert r.hget(keys.control("bot", BOT), "state") == b"REDUCE_ONLY"
        audit = [json.loads(f[b"data"]) for _, f in r.xrange(keys.AUDIT)]
        assert any(a["command"] == "risk_override" for a in audit)
    finally:
        w.stop()
