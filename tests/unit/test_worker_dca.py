"""DCA bots inside the worker: config bots, bots created and edited from the dashboard (a command),
persisted deals across a restart."""
from __future__ import annotations

import json

import fakeredis

from core.clock import SimClock
from core.types import INTERVAL_MS, Candle
from engine.dca_bot import DcaBot
from engine.worker import Worker
from market.feed import ReplayFeed
from settings import AppConfig
from state import keys
from state.commands import new_command
from state.reader import StateReader

T0 = 1_704_067_200_000
M = INTERVAL_MS["1m"]
DCA = {"base_order": 100, "safety_order": 200, "deviation_pct": 1, "step_scale": 1, "volume_scale": 1,
       "max_safety_orders": 2, "active_safety_orders": 2, "take_profit_pct": 1, "cooldown_s": 86_400}
RISK = {"max_position_pct": 100, "max_loss_per_trade_pct": None, "daily_loss_pct": None, "max_drawdown_pct": None}


def candles(prices: list[tuple[float, float, float, float]], symbol: str = "ETHUSDT") -> list[Candle]:
    # volume 1000: the paper fill model takes at most 10 % of a candle's volume (realistic), far more than these orders
    return [Candle(symbol, T0 + i * M, o, h, lo, c, 1000.0) for i, (o, h, lo, c) in enumerate(prices)]


def app(bots: list[dict]) -> AppConfig:
    return AppConfig(market={"symbols": ["BTCUSDT", "ETHUSDT"], "warmup_candles": 2},
                     paper={"fee_pct": 0.0, "slippage_bps": 0}, bots=bots)


def run(worker: Worker, series: list[Candle]) -> None:
    for c in series:
        worker.step([c])


def test_config_dca_bot_runs_a_whole_deal_and_records_it() -> None:
    r = fakeredis.FakeRedis()
    series = candles([(100, 100, 100, 100)] * 3 + [(100, 100, 100, 100), (100, 100, 98.5, 98.6),
                                                   (98.6, 98.6, 97.5, 97.8), (97.8, 100, 97.8, 99.9)])
    w = Worker(app([{"name": "d", "mode": "paper", "kind": "dca", "symbol": "ETHUSDT", "dca": DCA, "risk": RISK}]),
               r, ReplayFeed([]), clock=SimClock(T0))
    w.start()
    run(w, series[3:])
    bot = w.bots["d"]
    assert isinstance(bot, DcaBot) and not bot.deals
    (deal,) = [json.loads(f[b"data"]) for _, f in r.xrange(keys.deals("d"))]
    # BO 100 @ 100, SO1 200 @ 99, SO2 200 @ 98: cost 500, qty 1 + 2.0202 + 2.0408 = 5.0610
    assert deal["status"] == "CLOSED" and deal["safety_filled"] == 2
    assert deal["realized_pnl"] > 4.9   # ~1 % of 500
    snap = StateReader(r).snapshots()["d"]
    assert snap.trade_count == 1 and snap.dca is not None and snap.dca["deals"] == []


def test_dashboard_creates_edits_and_restarts_a_dca_bot() -> None:
    r = fakeredis.FakeRedis()
    base = app([])
    w = Worker(base, r, ReplayFeed([]), clock=SimClock(T0))
    w.start()
    payload = json.dumps({"mode": "paper", "kind": "dca", "symbol": "ETHUSDT", "dca": DCA, "risk": RISK})
    res = w.handle_command("1-0", new_command("upsert_dca_bot", "bot", "new-dca", payload=payload).fields())
    assert res.status == "applied" and "created" in res.message
    assert "new-dca" in StateReader(r).bots() and r.hexists(keys.DYNAMIC_BOTS, "new-dca")
    run(w, candles([(100, 100, 100, 100), (100, 100, 98.5, 98.6)]))
    assert w.bots["new-dca"].deals["ETHUSDT"].safety_filled == 1
    edited = json.dumps({"mode": "paper", "kind": "dca", "symbol": "ETHUSDT", "dca": {**DCA, "take_profit_pct": 3},
                         "risk": RISK})
    res = w.handle_command("2-0", new_command("upsert_dca_bot", "bot", "new-dca", payload=edited).fields())
    assert res.status == "applied" and "new deals" in res.message
    deal = w.bots["new-dca"].deals["ETHUSDT"]
    assert deal.config["take_profit_pct"] == 1.0        # the running deal keeps its snapshot
    # restart: the bot comes back from Redis with its open deal and resting orders
    w2 = Worker(base, r, ReplayFeed([]), clock=SimClock(T0))
    w2.start()
    again = w2.bots["new-dca"]
    assert isinstance(again, DcaBot) and again.settings.take_profit_pct == 3
    assert again.deals["ETHUSDT"].safety_filled == 1 and again.venue.book


def test_bad_dca_payload_is_rejected_naming_the_field() -> None:
    r = fakeredis.FakeRedis()
    w = Worker(app([]), r, ReplayFeed([]), clock=SimClock(T0))
    w.start()
    bad = json.dumps({"mode": "paper", "kind": "dca", "symbol": "ETHUSDT", "dca": {**DCA, "deviation_pct": -1}})
    res = w.handle_command("1-0", new_command("upsert_dca_bot", "bot", "x", payload=bad).fields())
    assert res.status == "rejected" and "deviation_pct" in res.message
    live = json.dumps({"mode": "live", "kind": "dca", "symbol": "ETHUSDT", "dca": DCA})
    res = w.handle_command("2-0", new_command("upsert_dca_bot", "bot", "y", payload=live).fields())
    assert res.status == "rejected" and "live" in res.message
    assert "x" not in w.bots and "y" not in w.bots


def test_a_dca_start_signal_sees_the_same_history_as_a_signal_bot() -> None:
    """EMA and RSI are seeded from the whole window: a DCA bot starting on a strategy's signal keeps
    the window a signal bot of that strategy keeps, so both see the same signals."""
    from engine.bot import Bot
    from engine.assembly import build_bot
    from core.types import TradingState

    params = {"fast": 20, "slow": 120}
    cfg = app([{"name": "sig", "mode": "paper", "symbol": "ETHUSDT", "strategy": "ema_crossover", "params": params},
               {"name": "dca", "mode": "paper", "kind": "dca", "symbol": "ETHUSDT", "strategy": "ema_crossover",
                "params": params, "dca": {**DCA, "start_condition": "signal"}, "risk": RISK}])
    sig, dca = (build_bot(b, cfg, lambda _b: TradingState.ACTIVE) for b in cfg.bots)
    assert isinstance(sig, Bot) and isinstance(dca, DcaBot)
    assert dca.history["ETHUSDT"].maxlen == sig.history.maxlen > 120


def test_halt_cancels_the_resting_ladder_and_resume_puts_it_back() -> None:
    """HALTED means no order may stay working: a halt cancels the deal's resting safety orders and
    take-profit (said in the orders history); after a resume the next candle places them again,
    at the same levels, and the deal carries on."""
    r = fakeredis.FakeRedis()
    w = Worker(app([{"name": "d", "mode": "paper", "kind": "dca", "symbol": "ETHUSDT", "dca": DCA, "risk": RISK}]),
               r, ReplayFeed([]), clock=SimClock(T0))
    w.start()
    series = candles([(100, 100, 100, 100)] * 4)
    run(w, series[:1])
    bot = w.bots["d"]
    assert isinstance(bot, DcaBot)
    before = sorted((o.tag, o.price) for o in bot.venue.open_orders())
    assert [t for t, _ in before] == ["SO1", "SO2", "TP1"]
    res = w.handle_command("1-0", new_command("halt", "bot", "d").fields())
    assert res.status == "applied" and "3 resting order(s) canceled" in res.message
    assert bot.venue.open_orders() == []
    run(w, series[1:2])                                      # still halted: nothing goes back
    assert bot.venue.open_orders() == [] and bot.deals["ETHUSDT"].safety_placed == 0
    w.handle_command("2-0", new_command("resume", "bot", "d").fields())
    run(w, series[2:3])
    assert sorted((o.tag, o.price) for o in bot.venue.open_orders()) == before
    canceled = [o for _, f in r.xrange(keys.orders("d"))
                if (o := json.loads(f[b"data"]))["status"] == "CANCELED"]
    assert len(canceled) == 3 and all("halt" in o["reason"] for o in canceled)
