"""Go-live stages on their own: the stage gate inside the real risk engine (unapproved refuses every
entry, first_trade one position under its cap, exits never judged), caps that only lower the configured
limit, the evidence each step up needs, and the config that cannot raise a cap."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.types import Mode, Order, OrderPurpose, Position, Side, TradingState
from risk.engine import RiskContext, RiskEngine
from risk.limits import resolve
from risk.stages import Evidence, GoLiveConfig, Stage, StageGate, cap_of, effective_cap, requirements

CFG = GoLiveConfig()


def engine(stage: Stage) -> RiskEngine:
    e = RiskEngine(resolve(Mode.PAPER, {"max_position_pct": 100, "max_position_value": None,
                                        "max_loss_per_trade_pct": None}))
    e.gate = StageGate(stage, cap_of(stage, CFG))
    return e


def ctx(qty: float = 0.0, exposure: float = 0.0) -> RiskContext:
    return RiskContext(state=TradingState.ACTIVE, position=Position("BTCUSDT", qty, 100.0 if qty else 0.0),
                       price=100.0, equity=10_000, quote_balance=10_000, now_ms=0, bot_exposure_value=exposure)


def order(qty: float, side: Side = Side.BUY, purpose: OrderPurpose = OrderPurpose.ENTRY) -> Order:
    return Order("x", "b", "BTCUSDT", side, qty, purpose)


def test_unapproved_refuses_every_entry_but_never_an_exit() -> None:
    e = engine(Stage.UNAPPROVED)
    d = e.check(order(0.01), ctx())
    assert not d.allowed and d.rule == "golive_stage" and "unapproved" in d.detail
    assert e.check(order(0.1, Side.SELL, OrderPurpose.EXIT), ctx(qty=0.1, exposure=10)).allowed


def test_first_trade_one_position_under_its_cap() -> None:
    e = engine(Stage.FIRST_TRADE)
    assert e.check(order(0.4), ctx()).allowed  # 40 < 50
    d = e.check(order(0.2), ctx(qty=0.4, exposure=40))  # 60 > 50
    assert not d.allowed and "stage first_trade" in d.detail and "stage cap 50.00" in d.detail
    d = e.check(order(0.1), ctx(qty=0.0, exposure=30))  # another symbol already held: one position at a time
    assert not d.allowed and "one position at a time" in d.detail
    assert engine(Stage.SCALING).check(order(0.9), ctx()).allowed
    assert not engine(Stage.SCALING).check(order(1.1), ctx()).allowed
    assert engine(Stage.FULL).check(order(50), ctx()).allowed


def test_a_stage_cap_only_lowers_the_configured_limit() -> None:
    assert effective_cap(Stage.FIRST_TRADE, CFG, 30.0) == 30.0
    assert effective_cap(Stage.FIRST_TRADE, CFG, 500.0) == 50.0
    assert effective_cap(Stage.FULL, CFG, 500.0) == 500.0
    assert effective_cap(Stage.UNAPPROVED, CFG, 500.0) == 0.0
    with pytest.raises(ValidationError, match="first_trade_cap"):
        GoLiveConfig(first_trade_cap=60)
    with pytest.raises(ValidationError, match="trades_to_scale"):
        GoLiveConfig(trades_to_scale=1)


def test_each_step_up_names_what_it_needs() -> None:
    ev = Evidence()
    missing = [q.name for q in requirements(Stage.FIRST_TRADE, ev, CFG) if not q.ok]
    assert missing == ["backtest report", "ghost signals", "paper trades", "pre-flight passed", "kill switch tested"]
    ev = Evidence(backtest={"trades": 3, "total_return_pct": 1.0}, ghost_signals=2, paper_trades=1, preflight_ok=True,
                  kill_switch={"when": "now", "who": "dashboard:bob", "where": "local"})
    assert all(q.ok for q in requirements(Stage.FIRST_TRADE, ev, CFG))
    assert not requirements(Stage.SCALING, Evidence(live_trades=3, live_wins=2), CFG)[0].ok
    assert requirements(Stage.SCALING, Evidence(live_trades=3, live_wins=3), CFG)[0].ok
    full = requirements(Stage.FULL, Evidence(days_in_stage=8, week_pnl=-1.0), CFG)
    assert [q.ok for q in full] == [True, False]
    assert all(q.ok for q in requirements(Stage.FULL, Evidence(days_in_stage=7, week_pnl=0.5), CFG))
    assert Stage.FIRST_TRADE.previous() is Stage.UNAPPROVED and Stage.FULL.next() is None
