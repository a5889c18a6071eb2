"""Performance metrics: the ONE place the project computes them (backtests, ghost, paper, live, UI).

Every metric is a plain function with its formula in its docstring. Pure Python/numpy, no I/O.

Units
    *_pct functions and fields are percentages (12.5 means 12.5 %); ``cagr`` is a percentage too.
    Returns fed to sharpe/sortino are fractions (0.01 means +1 %). ``win_rate`` is a fraction 0..1.
    Money amounts (pnl, avg_win, ...) are in the quote currency of the inputs.

Edge-case conventions (no metric ever divides by zero or raises on empty input)
    * empty / too-short input -> 0.0 for float metrics, None for ratios that are undefined
      (``profit_factor``, ``payoff_ratio``), an empty list for ``daily_returns``.
    * a ratio num/den with den == 0 (``_ratio``): +inf if num > 0, -inf if num < 0, 0.0 if num == 0
      (sharpe, sortino, calmar). profit_factor / payoff_ratio use inf for "wins, no losses" and
      None for "nothing to compare" (see each docstring). Note that JSON has no inf: serialisers
      must map it (e.g. to null or a string).
    * a trade with pnl == 0 counts as a loss (it is not a win; pnl is net of fees, so true
      break-evens are rare). This keeps wins + losses == count and makes
      expectancy == win_rate * avg_win + (1 - win_rate) * avg_loss hold exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from core.types import EquityPoint, Trade

__all__ = [
    "DAY_MS",
    "YEAR_MS",
    "Drawdown",
    "TradeStats",
    "avg_loss",
    "avg_win",
    "cagr",
    "calmar",
    "daily_equity",
    "daily_returns",
    "expectancy",
    "exposure_time_pct",
    "max_drawdown",
    "payoff_ratio",
    "period_keys",
    "period_returns",
    "profit_factor",
    "sharpe",
    "sortino",
    "total_return_pct",
    "trade_stats",
    "win_rate",
]

DAY_MS = 86_400_000
YEAR_MS = 365 * DAY_MS  # crypto trades every day: 365-day years, matching sqrt(365) annualisation

EquityLike = Sequence[float] | Sequence[EquityPoint]


def _values(equity: EquityLike) -> list[float]:
    """Equity values from either plain floats or EquityPoints."""
    return [p.equity if isinstance(p, EquityPoint) else float(p) for p in equity]


def _ratio(num: float, den: float) -> float:
    """num / den, with den == 0 -> +inf / -inf / 0.0 by the sign of num."""
    if den != 0:
        return num / den
    if num > 0:
        return math.inf
    if num < 0:
        return -math.inf
    return 0.0


# --------------------------------------------------------------------------- equity curve


def total_return_pct(equity: EquityLike) -> float:
    """Total return in percent: 100 * (E_last / E_first - 1).

    0.0 with fewer than 2 points or a non-positive first equity.
    """
    v = _values(equity)
    if len(v) < 2 or v[0] <= 0:
        return 0.0
    return 100.0 * (v[-1] / v[0] - 1.0)


def cagr(equity_points: Sequence[EquityPoint]) -> float:
    """Compound annual growth rate, in percent.

        years = (t_last - t_first) / YEAR_MS        (365-day years)
        CAGR  = 100 * ((E_last / E_first) ** (1 / years) - 1)

    0.0 with fewer than 2 points, a non-positive span or a non-positive first equity;
    -100.0 when the final equity is <= 0 (everything lost). Spans much shorter than a year
    extrapolate wildly (a +1 % day is +3678 % CAGR); when the result overflows a float it is
    +inf.
    """
    if len(equity_points) < 2:
        return 0.0
    first, last = equity_points[0], equity_points[-1]
    span = last.time - first.time
    if span <= 0 or first.equity <= 0:
        return 0.0
    if last.equity <= 0:
        return -100.0
    exponent = math.log(last.equity / first.equity) * YEAR_MS / span
    try:
        return 100.0 * math.expm1(exponent)
    except OverflowError:
        return math.inf


@dataclass(slots=True, frozen=True)
class Drawdown:
    """The deepest peak-to-trough decline of an equity curve.

    max_dd_pct      depth, positive percent: 100 * (E_peak - E_trough) / E_peak
    peak_index      index of the peak: the last point at the running high before the trough
    trough_index    index of the lowest point of that drawdown
    recovery_index  first index after the trough with E >= E_peak, or None if never recovered
    duration        points from peak to recovery, or to the last point if not recovered
    """

    max_dd_pct: float = 0.0
    peak_index: int = 0
    trough_index: int = 0
    recovery_index: int | None = None
    duration: int = 0


def max_drawdown(equity: EquityLike) -> Drawdown:
    """Maximum drawdown.

        running_peak_i = max(E_0..E_i)
        dd_i           = 100 * (running_peak_i - E_i) / running_peak_i
        max_dd_pct     = max_i dd_i

    The first of equally deep drawdowns is reported. Empty input or a curve that never
    declines gives Drawdown() (0.0 %, indices 0, recovery None, duration 0). Points at or
    below a non-positive running peak are skipped (the percentage is undefined there).
    """
    v = _values(equity)
    if not v:
        return Drawdown()
    best_dd, best_peak, best_trough = 0.0, 0, 0
    peak_i = 0
    for i, e in enumerate(v):
        # >= : on a plateau the drawdown starts at its last point, where the decline begins
        if e >= v[peak_i]:
            peak_i = i
            continue
        peak = v[peak_i]
        if peak <= 0:
            continue
        dd = 100.0 * (peak - e) / peak
        if dd > best_dd:
            best_dd, best_peak, best_trough = dd, peak_i, i
    if best_dd == 0.0:
        return Drawdown()
    recovery = next((j for j in range(best_trough + 1, len(v)) if v[j] >= v[best_peak]), None)
    end = recovery if recovery is not None else len(v) - 1
    return Drawdown(best_dd, best_peak, best_trough, recovery, end - best_peak)


def daily_equity(equity_points: Sequence[EquityPoint]) -> list[tuple[int, float]]:
    """Equity resampled to UTC days: [(day_start_ms, last equity of that day), ...].

    Points are taken in time order. Days without a point (gaps) are forward-filled with
    the previous day's equity, so every calendar day between the first and last point appears.
    """
    if not equity_points:
        return []
    pts = sorted(equity_points, key=lambda p: p.time)  # stable: same-time points keep their order
    last_of_day: dict[int, float] = {}
    for p in pts:
        last_of_day[p.time // DAY_MS] = p.equity
    first_day, last_day = pts[0].time // DAY_MS, pts[-1].time // DAY_MS
    out: list[tuple[int, float]] = []
    equity = pts[0].equity
    for day in range(first_day, last_day + 1):
        equity = last_of_day.get(day, equity)
        out.append((day * DAY_MS, equity))
    return out


def daily_returns(equity_points: Sequence[EquityPoint]) -> list[float]:
    """Daily simple returns (fractions) of the UTC-day resampled equity (``daily_equity``).

        r_1 = D_1 / E_first - 1           (the first day is measured from the very first point)
        r_d = D_d / D_{d-1} - 1           for later days

    where D_d is the last equity of UTC day d (forward-filled over gaps, giving 0.0 returns).
    One return per calendar day touched; [] with fewer than 2 points. A non-positive base
    gives a 0.0 return for that day (a return on nothing is undefined).
    """
    if len(equity_points) < 2:
        return []
    days = daily_equity(equity_points)
    base = min(equity_points, key=lambda p: p.time).equity
    out: list[float] = []
    for _, e in days:
        out.append(e / base - 1.0 if base > 0 else 0.0)
        base = e
    return out


def period_keys(times_ms: Sequence[int] | np.ndarray, period: str = "month") -> np.ndarray:
    """The calendar period of each time (UTC): 'YYYY-MM' for ``month``, the ISO week 'YYYY-Www' (weeks
    start on Monday) for ``week``."""
    t = np.asarray(times_ms, dtype="datetime64[ms]")
    if period == "month":
        return np.datetime_as_string(t.astype("datetime64[M]"), unit="M")
    if period == "week":
        # numpy weeks start on Thursday (1970-01-01); +3 days moves the boundary to Monday
        monday = ((t + np.timedelta64(3, "D")).astype("datetime64[W]") - np.timedelta64(3, "D")).astype("datetime64[D]")
        uniq, inverse = np.unique(monday, return_inverse=True)
        labels = np.array([f"{d.isocalendar()[0]}-W{d.isocalendar()[1]:02d}" for d in uniq.astype(object)])
        return labels[inverse]
    raise ValueError(f"period must be 'month' or 'week', got {period!r}")


def period_returns(times_ms: Sequence[int] | np.ndarray, equity: Sequence[float] | np.ndarray,
                   start_equity: float | None = None, period: str = "month") -> list[tuple[str, float, float, float]]:
    """Return of each calendar period from period-end equity, in percent:

        E_end(p)  = the last equity of period p (points in time order)
        R(p)      = 100 * (E_end(p) / E_end(p-1) - 1),   E_end(first - 1) = start_equity
                    (default: the first point's equity)

    Periods without a point are absent. Returns [(period key, start equity, end equity, R), ...]
    (``period_keys`` for the keys); a non-positive start equity gives R = 0.0.
    """
    t = np.asarray(times_ms, dtype=np.int64)
    e = np.asarray(equity, dtype=float)
    if len(t) == 0:
        return []
    order = np.argsort(t, kind="stable")
    t, e = t[order], e[order]
    keys = period_keys(t, period)
    last = np.flatnonzero(np.append(keys[1:] != keys[:-1], True))
    prev = float(e[0]) if start_equity is None else float(start_equity)
    out = []
    for i in last.tolist():
        end = float(e[i])
        out.append((str(keys[i]), prev, end, 100.0 * (end / prev - 1.0) if prev > 0 else 0.0))
        prev = end
    return out


def sharpe(returns: Sequence[float], periods_per_year: float = 365.0) -> float:
    """Annualised Sharpe ratio, risk-free rate 0.

        Sharpe = mean(r) / std(r, ddof=1) * sqrt(periods_per_year)

    ``returns`` are per-period fractions (daily by default: crypto trades 365 days a year).
    0.0 with fewer than 2 returns; zero std follows ``_ratio`` (+inf / -inf / 0.0 by the
    sign of the mean; a flat curve gives 0.0).
    """
    if len(returns) < 2:
        return 0.0
    r = np.asarray(returns, dtype=np.float64)
    return _ratio(float(r.mean()), float(r.std(ddof=1))) * math.sqrt(periods_per_year)


def sortino(returns: Sequence[float], periods_per_year: float = 365.0) -> float:
    """Annualised Sortino ratio, target return 0.

        downside_dev = sqrt( sum(min(r_i, 0)**2) / N )      (over ALL N returns)
        Sortino      = mean(r) / downside_dev * sqrt(periods_per_year)

    (the Sortino & Price / empyrical definition). 0.0 with fewer than 2 returns; no
    negative return (downside_dev 0) follows ``_ratio``: +inf if mean > 0, 0.0 if mean == 0.
    """
    if len(returns) < 2:
        return 0.0
    r = np.asarray(returns, dtype=np.float64)
    downside = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2)))
    return _ratio(float(r.mean()), downside) * math.sqrt(periods_per_year)


def calmar(equity_points: Sequence[EquityPoint]) -> float:
    """Calmar ratio: CAGR (%) / max drawdown (%), both from ``equity_points``.

    No drawdown follows ``_ratio`` (+inf for a positive CAGR, 0.0 for a flat curve).
    """
    return _ratio(cagr(equity_points), max_drawdown(equity_points).max_dd_pct)


def exposure_time_pct(intervals: Iterable[tuple[int, int] | Trade], start_ms: int, end_ms: int) -> float:
    """Share of [start_ms, end_ms] spent with a position open, in percent.

        exposure = 100 * |union of [entry_i, exit_i] clipped to the period| / (end_ms - start_ms)

    ``intervals`` are (entry_ms, exit_ms) pairs or closed ``Trade``s (entry_time, exit_time).
    Overlaps (partial closes of one position, several symbols) are counted once. Add an
    open position as (opened_at, end_ms). 0.0 when end_ms <= start_ms or nothing overlaps.
    """
    if end_ms <= start_ms:
        return 0.0
    spans: list[tuple[int, int]] = []
    for item in intervals:
        a, b = (item.entry_time, item.exit_time) if isinstance(item, Trade) else item
        a, b = max(a, start_ms), min(b, end_ms)
        if b > a:
            spans.append((a, b))
    if not spans:
        return 0.0
    spans.sort()
    covered = 0
    cur_a, cur_b = spans[0]
    for a, b in spans[1:]:
        if a <= cur_b:  # overlaps or touches the current run: extend it
            cur_b = max(cur_b, b)
        else:
            covered += cur_b - cur_a
            cur_a, cur_b = a, b
    covered += cur_b - cur_a
    return 100.0 * covered / (end_ms - start_ms)


# --------------------------------------------------------------------------- trades


def _wins(pnls: Sequence[float]) -> list[float]:
    return [p for p in pnls if p > 0]


def _losses(pnls: Sequence[float]) -> list[float]:
    return [p for p in pnls if p <= 0]  # break-even counts as a loss (module docstring)


def win_rate(pnls: Sequence[float]) -> float:
    """Fraction of winning trades: count(pnl > 0) / count. 0.0 when there are no trades."""
    return len(_wins(pnls)) / len(pnls) if pnls else 0.0


def avg_win(pnls: Sequence[float]) -> float:
    """Mean pnl of winning trades (pnl > 0). 0.0 when there are none."""
    w = _wins(pnls)
    return sum(w) / len(w) if w else 0.0


def avg_loss(pnls: Sequence[float]) -> float:
    """Mean pnl of losing trades (pnl <= 0): a number <= 0. 0.0 when there are none."""
    lo = _losses(pnls)
    return sum(lo) / len(lo) if lo else 0.0


def expectancy(pnls: Sequence[float]) -> float:
    """Mean pnl per trade: sum(pnl) / count (= win_rate*avg_win + (1-win_rate)*avg_loss).

    0.0 when there are no trades.
    """
    return sum(pnls) / len(pnls) if pnls else 0.0


def profit_factor(pnls: Sequence[float]) -> float | None:
    """Gross profit / |gross loss| = sum(pnl > 0) / |sum(pnl <= 0)|.

    None when there are no trades or both sums are 0 (nothing to compare);
    math.inf when there are profits but no losses.
    """
    gross_profit = sum(_wins(pnls))
    gross_loss = -sum(_losses(pnls))
    if gross_loss == 0:
        return math.inf if gross_profit > 0 else None
    return gross_profit / gross_loss


def payoff_ratio(pnls: Sequence[float]) -> float | None:
    """Average win / |average loss| = avg_win / |avg_loss|.

    None when there are no trades or both averages are 0; math.inf when there are wins
    but the losses average 0 (no losses, or only break-evens); 0.0 when there are no wins.
    """
    w, lo = avg_win(pnls), -avg_loss(pnls)
    if lo == 0:
        return math.inf if w > 0 else None
    return w / lo


@dataclass(slots=True, frozen=True)
class TradeStats:
    """Per-trade statistics of a list of closed-trade pnls (see each function for formulas)."""

    count: int = 0
    wins: int = 0
    losses: int = 0  # includes break-even trades
    win_rate: float = 0.0  # fraction 0..1
    avg_win: float = 0.0
    avg_loss: float = 0.0  # <= 0
    expectancy: float = 0.0  # mean pnl per trade
    profit_factor: float | None = None
    payoff_ratio: float | None = None
    gross_profit: float = 0.0
    gross_loss: float = 0.0  # <= 0
    net_pnl: float = 0.0
    largest_win: float = 0.0
    largest_loss: float = 0.0  # <= 0


def trade_stats(pnls: Sequence[float] | Sequence[Trade]) -> TradeStats:
    """Bundle the trade metrics for ``pnls`` (floats, or closed ``Trade``s via their net pnl)."""
    values = [p.pnl if isinstance(p, Trade) else float(p) for p in pnls]
    if not values:
        return TradeStats()
    w, lo = _wins(values), _losses(values)
    return TradeStats(
        count=len(values),
        wins=len(w),
        losses=len(lo),
        win_rate=win_rate(values),
        avg_win=avg_win(values),
        avg_loss=avg_loss(values),
        expectancy=expectancy(values),
        profit_factor=profit_factor(values),
        payoff_ratio=payoff_ratio(values),
        gross_profit=sum(w),
        gross_loss=sum(lo),
        net_pnl=sum(values),
        largest_win=max(w, default=0.0),
        largest_loss=min(lo, default=0.0),
    )
