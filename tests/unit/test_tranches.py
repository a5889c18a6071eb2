"""Tranche-based positions: the portfolio's tranches (price, quantity, time, fee), the average
entry, partial-exit P&L; a signal bot adding up to max_tranches; snapshot/restore.

Numbers are hand-computed with the fee 0.1 % of notional, charged in quote.
"""
from __future__ import annotations

from typing import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from core.portfolio import Portfolio
from core.types import INTERVAL_MS, NO_SIGNAL, Candle, Fill, Mode, Position, Side, Signal, TradingState, Tranche
from engine.bot import Bot
from executors.paper import PaperExecutor
from risk.engine import RiskEngine, RiskLimits
from settings import BotConfig
from state.models import BotSnapshot

SYM = "BTCUSDT"
T0 = 1_704_067_200_000
M = INTERVAL_MS["1m"]
FEE_PCT = 0.1


def approx(x: float) -> object:
    return pytest.approx(x, rel=1e-9, abs=1e-9)


def fill(side: Side, qty: float, price: float, t: int = 0, cid: str = "", fee_pct: float = FEE_PCT) -> Fill:
    return Fill(cid or f"o{t}", "b1", SYM, side, qty, price, qty * price * fee_pct / 100.0, "USDT", t)


# ---- portfolio -------------------------------------------------------------------------
def test_each_entry_is_a_tranche_and_the_average_is_their_weighted_mean() -> None:
    pf = Portfolio("b1", 10_000.0)
    pf.apply(fill(Side.BUY, 1.0, 100.0, t=1))
    pf.apply(fill(Side.BUY, 3.0, 80.0, t=2))
    pos = pf.position(SYM)
    assert [(t.price, t.quantity, t.time) for t in pos.tranches] == [(100.0, 1.0, 1), (80.0, 3.0, 2)]
    assert [t.fee for t in pos.tranches] == [approx(0.10), approx(0.24)]
    assert pos.avg_entry == approx((100.0 + 240.0) / 4.0)  # 85
    assert pos.entry_fees == approx(0.34) and pos.tranche_count == 2 and pos.opened_at == 1


def test_fills_of_one_entry_order_make_one_tranche() -> None:
    pf = Portfolio("b1", 10_000.0)
    pf.apply(fill(Side.BUY, 1.0, 100.0, t=1, cid="A"))
    pf.apply(fill(Side.BUY, 1.0, 102.0, t=1, cid="A"))  # partial fills of order A
    pf.apply(fill(Side.BUY, 2.0, 90.0, t=2, cid="B"))
    ts = pf.position(SYM).tranches
    assert len(ts) == 2
    assert (ts[0].price, ts[0].quantity, ts[0].fee, ts[0].order_id) == (approx(101.0), 2.0, approx(0.202), "A")
    assert pf.position(SYM).avg_entry == approx((202.0 + 180.0) / 4.0)


def test_partial_exit_has_its_own_pnl_and_shrinks_every_tranche_pro_rata() -> None:
    pf = Portfolio("b1", 10_000.0)
    pf.apply(fill(Side.BUY, 1.0, 100.0, t=1))  # fee 0.10
    pf.apply(fill(Side.BUY, 1.0, 110.0, t=2))  # fee 0.11; avg 105
    # SELL 0.5 @ 120: fee 0.06; entry fee share 0.21 * 0.5/2 = 0.0525
    # pnl = (120 - 105) * 0.5 - 0.0525 - 0.06 = 7.3875
    t1 = pf.apply(fill(Side.SELL, 0.5, 120.0, t=3), exit_reason="take_profit")
    assert t1 is not None and t1.quantity == 0.5 and t1.pnl == approx(7.3875)
    assert t1.fees == approx(0.1125) and t1.entry_price == approx(105.0)
    pos = pf.position(SYM)
    assert pos.realized_pnl == approx(7.3875)
    assert [t.quantity for t in pos.tranches] == [approx(0.75), approx(0.75)]
    assert [t.fee for t in pos.tranches] == [approx(0.075), approx(0.0825)]
    assert pos.avg_entry == approx(105.0) and pos.entry_fees == approx(0.1575)
    # the rest @ 100: fee 0.15; pnl = (100 - 105) * 1.5 - 0.1575 - 0.15 = -7.8075
    t2 = pf.apply(fill(Side.SELL, 1.5, 100.0, t=4))
    assert t2 is not None and t2.pnl == approx(-7.8075)
    assert not pf.position(SYM).is_open and pf.position(SYM).tranches == []
    assert pf.realized_pnl == approx(t1.pnl + t2.pnl)
    assert pf.quote - pf.starting_balance == approx(pf.realized_pnl)


def test_reversal_opens_the_other_side_with_one_tranche() -> None:
    pf = Portfolio("b1", 10_000.0)
    pf.apply(fill(Side.BUY, 1.0, 100.0, t=1))
    pf.apply(fill(Side.BUY, 1.0, 90.0, t=2))
    pf.apply(fill(Side.SELL, 3.0, 95.0, t=3, cid="R"))
    pos = pf.position(SYM)
    assert pos.quantity == approx(-1.0) and pos.avg_entry == 95.0
    assert [(t.price, t.quantity, t.order_id) for t in pos.tranches] == [(95.0, approx(1.0), "R")]
    assert pos.tranches[0].fee == approx(pos.entry_fees)


def test_position_without_matching_tranches_stands_as_one() -> None:
    """Older snapshots (no tranches) and quantities rewritten from outside (adopting the venue's)."""
    pos = Position(SYM, 2.0, 100.0, 5, 0.2)
    assert [(t.price, t.quantity, t.time, t.fee) for t in pos.held_tranches()] == [(100.0, 2.0, 5, 0.2)]
    pf = Portfolio("b1", 10_000.0, quote=9_000.0, positions={SYM: pos})
    pf.apply(fill(Side.BUY, 2.0, 80.0, t=6))
    assert [(t.price, t.quantity) for t in pf.position(SYM).tranches] == [(100.0, 2.0), (80.0, 2.0)]
    pos = pf.position(SYM)
    pos.quantity = 5.0  # adopted: the venue holds more than the bot booked
    assert pos.tranche_count == 1 and pos.held_tranches()[0].quantity == 5.0


# ---- property: average entry and realized P&L ------------------------------------------
ops = st.lists(st.tuples(st.sampled_from(["add", "exit"]), st.floats(0.01, 5.0), st.floats(50.0, 150.0)),
               min_size=1, max_size=25)


@settings(max_examples=200, deadline=None)
@given(long=st.booleans(), first=st.tuples(st.floats(0.01, 5.0), st.floats(50.0, 150.0)), steps=ops)
def test_average_is_the_mean_of_held_tranches_and_partial_pnls_add_up(
        long: bool, first: tuple[float, float], steps: list[tuple[str, float, float]]) -> None:
    pf = Portfolio("b1", 1e9)
    entry, leave = (Side.BUY, Side.SELL) if long else (Side.SELL, Side.BUY)
    pf.apply(fill(entry, first[0], first[1], t=0))
    trades = []
    for i, (op, x, price) in enumerate(steps, 1):
        pos = pf.position(SYM)
        if op == "add":
            pf.apply(fill(entry, x, price, t=i))
        else:  # a partial exit of a fraction of what is held (x / 5.01 < 1)
            t = pf.apply(fill(leave, abs(pos.quantity) * x / 5.01, price, t=i))
            assert t is not None
            trades.append(t)
        pos = pf.position(SYM)
        held = pos.tranches
        qty = sum(t.quantity for t in held)
        assert qty == pytest.approx(abs(pos.quantity), rel=1e-9)
        assert pos.avg_entry == pytest.approx(sum(t.price * t.quantity for t in held) / qty, rel=1e-9)
        assert pos.entry_fees == pytest.approx(sum(t.fee for t in held), rel=1e-9, abs=1e-9)
        assert pos.realized_pnl == pytest.approx(sum(t.pnl for t in trades), rel=1e-9, abs=1e-6)
    last = pf.apply(fill(leave, abs(pf.position(SYM).quantity), 100.0, t=len(steps) + 1))
    assert last is not None
    total = sum(t.pnl for t in trades) + last.pnl
    assert pf.realized_pnl == pytest.approx(total, rel=1e-9, abs=1e-6)
    assert pf.quote - pf.starting_balance == pytest.approx(total, rel=1e-9, abs=1e-5)


# ---- the signal bot --------------------------------------------------------------------
class Scripted:
    name = "scripted"
    warmup = 1

    def __init__(self, script: dict[int, Signal]) -> None:
        self.script = script

    def evaluate(self, candles: Sequence[Candle]) -> Signal:
        return self.script.get((candles[-1].open_time - T0) // M, NO_SIGNAL)


def flat(i: int, price: float) -> Candle:
    return Candle(SYM, T0 + i * M, price, price, price, price, 1.0, "1m")


def make_bot(script: dict[int, Signal], max_tranches: int = 3, **limits: object) -> Bot:
    lim = RiskLimits(**{"max_position_pct": 100.0, "min_notional": 10.0, "max_orders_per_minute": 20,
                        "fee_pct": FEE_PCT, "slippage_bps": 0.0, **limits})  # type: ignore[arg-type]
    return Bot("b1", Mode.PAPER, SYM, Scripted(script), PaperExecutor(FEE_PCT, 0.0), RiskEngine(lim),
               Portfolio("b1", 10_000.0), ("percent_equity", 20.0), lambda _b: TradingState.ACTIVE,
               interval="1m", max_tranches=max_tranches)


BUY = Signal(Side.BUY, 0.8, "go long")


def test_adds_a_tranche_per_same_direction_signal_up_to_max_tranches() -> None:
    bot = make_bot({i: BUY for i in range(4)})
    for i, price in enumerate((100.0, 90.0, 80.0, 70.0)):
        bot.on_candle(flat(i, price))
    pos = bot.position
    # 1st: 20% of 10000 / 100 = 20 units (fee 2); quote 7998
    # 2nd: equity 7998 + 20*90 = 9798 -> 1959.6 / 90 = 21.773.. units (fee 1.9596)
    # 3rd: sized the same way from the equity at 80; the 4th signal is ignored
    assert pos.tranche_count == 3
    q1, q2 = 20.0, 1959.6 / 90.0
    eq3 = (7998.0 - 1959.6 - 1.9596) + (q1 + q2) * 80.0
    q3 = 0.2 * eq3 / 80.0
    assert [t.quantity for t in pos.tranches] == [approx(q1), approx(q2), approx(q3)]
    assert pos.quantity == approx(q1 + q2 + q3)
    assert pos.avg_entry == approx((q1 * 100 + q2 * 90 + q3 * 80) / (q1 + q2 + q3))
    sigs = bot.drain(T0 + 5 * M).signals
    assert [s.acted for s in sigs] == [True, True, True, False]
    assert sigs[-1].note == "already in a position: 3 of 3 tranches held"
    assert bot.orders_sent == 3


def test_max_tranches_1_ignores_a_same_direction_signal() -> None:
    bot = make_bot({0: BUY, 1: BUY}, max_tranches=1)
    bot.on_candle(flat(0, 100.0))
    bot.on_candle(flat(1, 90.0))
    assert bot.position.tranche_count == 1 and bot.position.quantity == approx(20.0)
    assert bot.drain(T0 + 2 * M).signals[-1].note == "already in a position"


def test_max_tranches_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="max_tranches"):
        make_bot({}, max_tranches=0)
    base = {"name": "b", "mode": "paper", "symbol": SYM, "strategy": "sma_crossover"}
    assert BotConfig(**base).max_tranches == 3  # type: ignore[arg-type]
    assert BotConfig(**base, max_tranches=1).max_tranches == 1  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        BotConfig(**base, max_tranches=0)  # type: ignore[arg-type]


def test_an_add_is_checked_by_risk_and_a_denial_is_recorded() -> None:
    # 20 units @100 = 2000 fits; adding 21.77 @90 would make (41.77)*90 = 3759 > 3000
    bot = make_bot({0: BUY, 1: BUY}, max_position_value=3_000.0)
    bot.on_candle(flat(0, 100.0))
    bot.on_candle(flat(1, 90.0))
    assert bot.position.tranche_count == 1 and bot.position.quantity == approx(20.0)
    assert bot.denials["max_position_value"] == 1
    out = bot.drain(T0 + 2 * M)
    denied = [d for d in out.risk if not d.allowed]
    assert [(d.rule, d.purpose) for d in denied] == [("max_position_value", "ENTRY")]
    assert [o.status for o in out.orders] == ["FILLED", "REJECTED"]
    assert out.signals[-1].acted is False and out.signals[-1].note.startswith("add denied: position value 3759")


def test_stop_and_take_profit_follow_the_new_average() -> None:
    first = Signal(Side.BUY, 0.8, "go", stop_loss=85.0, take_profit=120.0)  # -15 %, +20 % of 100
    again = Signal(Side.BUY, 0.8, "again", stop_loss=81.0, take_profit=99.0)  # -10 %, +10 % of 90
    bare = Signal(Side.BUY, 0.8, "no levels")
    bot = make_bot({0: first, 1: again, 2: bare})
    bot.on_candle(flat(0, 100.0))
    assert (bot.position.stop_loss, bot.position.take_profit) == (85.0, 120.0)
    bot.on_candle(flat(1, 90.0))
    avg = bot.position.avg_entry
    assert bot.position.stop_loss == approx(avg * 0.9) and bot.position.take_profit == approx(avg * 1.1)
    bot.on_candle(flat(2, 92.0))  # no levels on the signal: the position's distances, re-anchored
    avg2 = bot.position.avg_entry
    assert avg2 != avg
    assert bot.position.stop_loss == approx(avg2 * 0.9) and bot.position.take_profit == approx(avg2 * 1.1)
    # the stop fires at the re-anchored level and closes every tranche at once
    bot.on_candle(Candle(SYM, T0 + 3 * M, 92.0, 92.0, 80.0, 85.0, 1.0, "1m"))
    assert not bot.position.is_open
    trades = bot.drain(T0 + 4 * M).trades
    assert [t.exit_reason for t in trades] == ["stop_loss"] and trades[0].exit_price == approx(avg2 * 0.9)


def test_holding_time_and_signal_id_stay_those_of_the_first_tranche() -> None:
    bot = make_bot({0: BUY, 2: BUY})
    for i in range(3):
        bot.on_candle(flat(i, 100.0 - i))
    assert bot.position.tranche_count == 2
    assert bot.hold_candles == 2 and bot.open_signal_id == f"b1:{T0}"
    assert bot.position.opened_at == T0 + M  # the first fill, at the first candle's close


def test_tranches_survive_a_restart() -> None:
    bot = make_bot({0: BUY, 1: BUY, 3: BUY})
    bot.on_candle(flat(0, 100.0))
    bot.on_candle(flat(1, 90.0))
    snap = bot.drain(T0 + 2 * M).snapshot
    assert snap.position is not None and snap.position.tranche_count == 2
    stored = BotSnapshot.model_validate_json(snap.model_dump_json())  # through Redis's JSON
    fresh = make_bot({0: BUY, 1: BUY, 3: BUY})
    fresh.restore(stored)
    a, b = bot.position, fresh.position
    assert b.tranches == a.tranches and b.avg_entry == a.avg_entry and b.entry_fees == a.entry_fees
    fresh.on_candle(flat(2, 95.0))
    fresh.on_candle(flat(3, 85.0))  # third tranche: the count carried over
    fresh.on_candle(flat(4, 80.0))
    assert fresh.position.tranche_count == 3
    assert fresh.drain(T0 + 5 * M).snapshot.position.tranches[-1].price == 85.0  # type: ignore[union-attr]


def test_an_older_snapshot_without_tranches_restores_as_one_tranche() -> None:
    bot = make_bot({0: BUY})
    bot.on_candle(flat(0, 100.0))
    raw = bot.drain(T0 + M).snapshot.model_dump()
    del raw["position"]["tranches"], raw["position"]["realized_pnl"]
    fresh = make_bot({2: BUY})
    fresh.restore(BotSnapshot.model_validate(raw))
    assert fresh.position.tranche_count == 1 and fresh.position.held_tranches()[0] == Tranche(
        100.0, approx(20.0), T0 + M, approx(2.0))  # type: ignore[arg-type]
    fresh.on_candle(flat(2, 90.0))
    assert fresh.position.tranche_count == 2
