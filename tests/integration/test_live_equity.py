"""Live equity is real: a live bot's equity is its allocation on the venue plus its P&L (not the
10,000 paper balance, against which a 20 % drawdown limit of ~2,000 could never bind a $50 bot), and an
account-level loss limit across all live bots, on the account's mark-to-market equity, flattens and
halts every live bot. Real worker, real local exchange, real Redis."""
from __future__ import annotations

from pathlib import Path

from sim_process import SimProcess
from state import keys
from state.reader import StateReader
from support import snapshots, start_worker, wait_for, write_config


def config(redis_url: str, sim_url: str, **live: object) -> dict:  # type: ignore[type-arg]
    bot = {"mode": "live", "symbol": "BTCUSDT", "strategy": "momentum", "params": {"window": 50, "threshold_pct": 50},
           "risk": {"blackout_hours_utc": None}}
    return {
        "redis": {"url": redis_url, "embedded": False},
        "market": {"source": "exchange", "symbols": ["BTCUSDT"], "warmup_candles": 30, "speed": 600},
        "exchange": {"venue": "local", "local_url": sim_url, "reconcile_every_s": 1},
        "live": live,
        "bots": [{"name": "live-a", "allocation": 60, **bot}, {"name": "live-b", **bot}],
    }


def test_a_live_bots_equity_is_its_allocation_and_its_limits_bind_on_it(r, redis_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sim = SimProcess(tmp_path / "exchange.log", "--source", "synthetic", "--symbols", "BTCUSDT", "--seed", "5",
                     "--speed", "600", "--warmup", "60")
    w = start_worker(write_config(tmp_path / "c.yaml", config(redis_server.url, sim.url)), tmp_path / "w.log", r,
                     {"BOT_RISK_OVERRIDE": "test: no blackout hours"})
    try:
        wait_for(lambda: {"live-a", "live-b"} <= set(snapshots(r)), 30, "both snapshots")
        a, b = snapshots(r)["live-a"], snapshots(r)["live-b"]
        assert a.starting_balance == 60 and abs(a.equity - 60) < 1e-9     # its own allocation
        assert b.starting_balance == 100 and abs(b.equity - 100) < 1e-9    # capped by the mode's exposure limit
        assert a.risk.high_water == 60  # the 20 % drawdown limit now means 12 USDT for this bot
        audits = [x for x in StateReader(r).audit() if x.command == "allocate"]
        assert {x.target for x in audits} == {"live-a", "live-b"} and "account holds 10,000.00" in audits[0].detail
        w.stop()
        w = start_worker(tmp_path / "c.yaml", tmp_path / "w.log", r, {"BOT_RISK_OVERRIDE": "test"})
        assert snapshots(r)["live-a"].starting_balance == 60  # kept across a restart, not re-read
    finally:
        w.stop()
        sim.close()


def test_an_account_drawdown_flattens_and_halts_every_live_bot(r, redis_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sim = SimProcess(tmp_path / "exchange.log", "--source", "synthetic", "--symbols", "BTCUSDT", "--seed", "5",
                     "--speed", "600", "--warmup", "60", "--balances", "USDT=10000,BTC=1")
    cfg = write_config(tmp_path / "c.yaml", config(redis_server.url, sim.url, account_max_drawdown_pct=10))
    w = start_worker(cfg, tmp_path / "w.log", r, {"BOT_RISK_OVERRIDE": "test: no blackout hours"})
    try:
        wait_for(lambda: r.get(keys.ACCOUNT_GUARD) is not None, 30, "the account guard's first look")
        sim.admin("POST", "/admin/speed", {"speed": 0})  # hold the market where it is put
        price = float(sim.client().price("BTCUSDT"))
        sim.admin("POST", "/admin/price", {"symbol": "BTCUSDT", "price": price * 0.5})  # the held BTC halves
        for bot in ("live-a", "live-b"):
            wait_for(lambda n=bot: r.hget(keys.control("bot", n), "state") == b"HALTED", 30, f"{bot} halted")
            reason = r.hget(keys.control("bot", bot), "reason").decode()
            assert "account (all live bots)" in reason and ("drawdown" in reason or "daily loss" in reason)
    finally:
        w.stop()
        sim.close()
