"""core.metrics against hand-computed values (the arithmetic is written next to each assert)."""
from __future__ import annotations

import math

import pytest

from core.metrics import (
    DAY_MS,
    YEAR_MS,
    Drawdown,
    TradeStats,
    avg_loss,
    avg_win,
    cagr,
    calmar,
    daily_equity,
    daily_returns,
    expectancy,
    exposure_time_pct,
    max_drawdown,
    payoff_ratio,
    profit_factor,
    sharpe,
    sortino,
    total_return_pct,
    trade_stats,
    win_rate,
)
from core.types import EquityPoint, PositionSide, Trade

T0 = 1_704_067_200_000  # 2024-01-01T00:00Z, a UTC day boundary
H = 3_600_000


def pts(*pairs: tuple[int, float]) -> list[EquityPoint]:
    return [EquityPoint(t, e) for t, e in pairs]


# --------------------------------------------------------------------------- returns


def test_total_return_pct() -> None:
    # 99 / 100 - 1 = -1 %
    assert total_return_pct([100, 110, 99]) == pytest.approx(-1.0)
    # 125 / 100 - 1 = +25 %, EquityPoints accepted too
    assert total_return_pct(pts((T0, 100), (T0 + H, 125))) == pytest.approx(25.0)
    assert total_return_pct([]) == 0.0
    assert total_return_pct([100]) == 0.0
    assert total_return_pct([0, 10]) == 0.0  # no base to measure from


def test_cagr() -> None:
    # 100 -> 121 over two 365-day years: 1.21 ** (1/2) - 1 = 10 %
    assert cagr(pts((T0, 100), (T0 + 2 * YEAR_MS, 121))) == pytest.approx(10.0)
    # 100 -> 110 over half a year: 1.1 ** 2 - 1 = 21 %
    assert cagr(pts((T0, 100), (T0 + YEAR_MS // 2, 105), (T0 + YEAR_MS // 2, 110))) == pytest.approx(21.0)
    assert cagr(pts((T0, 100))) == 0.0
    assert cagr([]) == 0.0
    assert cagr(pts((T0, 100), (T0, 120))) == 0.0  # zero span
    assert cagr(pts((T0, 100), (T0 + YEAR_MS, 0))) == -100.0
    assert cagr(pts((T0, 100), (T0 + 1, 200))) == math.inf  # doubling in 1 ms overflows


# --------------------------------------------------------------------------- drawdown


def test_max_drawdown_unrecovered() -> None:
    # running peaks 100 120 120 120 130 130 130
    # drawdowns: idx2 (120-90)/120 = 25 %, idx5 (130-65)/130 = 50 %, idx6 (130-70)/130 = 46 %
    dd = max_drawdown([100, 120, 90, 110, 130, 65, 70])
    assert dd == Drawdown(pytest.approx(50.0), 4, 5, None, 2)  # duration: peak 4 -> last point 6


def test_max_drawdown_recovered() -> None:
    # peak 120 at idx1, trough 90 at idx2 (25 %), first >= 120 at idx4; duration 4 - 1 = 3
    assert max_drawdown([100, 120, 90, 110, 125]) == Drawdown(pytest.approx(25.0), 1, 2, 4, 3)


def test_max_drawdown_plateau_and_edges() -> None:
    # plateau at 100: the decline starts from the last point of it (idx1)
    assert max_drawdown([100, 100, 80, 100]) == Drawdown(pytest.approx(20.0), 1, 2, 3, 2)
    # equally deep drawdowns: the first one is reported
    assert max_drawdown([100, 90, 100, 90]) == Drawdown(pytest.approx(10.0), 0, 1, 2, 2)
    assert max_drawdown([]) == Drawdown()
    assert max_drawdown([1, 2, 3]) == Drawdown()
    assert max_drawdown(pts((T0, 100), (T0 + H, 75))).max_dd_pct == pytest.approx(25.0)


# --------------------------------------------------------------------------- daily resampling


def test_daily_returns_resample_last_of_day_and_ffill() -> None:
    points = pts(
        (T0, 100), (T0 + 12 * H, 105), (T0 + 23 * H, 110),  # day 0 ends at 110
        (T0 + DAY_MS + 10 * H, 99),                          # day 1 ends at 99
        # day 2: no point -> forward-filled 99
        (T0 + 3 * DAY_MS + 6 * H, 108.9),                    # day 3 ends at 108.9
    )
    assert daily_equity(points) == [(T0, 110), (T0 + DAY_MS, 99), (T0 + 2 * DAY_MS, 99),
                                    (T0 + 3 * DAY_MS, 108.9)]
    # day0: 110/100 - 1 = +10 % (from the first point); day1: 99/110 - 1 = -10 %;
    # day2: 99/99 - 1 = 0; day3: 108.9/99 - 1 = +10 %
    assert daily_returns(points) == pytest.approx([0.10, -0.10, 0.0, 0.10])
    # unsorted input gives the same answer
    assert daily_returns(list(reversed(points))) == pytest.approx([0.10, -0.10, 0.0, 0.10])


def test_daily_returns_edges() -> None:
    assert daily_returns([]) == []
    assert daily_returns(pts((T0, 100))) == []
    assert daily_returns(pts((T0, 100), (T0 + H, 102))) == pytest.approx([0.02])  # one day
    assert daily_equity([]) == []


# --------------------------------------------------------------------------- risk-adjusted


def test_sharpe_hand_computed() -> None:
    r = [0.01, 0.02, -0.01]
    mean = 0.02 / 3  # 0.006667
    # deviations: 0.003333, 0.013333, -0.016667; squares sum 4.6667e-4; / (n-1 = 2) = 2.3333e-4
    var = ((0.01 - mean) ** 2 + (0.02 - mean) ** 2 + (-0.01 - mean) ** 2) / 2
    assert var == pytest.approx(2.3333333e-4)
    expected = mean / math.sqrt(var) * math.sqrt(365)  # 0.43644 * 19.105 = 8.338
    assert sharpe(r) == pytest.approx(expected)
    assert sharpe(r) == pytest.approx(8.3381, rel=1e-4)


def test_sortino_hand_computed() -> None:
    r = [0.01, 0.02, -0.01]
    mean = 0.02 / 3
    # downside: only -0.01 contributes; sqrt(0.0001 / 3) = 0.0057735 (over all N = 3)
    downside = math.sqrt(0.0001 / 3)
    assert sortino(r) == pytest.approx(mean / downside * math.sqrt(365))  # 1.1547 * 19.105 = 22.06
    assert sortino(r) == pytest.approx(22.0604, rel=1e-4)


def test_sharpe_sortino_edges() -> None:
    assert sharpe([]) == 0.0 and sortino([]) == 0.0
    assert sharpe([0.05]) == 0.0 and sortino([0.05]) == 0.0  # need 2 returns
    assert sharpe([0.0, 0.0, 0.0]) == 0.0  # flat curve: 0/0 -> 0.0
    assert sharpe([0.01, 0.01]) == math.inf  # positive mean, zero std
    assert sortino([0.01, 0.02]) == math.inf  # no downside
    assert sortino([0.0, 0.0]) == 0.0


def test_calmar() -> None:
    # 100 -> 150 -> 120 over one year: CAGR = 20 %; max DD = (150-120)/150 = 20 % -> 1.0
    points = pts((T0, 100), (T0 + YEAR_MS // 2, 150), (T0 + YEAR_MS, 120))
    assert calmar(points) == pytest.approx(1.0)
    # no drawdown, positive CAGR -> inf; flat -> 0.0; empty -> 0.0
    assert calmar(pts((T0, 100), (T0 + YEAR_MS, 110))) == math.inf
    assert calmar(pts((T0, 100), (T0 + YEAR_MS, 100))) == 0.0
    assert calmar([]) == 0.0


def test_exposure_time_pct() -> None:
    # [0,10] U [5,20] = [0,20] (20) plus [30,40] (10) over 100 -> 30 %
    assert exposure_time_pct([(0, 10), (5, 20), (30, 40)], 0, 100) == pytest.approx(30.0)
    # clipped to the period: [-10, 10] counts [0, 10] -> 10 %; touching runs merge
    assert exposure_time_pct([(-10, 10), (10, 15), (95, 200)], 0, 100) == pytest.approx(20.0)
    trade = Trade("b", "BTCUSDT", PositionSide.LONG, 1.0, 100, 110, T0, T0 + 6 * H, 10.0, 0.1)
    assert exposure_time_pct([trade], T0, T0 + DAY_MS) == pytest.approx(25.0)  # 6 h of 24 h
    assert exposure_time_pct([], 0, 100) == 0.0
    assert exposure_time_pct([(0, 10)], 100, 100) == 0.0  # empty period


# --------------------------------------------------------------------------- trades

PNLS = [10.0, -5.0, 20.0, 0.0, -15.0]
# wins: 10, 20 (2)   losses (pnl <= 0): -5, 0, -15 (3)
# win_rate = 2/5 = 0.4; avg_win = 30/2 = 15; avg_loss = -20/3 = -6.667
# expectancy = 10/5 = 2.0 = 0.4*15 + 0.6*(-20/3) = 6 - 4
# profit factor = 30 / 20 = 1.5; payoff = 15 / (20/3) = 2.25


def test_trade_metrics_hand_computed() -> None:
    assert win_rate(PNLS) == pytest.approx(0.4)
    assert avg_win(PNLS) == pytest.approx(15.0)
    assert avg_loss(PNLS) == pytest.approx(-20 / 3)
    assert expectancy(PNLS) == pytest.approx(2.0)
    wr = win_rate(PNLS)
    assert expectancy(PNLS) == pytest.approx(wr * avg_win(PNLS) + (1 - wr) * avg_loss(PNLS))
    assert profit_factor(PNLS) == pytest.approx(1.5)
    assert payoff_ratio(PNLS) == pytest.approx(2.25)


def test_trade_stats_bundle() -> None:
    st = trade_stats(PNLS)
    assert st == TradeStats(
        count=5, wins=2, losses=3, win_rate=pytest.approx(0.4), avg_win=pytest.approx(15.0),
        avg_loss=pytest.approx(-20 / 3), expectancy=pytest.approx(2.0), profit_factor=pytest.approx(1.5),
        payoff_ratio=pytest.approx(2.25), gross_profit=30.0, gross_loss=-20.0, net_pnl=10.0,
        largest_win=20.0, largest_loss=-15.0,
    )
    trades = [Trade("b", "ETHUSDT", PositionSide.SHORT, 1.0, 10, 9, 0, 1, p, 0.0) for p in PNLS]
    assert trade_stats(trades) == st


def test_trade_metric_edges() -> None:
    assert trade_stats([]) == TradeStats()
    for fn in (win_rate, avg_win, avg_loss, expectancy):
        assert fn([]) == 0.0
    assert profit_factor([]) is None and payoff_ratio([]) is None
    # only wins: no loss to divide by -> inf
    assert profit_factor([5.0, 5.0]) == math.inf and payoff_ratio([5.0, 5.0]) == math.inf
    # only losses: 0 / 4 = 0.0
    assert profit_factor([-1.0, -3.0]) == 0.0 and payoff_ratio([-1.0, -3.0]) == 0.0
    assert win_rate([-1.0, -3.0]) == 0.0
    # only break-evens: nothing to compare
    assert profit_factor([0.0, 0.0]) is None and payoff_ratio([0.0, 0.0]) is None
    st = trade_stats([0.0, 0.0])
    assert (st.wins, st.losses, st.win_rate) == (0, 2, 0.0)
