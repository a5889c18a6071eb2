"""A user strategy file dropped in the strategies folder runs in the real worker (real Redis, the local
exchange over HTTP/WebSocket) as a ghost, a paper and a live bot, with no code change elsewhere; a strategy
with informative timeframes trades there too; a broken file beside them is skipped, named in the log, and
the worker runs on."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sim_process import SimProcess
from state.intents import RedisIntentStore
from support import LOOSE_RISK, ROOT, snapshots, start_worker, wait_for, write_config

HTF = '''
from pydantic import BaseModel, ConfigDict
from core.types import Side, Signal

class P(BaseModel):
    model_config = ConfigDict(extra="forbid")

class FiveMinuteTurn:
    """BUY when the last closed 5m candle rose, SELL when it fell (only closed 5m candles are handed in)."""
    name = "five_minute_turn"
    Params = P
    informative = {"5m": 2}

    def __init__(self, params):
        self.warmup = 2

    def evaluate(self, candles, informative):
        a, b = informative["5m"]
        if candles[-1].open_time + 60_000 < b.open_time + 300_000:
            raise AssertionError("handed a 5m candle that had not closed")
        if b.open_time % 300_000 or b.open_time - a.open_time != 300_000:
            raise AssertionError("5m candles not aligned")
        fresh = candles[-1].open_time + 60_000 == b.open_time + 300_000  # the 5m candle that just closed
        if not fresh:
            return Signal.none("waiting for the next 5m close")
        return Signal(Side.BUY if b.close > b.open else Side.SELL, 1.0, "5m candle direction")
'''


@pytest.fixture
def venue(tmp_path: Path):
    sim = SimProcess(tmp_path / "exchange.log", "--source", "synthetic", "--symbols", "BTCUSDT", "--seed", "5",
                     "--speed", "600", "--warmup", "60")
    yield sim
    sim.close()


def test_user_strategy_runs_in_ghost_paper_and_live(r, redis_server, venue, tmp_path: Path) -> None:
    folder = tmp_path / "user_strategies"
    folder.mkdir()
    shutil.copy(ROOT / "user_strategies" / "donchian_breakout.py", folder)
    (folder / "five_minute_turn.py").write_text(HTF)
    (folder / "broken.py").write_text("class Oops(\n")
    live_risk = {"blackout_hours_utc": None, "min_entry_interval_s": 0, "max_position_pct": 50,
                 "max_mode_exposure_value": 1000, "max_position_value": 200}
    dc = {"strategy": "donchian_breakout", "params": {"window": 3}, "symbol": "BTCUSDT"}
    cfg = write_config(tmp_path / "config.yaml", {
        "redis": {"url": redis_server.url, "embedded": False},
        "market": {"source": "exchange", "symbols": ["BTCUSDT"], "warmup_candles": 30, "speed": 600},
        "exchange": {"venue": "local", "local_url": venue.url, "reconcile_every_s": 1},
        "worker": {"heartbeat_ttl_s": 3, "heartbeat_every_s": 0.3},
        "bots": [
            {"name": "u-ghost", "mode": "ghost", **dc, "risk": LOOSE_RISK},
            {"name": "u-paper", "mode": "paper", **dc, "risk": LOOSE_RISK,
             "sizing": {"kind": "fixed_quote", "value": 50}},
            {"name": "u-live", "mode": "live", **dc, "params": {"window": 3, "stop_loss_pct": 2}, "allocation": 1000, "risk": live_risk,
             "sizing": {"kind": "fixed_quote", "value": 30}},
            {"name": "u-htf", "mode": "paper", "symbol": "BTCUSDT", "strategy": "five_minute_turn",
             "risk": LOOSE_RISK, "sizing": {"kind": "fixed_quote", "value": 50}},
        ],
    })
    w = start_worker(cfg, tmp_path / "worker.log", r, {"BOT_RISK_OVERRIDE": "user strategy test: no blackout"})
    try:
        wait_for(lambda: snapshots(r).get("u-ghost") and snapshots(r)["u-ghost"].signals_total > 0, 60,
                 "a ghost signal of the user strategy")
        wait_for(lambda: snapshots(r).get("u-paper") and snapshots(r)["u-paper"].orders_sent > 0, 60,
                 "a paper order of the user strategy")
        try:
            intent = wait_for(lambda: next((i for i in RedisIntentStore(r).all("u-live") if i.status == "FILLED"),
                                           None), 60, "a live order of the user strategy filled on the local exchange")
        except AssertionError:
            raise AssertionError(f"{snapshots(r).get('u-live')}\n{w.log()[-3000:]}") from None
        assert intent.venue == "local"
        wait_for(lambda: snapshots(r).get("u-htf") and snapshots(r)["u-htf"].orders_sent > 0, 90,
                 "a paper order of the informative-timeframe strategy")
        snaps = snapshots(r)
        assert snaps["u-live"].strategy == "donchian_breakout" and snaps["u-htf"].strategy == "five_minute_turn"
        assert w.alive()
        log = w.log()
        assert f"user strategy skipped: {folder / 'broken.py'}:1: syntax error" in log
        assert "AssertionError" not in log  # the 5m candles handed in were closed and aligned
    finally:
        w.stop()
