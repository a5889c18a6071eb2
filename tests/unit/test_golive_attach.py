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
                                monitor=None, last_candle_time=0)
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
