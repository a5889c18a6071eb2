"""The risk monitor: watches a bot's mark-to-market equity and closed trades, and moves its
trading state down by itself when a loss limit or the liquidation distance is breached.

It keeps the high-water mark (of balances plus unrealized P&L at mark, not of closed trades
only), the UTC day's and ISO week's opening equity and the run of losses; its state is part
of the bot's snapshot, so a restart forgets nothing. Breaches only ever tighten the state;
moving back up takes an explicit command.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from core.clock import iso_week, utc_day
from core.types import TradingState
from risk.limits import RiskLimits


@dataclass(slots=True, frozen=True)
class Breach:
    rule: str
    state: TradingState
    reason: str
    flatten: bool = False  # close the position(s) first (FLATTEN then HALTED, or the 90% liquidation rule)


@dataclass(slots=True)
class MonitorState:
    high_water: float = 0.0
    day: str = ""
    day_open: float = 0.0
    week: str = ""
    week_open: float = 0.0
    consecutive_losses: int = 0
    last_entry_ms: int | None = None
    alerted: list[str] = field(default_factory=list)  # rules already breached this period


_day = utc_day


_week = iso_week


class RiskMonitor:
    def __init__(self, limits: RiskLimits, starting_equity: float) -> None:
        self.limits = limits
        self.s = MonitorState(high_water=starting_equity)

    # ---- inputs -------------------------------------------------------------------------
    def observe(self, now_ms: int, equity: float) -> list[Breach]:
        """Called with every mark-to-market equity. Returns new breaches (each reported once a period)."""
        s, lim = self.s, self.limits
        day, week = _day(now_ms), _week(now_ms)
        if day != s.day:
            s.day, s.day_open = day, equity
            s.alerted = [a for a in s.alerted if not a.startswith("daily")]
        if week != s.week:
            s.week, s.week_open = week, equity
            s.alerted = [a for a in s.alerted if not a.startswith("weekly")]
        s.high_water = max(s.high_water, equity)
        out: list[Breach] = []
        day_loss = s.day_open - equity
        if _hit(day_loss, s.day_open, lim.daily_loss_value, lim.daily_loss_pct):
            out += self._once("daily_loss", TradingState.PAUSED,
                              f"daily loss {day_loss:.2f} ({_pct(day_loss, s.day_open):.2f}%) reached the limit "
                              f"({_fmt(lim.daily_loss_value, lim.daily_loss_pct)}); day opened at {s.day_open:.2f}")
        week_loss = s.week_open - equity
        if _hit(week_loss, s.week_open, lim.weekly_loss_value, lim.weekly_loss_pct):
            out += self._once("weekly_loss", TradingState.PAUSED,
                              f"weekly loss {week_loss:.2f} reached the limit "
                              f"({_fmt(lim.weekly_loss_value, lim.weekly_loss_pct)}); week opened at {s.week_open:.2f}")
        if lim.max_drawdown_pct is not None and s.high_water > 0:
            dd = _pct(s.high_water - equity, s.high_water)
            if dd >= lim.max_drawdown_pct:
                out += self._once("max_drawdown", TradingState.HALTED,
                                  f"drawdown {dd:.2f}% from high-water {s.high_water:.2f} reached "
                                  f"{lim.max_drawdown_pct:g}%: flatten, then HALTED", flatten=True)
        return out

    def on_trade_closed(self, pnl: float) -> list[Breach]:
        s, lim = self.s, self.limits
        s.consecutive_losses = s.consecutive_losses + 1 if pnl <= 0 else 0
        if s.consecutive_losses == 0:
            s.alerted = [a for a in s.alerted if a != "consecutive_losses"]
        if lim.max_consecutive_losses is not None and s.consecutive_losses >= lim.max_consecutive_losses:
            return self._once("consecutive_losses", TradingState.PAUSED,
                              f"{s.consecutive_losses} losing trades in a row (limit {lim.max_consecutive_losses})")
        return []

    def on_entry(self, now_ms: int) -> None:
        self.s.last_entry_ms = now_ms

    def check_liquidation(self, entry: float, mark: float, liquidation: float | None) -> list[Breach]:
        """How far the mark has travelled from entry toward liquidation: alert at 80%, reduce at 90%."""
        if liquidation is None or entry == liquidation:
            return []
        travelled = 100 * (entry - mark) / (entry - liquidation)
        lim = self.limits
        if travelled >= lim.liquidation_reduce_pct:
            return self._once("liquidation_reduce", TradingState.REDUCE_ONLY,
                              f"{travelled:.0f}% of the way to liquidation at {liquidation:.8g} "
                              f"(>= {lim.liquidation_reduce_pct:g}%): position closed", flatten=True)
        if travelled >= lim.liquidation_alert_pct:
            return self._once("liquidation_alert", TradingState.REDUCE_ONLY,
                              f"{travelled:.0f}% of the way to liquidation at {liquidation:.8g} "
                              f"(>= {lim.liquidation_alert_pct:g}%): reduce only")
        return []

    # ---- views --------------------------------------------------------------------------
    def drawdown_pct(self, equity: float) -> float:
        return _pct(self.s.high_water - equity, self.s.high_water) if self.s.high_water else 0.0

    def dump(self) -> dict[str, object]:
        # by hand, not dataclasses.asdict (its recursive deep copy was ~4 % of a trading step)
        s = self.s
        return {"high_water": s.high_water, "day": s.day, "day_open": s.day_open, "week": s.week,
                "week_open": s.week_open, "consecutive_losses": s.consecutive_losses,
                "last_entry_ms": s.last_entry_ms, "alerted": list(s.alerted)}

    def load(self, data: dict[str, object]) -> None:
        if data:
            self.s = MonitorState(**data)  # type: ignore[arg-type]

    def _once(self, rule: str, state: TradingState, reason: str, flatten: bool = False) -> list[Breach]:
        if rule in self.s.alerted:
            return []
        self.s.alerted.append(rule)
        return [Breach(rule, state, reason, flatten)]


def _pct(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole else 0.0


def _hit(loss: float, base: float, value: float | None, pct: float | None) -> bool:
    return (value is not None and loss >= value) or (pct is not None and base > 0 and _pct(loss, base) >= pct)


def _fmt(value: float | None, pct: float | None) -> str:
    return " / ".join(x for x in (f"{value:g}" if value is not None else "", f"{pct:g}%" if pct is not None else "") if x)
