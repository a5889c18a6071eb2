"""The monitor moves states by itself: daily/weekly loss, drawdown from the MTM high-water mark,
losing streaks, liquidation distance; it reports each breach once and survives a restart."""
from __future__ import annotations

from core.types import TradingState
from risk.limits import RiskLimits
from risk.monitor import RiskMonitor

DAY = 86_400_000
T0 = 1_704_067_200_000  # Monday 2024-01-01 00:00 UTC


def test_high_water_mark_is_mark_to_market_and_drawdown_halts_with_flatten() -> None:
    m = RiskMonitor(RiskLimits(max_drawdown_pct=5.0), 10_000.0)
    assert m.observe(T0, 10_500.0) == []          # unrealized gains raise the mark
    assert m.s.high_water == 10_500.0
    assert m.observe(T0 + 1, 10_000.0) == []      # 4.76 % down
    (b,) = m.observe(T0 + 2, 9_975.0)             # 5.0 % from 10 500
    assert b.rule == "max_drawdown" and b.state is TradingState.HALTED and b.flatten
    assert "10500.00" in b.reason and "5%" in b.reason
    assert m.observe(T0 + 3, 9_900.0) == []       # reported once


def test_daily_loss_pauses_and_resets_next_day() -> None:
    m = RiskMonitor(RiskLimits(daily_loss_value=25.0), 1_000.0)
    m.observe(T0, 1_000.0)
    assert m.observe(T0 + 1000, 980.0) == []
    (b,) = m.observe(T0 + 2000, 975.0)
    assert b.rule == "daily_loss" and b.state is TradingState.PAUSED and "25.00" in b.reason
    m.observe(T0 + DAY, 975.0)                    # new day opens at 975
    assert m.s.day_open == 975.0
    (b2,) = m.observe(T0 + DAY + 1, 950.0)
    assert b2.rule == "daily_loss"


def test_weekly_loss_uses_the_iso_week() -> None:
    m = RiskMonitor(RiskLimits(weekly_loss_pct=3.0), 1_000.0)
    m.observe(T0, 1_000.0)
    assert m.observe(T0 + 3 * DAY, 975.0) == []
    (b,) = m.observe(T0 + 4 * DAY, 970.0)
    assert b.rule == "weekly_loss"
    m.observe(T0 + 7 * DAY, 970.0)                # Monday: new week
    assert m.s.week_open == 970.0


def test_consecutive_losses_pause_and_a_win_resets() -> None:
    m = RiskMonitor(RiskLimits(max_consecutive_losses=3), 1_000.0)
    assert m.on_trade_closed(-1) == [] and m.on_trade_closed(0.0) == []
    (b,) = m.on_trade_closed(-2)
    assert b.rule == "consecutive_losses" and b.state is TradingState.PAUSED
    assert m.on_trade_closed(5) == [] and m.s.consecutive_losses == 0


def test_liquidation_distance_alerts_at_80_and_closes_at_90() -> None:
    m = RiskMonitor(RiskLimits(), 1_000.0)
    # long from 100, liquidation at 90: 80 % of the way is 92, 90 % is 91
    assert m.check_liquidation(100.0, 93.0, 90.0) == []
    (a,) = m.check_liquidation(100.0, 92.0, 90.0)
    assert a.rule == "liquidation_alert" and a.state is TradingState.REDUCE_ONLY and not a.flatten
    (r,) = m.check_liquidation(100.0, 91.0, 90.0)
    assert r.rule == "liquidation_reduce" and r.flatten
    # short from 100, liquidation at 110: 90 % is 109
    m2 = RiskMonitor(RiskLimits(), 1_000.0)
    (r2,) = m2.check_liquidation(100.0, 109.0, 110.0)
    assert r2.rule == "liquidation_reduce"


def test_state_survives_a_restart() -> None:
    m = RiskMonitor(RiskLimits(max_drawdown_pct=5.0), 10_000.0)
    m.observe(T0, 12_000.0)
    m.on_trade_closed(-1)
    again = RiskMonitor(RiskLimits(max_drawdown_pct=5.0), 10_000.0)
    again.load(m.dump())
    assert again.s.high_water == 12_000.0 and again.s.consecutive_losses == 1
    (b,) = again.observe(T0 + 1, 11_000.0)        # 8.3 % below the remembered peak
    assert b.rule == "max_drawdown"


def test_dump_holds_every_field_of_the_state_as_asdict_would() -> None:
    """dump() is written by hand for speed: it must still carry every field (a new one included), and
    its list must not be the live one."""
    from dataclasses import asdict, fields

    from risk.monitor import MonitorState
    m = RiskMonitor(RiskLimits(), 1000.0)
    m.s = MonitorState(**{f.name: v for f, v in zip(fields(MonitorState), (1.5, "2026-12-05", 2.5, "2026-W49",
                                                                           3.5, 4, 5, ["daily_loss"]))})
    d = m.dump()
    assert d == asdict(m.s) and set(d) == {f.name for f in fields(MonitorState)}
    d["alerted"].append("x")  # type: ignore[union-attr]
    assert m.s.alerted == ["daily_loss"]
