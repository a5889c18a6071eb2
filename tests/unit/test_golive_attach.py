"""What a live bot's go-live record does when the worker starts it (engine.golive.GoLive.attach, on
fakeredis): a new bot is unapproved and gated; an approved bot keeps its stage across a restart; a
change of its parameters or of the venue puts it back to unapproved (audited), keeping a kill-switch
test made on a test venue; a bot on the local exchange is recorded but not gated unless
``golive.stages: on``."""
from __future__ import annotations

import types

import fakeredis

from core.types import Mode
from engine.controls import TradingControls
from engine.golive import GoLive
from risk.engine import RiskEngine
from risk.limits import resolve
from risk.stages import Stage
from settings import AppConfig
from state import golive_store
from state.events import read_audit
from state.models import AuditRecord
from state.writer import StateWriter

PARAMS = {"window": 5, "threshold_pct": 0.1}


def app(venue: str = "testnet", params: dict | None = None, stages: str = "auto") -> AppConfig:
    return AppConfig(exchange={"venue": venue}, market={"symbols": ["BTCUSDT"]}, golive={"stages": stages},
                     live={"enabled": venue == "mainnet"},
                     bots=[{"name": "lv", "mode": "live", "symbol": "BTCUSDT", "strategy": "momentum",
                            "params": params or PARAMS, "risk": {"max_position_value": 40}}])


def start(r, a: AppConfig):  # noqa: ANN001, ANN201
    bot = types.SimpleNamespace(name="lv", risk=RiskEngine(resolve(Mode.LIVE, {"max_position_value": 40})),
                                monitor=None, last_candle_time=0, trade_count=0)
    g = GoLive(a, StateWriter(r), TradingControls())
    g.attach(bot, a.bots[0])  # type: ignore[arg-type]
    return g, bot


def test_new_bot_unapproved_then_kept_then_reset_by_a_change() -> None:
    r = fakeredis.FakeRedis(decode_responses=True)
    g, bot = start(r, app())
    rec = golive_store.load(r, "lv")
    assert rec.stage is Stage.UNAPPROVED and rec.enforced and rec.configured_cap == 40
    assert bot.risk.gate is not None and bot.risk.gate.stage is Stage.UNAPPROVED

    # approved (as the golive command would store it), with a kill switch tested on the testnet
    approved = rec.moved(Stage.FIRST_TRADE, "dashboard:alice", "approved", "evidence", 1, 0)
    r.set(golive_store.keys.golive("lv"), approved.model_dump_json())
    StateWriter(r).transaction(lambda pipe: None, [AuditRecord(time=rec.venue_since + 1, who="dashboard:bob",
                                                               command="flatten", target="lv", result="applied",
                                                               detail="closed")])
    g, bot = start(r, app())
    assert golive_store.load(r, "lv").stage is Stage.FIRST_TRADE and bot.risk.gate.cap == 50

    g, bot = start(r, app(params={"window": 6, "threshold_pct": 0.1}))
    rec = golive_store.load(r, "lv")
    assert rec.stage is Stage.UNAPPROVED and "parameters" in rec.history[-1].reason
    assert any(a.who == "golive" and "first_trade -> unapproved" in a.detail for a in read_audit(r, bot="lv"))

    approved = rec.moved(Stage.FIRST_TRADE, "dashboard:alice", "approved", "evidence", 2, 0)
    r.set(golive_store.keys.golive("lv"), approved.model_dump_json())
    g, bot = start(r, app(venue="mainnet", params={"window": 6, "threshold_pct": 0.1}))
    rec = golive_store.load(r, "lv")
    assert rec.stage is Stage.UNAPPROVED and rec.real_money and "venue changed from testnet to mainnet" in \
        rec.history[-1].reason
    assert [t.where for t in rec.prior_tests] == ["testnet"]  # the testnet's kill-switch test still counts


def test_local_exchange_bots_are_recorded_not_gated_unless_stages_on() -> None:
    r = fakeredis.FakeRedis(decode_responses=True)
    g, bot = start(r, app(venue="local"))
    assert not golive_store.load(r, "lv").enforced and bot.risk.gate is None
    g, bot = start(r, app(venue="local", stages="on"))
    assert golive_store.load(r, "lv").enforced and bot.risk.gate is not None


DAY = 86_400_000


def trade(r, t_exit: int, pnl: float) -> None:  # noqa: ANN001
    from state.models import TradeRecord

    rec = TradeRecord(bot="lv", symbol="BTCUSDT", side="BUY", quantity=0.0005, entry_price=60000, exit_price=60000,
                      entry_time=t_exit - 60_000, exit_time=t_exit, pnl=pnl, return_pct=0.1, fees=0.01)
    r.xadd(golive_store.keys.trades("lv"), {"data": rec.model_dump_json()})


def test_scaling_needs_three_winning_round_trips_and_full_a_profitable_week() -> None:
    from engine.golive import StageRefused

    r = fakeredis.FakeRedis(decode_responses=True)
    g, bot = start(r, app())
    t0 = 1_000 * DAY
    bot.last_candle_time = t0
    rec = g.records["lv"].moved(Stage.FIRST_TRADE, "dashboard:alice", "approved", "", 1, t0)
    g.records["lv"] = rec
    ask = '{"confirm": "lv", "max_loss": 40}'  # scaling's 100 lowered to the configured 40
    trade(r, t0 + 60_000, 1.0)
    trade(r, t0 + 120_000, -0.5)
    trade(r, t0 + 180_000, 2.0)
    bot.last_candle_time = t0 + 200_000
    try:
        g.move(bot, "dashboard:alice", "scaling", ask, "")  # type: ignore[arg-type]
        raise AssertionError("moved without three winning round trips")
    except StageRefused as exc:
        assert "2 winning of 3" in str(exc)
    with_full_skip = None
    try:
        g.move(bot, "dashboard:alice", "full", ask, "")  # type: ignore[arg-type]
    except StageRefused as exc:
        with_full_skip = str(exc)
    assert with_full_skip and "the next stage is scaling" in with_full_skip
    trade(r, t0 + 240_000, 0.5)
    msg, write = g.move(bot, "dashboard:alice", "scaling", ask, "")  # type: ignore[arg-type]
    assert "first_trade -> scaling" in msg and g.records["lv"].stage is Stage.SCALING and bot.risk.gate.cap == 100

    # full: 7 days in scaling (market time) and a profitable last week
    bot.last_candle_time = t0 + 240_000 + 3 * DAY
    try:
        g.move(bot, "dashboard:alice", "full", ask, "")  # type: ignore[arg-type]
        raise AssertionError("full after 3 days")
    except StageRefused as exc:
        assert "a week in scaling" in str(exc)
    trade(r, t0 + 240_000 + 7 * DAY, -3.0)
    bot.last_candle_time = t0 + 240_000 + 8 * DAY
    try:
        g.move(bot, "dashboard:alice", "full", ask, "")  # type: ignore[arg-type]
        raise AssertionError("full after a losing week")
    except StageRefused as exc:
        assert "profitable week" in str(exc)
    trade(r, t0 + 240_000 + 8 * DAY - 1, 5.0)
    msg, _ = g.move(bot, "dashboard:alice", "full", ask, "")  # type: ignore[arg-type]
    assert g.records["lv"].stage is Stage.FULL and bot.risk.gate is not None and bot.risk.gate.cap is None
    # down is always allowed, with no evidence
    g.move(bot, "dashboard:bob", "first_trade", "", "lowered")  # type: ignore[arg-type]
    assert g.records["lv"].stage is Stage.FIRST_TRADE


def test_round_trips_of_a_stage_are_counted_not_compared_across_clocks() -> None:
    """A live bot's trades carry the venue's clock, its candles the market's; on the local exchange at
    speed the market runs days ahead. The round trips after an approval are the trades after it,
    counted from the bot's closed-trade count then, so they count whatever the clocks say."""
    from state.models import BotSnapshot

    r = fakeredis.FakeRedis(decode_responses=True)
    g, bot = start(r, app())
    wall = 1_000 * DAY
    trade(r, wall - 5 * 60_000, -1.0)  # before the approval: not this stage's
    rec = g.records["lv"].moved(Stage.FIRST_TRADE, "dashboard:alice", "approved", "", wall, wall + 30 * DAY, 1)
    for i, pnl in enumerate((1.0, 2.0, 0.5)):  # venue (wall) times, a month behind the market's
        trade(r, wall + (i + 1) * 60_000, pnl)
    snap = BotSnapshot(name="lv", mode="live", symbol="BTCUSDT", strategy="momentum", updated_at=0, trade_count=4)
    r.set(golive_store.keys.snapshot("lv"), snap.model_dump_json())
    ev = golive_store.collect(r, rec, wall + 31 * DAY)
    assert (ev.live_trades, ev.live_wins, ev.live_pnl, ev.week_pnl) == (3, 3, 3.5, 3.5)
    assert abs(ev.days_in_stage - 1.0) < 1e-9  # days in the stage: on the market's clock
