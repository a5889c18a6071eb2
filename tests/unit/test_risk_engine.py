"""RiskEngine rules, one at a time, with the numbers each decision carries; state precedence."""
from __future__ import annotations

import pytest

from core.types import Order, OrderPurpose, Position, Side, TradingState
from risk.engine import RiskContext, RiskEngine, RiskLimits
from risk.sizing import entry_quote
from risk.states import is_more_restrictive, most_restrictive

SYM = "BTCUSDT"
A, R, P, F, H = (TradingState.ACTIVE, TradingState.REDUCE_ONLY, TradingState.PAUSED,
                 TradingState.FLATTEN, TradingState.HALTED)


def order(side: Side, qty: float, purpose: OrderPurpose = OrderPurpose.ENTRY) -> Order:
    return Order("cid", "b1", SYM, side, qty, purpose)


def ctx(state: TradingState = A, pos_qty: float = 0.0, price: float = 100.0, equity: float = 10_000.0,
        quote: float = 10_000.0, now: int = 1_000_000) -> RiskContext:
    return RiskContext(state, Position(SYM, pos_qty, 100.0 if pos_qty else 0.0), price, equity, quote, now)


@pytest.fixture
def eng() -> RiskEngine:
    return RiskEngine(RiskLimits(max_position_pct=50.0, min_notional=10.0, max_orders_per_minute=3,
                                 fee_pct=0.1, allow_short=False, check_balance=True))


def test_plain_entry_allowed_with_description(eng: RiskEngine) -> None:
    d = eng.check(order(Side.BUY, 10.0), ctx())
    assert d.allowed and d.rule == "ok"
    assert d.detail == "ENTRY BUY 10 @ 100 (notional 1000.00, worst case 1002.00)"


@pytest.mark.parametrize("state", [R, P, F, H])
def test_entries_denied_in_every_state_but_active(eng: RiskEngine, state: TradingState) -> None:
    d = eng.check(order(Side.BUY, 1.0), ctx(state=state))
    assert not d.allowed and d.rule == "trading_state"
    assert d.detail == f"state {state.value} allows no entries"


@pytest.mark.parametrize("purpose", [OrderPurpose.EXIT, OrderPurpose.FLATTEN])
@pytest.mark.parametrize("state", [A, R, P, F])
def test_exits_allowed_unless_halted(eng: RiskEngine, state: TradingState, purpose: OrderPurpose) -> None:
    d = eng.check(order(Side.SELL, 2.0, purpose), ctx(state=state, pos_qty=2.0))
    assert d.allowed, d


@pytest.mark.parametrize("purpose", [OrderPurpose.EXIT, OrderPurpose.FLATTEN])
def test_halted_allows_no_exit(eng: RiskEngine, purpose: OrderPurpose) -> None:
    d = eng.check(order(Side.SELL, 2.0, purpose), ctx(state=H, pos_qty=2.0))
    assert not d.allowed and d.rule == "trading_state"
    assert d.detail == "state HALTED allows no orders"


def test_exit_must_reduce(eng: RiskEngine) -> None:
    # BUY exit against a long position adds to it
    d = eng.check(order(Side.BUY, 1.0, OrderPurpose.EXIT), ctx(pos_qty=2.0))
    assert not d.allowed and d.rule == "reduce_only"
    assert d.detail == "exit of 1 BUY does not reduce position 2"
    # exit with no position at all
    d = eng.check(order(Side.SELL, 1.0, OrderPurpose.EXIT), ctx(pos_qty=0.0))
    assert not d.allowed and d.rule == "reduce_only"
    # exit larger than the position would reverse it
    d = eng.check(order(Side.SELL, 2.5, OrderPurpose.EXIT), ctx(pos_qty=2.0))
    assert not d.allowed and d.rule == "reduce_only"
    assert "2.5 SELL" in d.detail and "position 2" in d.detail
    # a short is reduced by a BUY
    assert eng.check(order(Side.BUY, 2.0, OrderPurpose.EXIT), ctx(pos_qty=-2.0)).allowed


def test_exit_not_subject_to_min_notional(eng: RiskEngine) -> None:
    # 0.01 * 100 = 1 quote < 10 min notional, but it is an exit of the whole position
    assert eng.check(order(Side.SELL, 0.01, OrderPurpose.EXIT), ctx(pos_qty=0.01)).allowed


def test_min_notional(eng: RiskEngine) -> None:
    # 0.09 * 100 = 9.00 < 10.00
    d = eng.check(order(Side.BUY, 0.09), ctx())
    assert not d.allowed and d.rule == "min_notional"
    assert d.detail == "notional 9.00 < 10.00"
    # exactly 10.00 is enough
    assert eng.check(order(Side.BUY, 0.1), ctx()).allowed


def test_bad_order(eng: RiskEngine) -> None:
    d = eng.check(order(Side.BUY, 0.0), ctx())
    assert not d.allowed and d.rule == "bad_order"
    d = eng.check(order(Side.BUY, 1.0), ctx(price=0.0))
    assert not d.allowed and d.rule == "bad_order"


def test_no_short_on_spot(eng: RiskEngine) -> None:
    d = eng.check(order(Side.SELL, 1.0), ctx(pos_qty=0.0))
    assert not d.allowed and d.rule == "no_short"
    assert "short entries are not allowed" in d.detail


def test_short_allowed_when_limits_allow() -> None:
    eng = RiskEngine(RiskLimits(allow_short=True))
    assert eng.check(order(Side.SELL, 1.0), ctx()).allowed


def test_max_position_pct(eng: RiskEngine) -> None:
    # cap = 50% of 10000 = 5000; 50.01 * 100 = 5001 > 5000
    d = eng.check(order(Side.BUY, 50.01), ctx())
    assert not d.allowed and d.rule == "max_position_pct"
    assert d.detail == "position value 5001.00 > 50% of equity 10000.00 = 5000.00"
    # exactly at the cap is allowed: 50 * 100 = 5000
    assert eng.check(order(Side.BUY, 50.0), ctx()).allowed


def test_max_position_pct_counts_the_existing_position(eng: RiskEngine) -> None:
    # holding 30, adding 21: (30 + 21) * 100 = 5100 > 5000
    d = eng.check(order(Side.BUY, 21.0), ctx(pos_qty=30.0))
    assert not d.allowed and d.rule == "max_position_pct"
    assert "position value 5100.00" in d.detail


def test_balance(eng: RiskEngine) -> None:
    # need = 10 * 100 * (1 + 0.1/100) = 1001.00, has 1000.00
    d = eng.check(order(Side.BUY, 10.0), ctx(quote=1_000.0))
    assert not d.allowed and d.rule == "balance"
    assert d.detail == "needs 1001.00 quote, has 1000.00"
    assert eng.check(order(Side.BUY, 10.0), ctx(quote=1_001.0)).allowed


def test_balance_check_can_be_disabled() -> None:
    eng = RiskEngine(RiskLimits(check_balance=False))
    assert eng.check(order(Side.BUY, 10.0), ctx(quote=0.0)).allowed


def test_max_orders_per_minute(eng: RiskEngine) -> None:
    t0 = 1_000_000
    for i in range(3):
        assert eng.check(order(Side.BUY, 1.0), ctx(now=t0 + i * 1_000)).allowed
    d = eng.check(order(Side.BUY, 1.0), ctx(now=t0 + 3_000))
    assert not d.allowed and d.rule == "max_orders_per_minute"
    assert d.detail == "3 orders in the last minute >= 3"
    # exits are never throttled
    assert eng.check(order(Side.SELL, 1.0, OrderPurpose.EXIT), ctx(pos_qty=1.0, now=t0 + 3_500)).allowed
    # 60 s after the first order it leaves the window: t0 + 60000 drops t0 (<= now - 60000)
    # window then holds t0+1000, t0+2000, the exit at t0+3500 -> still 3
    d = eng.check(order(Side.BUY, 1.0), ctx(now=t0 + 60_000))
    assert not d.allowed and d.rule == "max_orders_per_minute"
    # at t0 + 62000 the entries at t0+1000 and t0+2000 are gone: 1 left (the exit)
    assert eng.check(order(Side.BUY, 1.0), ctx(now=t0 + 62_000)).allowed


def test_denied_orders_do_not_count_towards_the_rate(eng: RiskEngine) -> None:
    for _ in range(10):
        assert not eng.check(order(Side.BUY, 0.01), ctx()).allowed  # min_notional
    assert eng.check(order(Side.BUY, 1.0), ctx()).allowed


def test_rule_order_state_before_numbers(eng: RiskEngine) -> None:
    # both min_notional and trading_state would deny: the state is reported
    d = eng.check(order(Side.BUY, 0.01), ctx(state=P))
    assert d.rule == "trading_state"


def test_most_restrictive_precedence() -> None:
    assert most_restrictive() is A
    assert most_restrictive(A, A, A) is A
    assert most_restrictive(A, P, A) is P
    assert most_restrictive(R, A) is R
    assert most_restrictive(P, R) is P
    assert most_restrictive(P, F) is F
    assert most_restrictive(H, F, P, R, A) is H
    assert is_more_restrictive(H, F) and is_more_restrictive(P, R) and not is_more_restrictive(A, A)


def test_trading_state_permissions() -> None:
    assert [s.allows_entries for s in (A, R, P, F, H)] == [True, False, False, False, False]
    assert [s.allows_exits for s in (A, R, P, F, H)] == [True, True, True, True, False]


def test_entry_quote_sizing() -> None:
    # 25% of 8000 = 2000
    assert entry_quote("percent_equity", 25.0, 8_000.0) == pytest.approx(2_000.0)
    assert entry_quote("percent_equity", 25.0, -5.0) == 0.0  # negative equity sizes nothing
    assert entry_quote("fixed_quote", 150.0, 8_000.0) == 150.0
