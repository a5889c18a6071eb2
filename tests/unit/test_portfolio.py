"""Portfolio bookkeeping with hand-computed numbers (fee 0.1 % of notional, charged in quote)."""
from __future__ import annotations

import pytest

from core.portfolio import Portfolio
from core.types import Fill, PositionSide, Side

SYM = "BTCUSDT"
FEE_PCT = 0.1


def fill(side: Side, qty: float, price: float, t: int = 0, fee_pct: float = FEE_PCT) -> Fill:
    return Fill("cid", "b1", SYM, side, qty, price, qty * price * fee_pct / 100.0, "USDT", t)


def approx(x: float) -> object:
    return pytest.approx(x, rel=1e-12, abs=1e-9)


def test_new_portfolio_starts_with_starting_balance_in_quote() -> None:
    pf = Portfolio("b1", 10_000.0)
    assert pf.quote == 10_000.0
    assert pf.equity({}) == 10_000.0
    assert not pf.position(SYM).is_open


def test_buy_then_sell_round_trip_fees_and_pnl() -> None:
    pf = Portfolio("b1", 10_000.0)
    # BUY 1 @ 100: fee = 1*100*0.1/100 = 0.10; quote = 10000 - 100 - 0.10 = 9899.90
    assert pf.apply(fill(Side.BUY, 1.0, 100.0, t=1_000)) is None
    assert pf.quote == approx(9_899.90)
    pos = pf.position(SYM)
    assert pos.quantity == 1.0 and pos.avg_entry == 100.0 and pos.opened_at == 1_000
    assert pos.entry_fees == approx(0.10)
    # equity at mark 105 = quote + qty*mark = 9899.90 + 105 = 10004.90
    assert pf.equity({SYM: 105.0}) == approx(10_004.90)
    assert pf.unrealized({SYM: 105.0}) == approx(5.0)

    # SELL 1 @ 110: fee = 0.11; quote = 9899.90 + 110 - 0.11 = 10009.79
    trade = pf.apply(fill(Side.SELL, 1.0, 110.0, t=61_000), exit_reason="take_profit")
    assert trade is not None
    assert pf.quote == approx(10_009.79)
    # pnl = (110-100)*1 - 0.10 - 0.11 = 9.79
    assert trade.pnl == approx(9.79)
    assert trade.fees == approx(0.21)
    assert trade.side is PositionSide.LONG
    assert (trade.quantity, trade.entry_price, trade.exit_price) == (1.0, 100.0, 110.0)
    assert (trade.entry_time, trade.exit_time, trade.duration_ms) == (1_000, 61_000, 60_000)
    assert trade.exit_reason == "take_profit"
    # return_pct = 100 * 9.79 / (100*1) = 9.79
    assert trade.return_pct == approx(9.79)
    # realized equals the trade P&L and the change in quote
    assert pf.realized_pnl == approx(trade.pnl)
    assert pf.quote - pf.starting_balance == approx(pf.realized_pnl)
    assert pf.fees_paid == approx(0.21)
    assert not pf.position(SYM).is_open
    assert pf.equity({SYM: 999.0}) == approx(10_009.79)


def test_partial_exits_split_entry_fees_pro_rata() -> None:
    pf = Portfolio("b1", 10_000.0)
    # BUY 2 @ 100: fee 0.20; quote 10000 - 200 - 0.20 = 9799.80
    pf.apply(fill(Side.BUY, 2.0, 100.0))
    # SELL 0.5 @ 120: fee = 0.5*120*0.001 = 0.06; closed share 0.5/2 = 0.25 -> entry fee part 0.05
    # pnl = (120-100)*0.5 - 0.05 - 0.06 = 9.89
    t1 = pf.apply(fill(Side.SELL, 0.5, 120.0))
    assert t1 is not None
    assert t1.quantity == 0.5
    assert t1.pnl == approx(9.89)
    assert t1.fees == approx(0.11)
    pos = pf.position(SYM)
    assert pos.quantity == approx(1.5)
    assert pos.avg_entry == 100.0  # unchanged by a reduction
    assert pos.entry_fees == approx(0.15)  # 0.20 - 0.05
    # quote = 9799.80 + 60 - 0.06 = 9859.74
    assert pf.quote == approx(9_859.74)

    # SELL the remaining 1.5 @ 90: fee = 1.5*90*0.001 = 0.135
    # pnl = (90-100)*1.5 - 0.15 - 0.135 = -15.285
    t2 = pf.apply(fill(Side.SELL, 1.5, 90.0))
    assert t2 is not None
    assert t2.pnl == approx(-15.285)
    assert not pf.position(SYM).is_open
    # realized = 9.89 - 15.285 = -5.395; quote = 9859.74 + 135 - 0.135 = 9994.605
    assert pf.realized_pnl == approx(-5.395)
    assert pf.quote == approx(9_994.605)
    assert pf.quote - pf.starting_balance == approx(pf.realized_pnl)
    # fees: 0.20 + 0.06 + 0.135 = 0.395
    assert pf.fees_paid == approx(0.395)


def test_adding_to_a_position_weights_the_average_entry() -> None:
    pf = Portfolio("b1", 10_000.0)
    pf.apply(fill(Side.BUY, 1.0, 100.0, t=1))  # fee 0.10
    pf.apply(fill(Side.BUY, 3.0, 120.0, t=2))  # fee 0.36
    pos = pf.position(SYM)
    # avg = (1*100 + 3*120) / 4 = 460/4 = 115
    assert pos.quantity == 4.0
    assert pos.avg_entry == approx(115.0)
    assert pos.entry_fees == approx(0.46)
    assert pos.opened_at == 1  # the first fill opened it
    # close all 4 @ 125: fee 0.5; pnl = (125-115)*4 - 0.46 - 0.5 = 39.04
    trade = pf.apply(fill(Side.SELL, 4.0, 125.0))
    assert trade is not None and trade.pnl == approx(39.04)
    assert trade.entry_price == approx(115.0)


def test_short_open_and_close_negative_quantity() -> None:
    pf = Portfolio("b1", 10_000.0)
    # SELL 2 @ 100 opens a short: fee 0.20; quote = 10000 + 200 - 0.20 = 10199.80
    assert pf.apply(fill(Side.SELL, 2.0, 100.0)) is None
    pos = pf.position(SYM)
    assert pos.quantity == -2.0 and pos.side is PositionSide.SHORT
    assert pf.quote == approx(10_199.80)
    # equity at 90 = 10199.80 + (-2)*90 = 10019.80; unrealized = (90-100)*(-2) = +20
    assert pf.equity({SYM: 90.0}) == approx(10_019.80)
    assert pf.unrealized({SYM: 90.0}) == approx(20.0)
    # BUY 2 @ 90 closes: fee 0.18; pnl = (90-100)*2*(-1) - 0.20 - 0.18 = 19.62
    trade = pf.apply(fill(Side.BUY, 2.0, 90.0))
    assert trade is not None
    assert trade.side is PositionSide.SHORT
    assert trade.pnl == approx(19.62)
    # quote = 10199.80 - 180 - 0.18 = 10019.62
    assert pf.quote == approx(10_019.62)
    assert pf.realized_pnl == approx(19.62)
    assert not pf.position(SYM).is_open


def test_losing_short() -> None:
    pf = Portfolio("b1", 1_000.0)
    pf.apply(fill(Side.SELL, 1.0, 50.0))  # fee 0.05
    # BUY 1 @ 60: fee 0.06; pnl = (60-50)*1*(-1) - 0.05 - 0.06 = -10.11
    trade = pf.apply(fill(Side.BUY, 1.0, 60.0))
    assert trade is not None and trade.pnl == approx(-10.11)
    # quote = 1000 + 50 - 0.05 - 60 - 0.06 = 989.89
    assert pf.quote == approx(989.89)


def test_reversal_closes_then_opens_the_other_side() -> None:
    pf = Portfolio("b1", 10_000.0)
    pf.apply(fill(Side.BUY, 1.0, 100.0, t=1))  # fee 0.10; quote 9899.90
    # SELL 3 @ 110: fee = 3*110*0.001 = 0.33; 1 closes the long, 2 open a short
    # exit fee part = 0.33 * 1/3 = 0.11; pnl = 10 - 0.10 - 0.11 = 9.79
    trade = pf.apply(fill(Side.SELL, 3.0, 110.0, t=2))
    assert trade is not None
    assert trade.quantity == 1.0 and trade.side is PositionSide.LONG
    assert trade.pnl == approx(9.79)
    pos = pf.position(SYM)
    assert pos.quantity == approx(-2.0)
    assert pos.avg_entry == 110.0
    assert pos.opened_at == 2
    assert pos.entry_fees == approx(0.22)  # the rest of the fill's fee: 0.33 - 0.11
    # quote = 9899.90 + 330 - 0.33 = 10229.57; equity at 110 = 10229.57 - 220 = 10009.57
    assert pf.quote == approx(10_229.57)
    assert pf.equity({SYM: 110.0}) == approx(10_009.57)
    # = start + realized - open entry fees = 10000 + 9.79 - 0.22
    assert pf.equity({SYM: 110.0}) == approx(10_000 + 9.79 - 0.22)


def test_equity_is_quote_plus_quantity_times_mark_and_defaults_to_avg_entry() -> None:
    pf = Portfolio("b1", 10_000.0)
    pf.apply(fill(Side.BUY, 2.0, 100.0, fee_pct=0.0))
    pf.apply(Fill("c", "b1", "ETHUSDT", Side.BUY, 10.0, 20.0, 0.0, "USDT", 0))
    # quote = 10000 - 200 - 200 = 9600
    assert pf.quote == approx(9_600.0)
    # with marks: 9600 + 2*150 + 10*25 = 10150
    assert pf.equity({SYM: 150.0, "ETHUSDT": 25.0}) == approx(10_150.0)
    # without an ETH mark it is valued at its avg entry 20: 9600 + 300 + 200 = 10100
    assert pf.equity({SYM: 150.0}) == approx(10_100.0)


def test_realized_pnl_equals_sum_of_trade_pnls_over_a_sequence() -> None:
    pf = Portfolio("b1", 5_000.0)
    trades = []
    for side, qty, price in [
        (Side.BUY, 1.0, 100.0), (Side.BUY, 1.0, 104.0), (Side.SELL, 0.5, 110.0),
        (Side.SELL, 2.5, 95.0),  # closes 1.5 long, opens 1.0 short
        (Side.BUY, 1.0, 90.0),
    ]:
        t = pf.apply(fill(side, qty, price))
        if t is not None:
            trades.append(t)
    assert len(trades) == 3
    assert pf.realized_pnl == approx(sum(t.pnl for t in trades))
    assert not pf.position(SYM).is_open
    # flat: quote change is exactly the realized P&L (all fees included)
    assert pf.quote - pf.starting_balance == approx(pf.realized_pnl)
