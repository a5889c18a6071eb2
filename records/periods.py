"""Figures per calendar period (month or ISO week) of one equity curve — a running bot's, a mode's or a
backtest's: return, P&L, realized P&L, fees, trades, win rate, max drawdown inside the period, and the
benchmark (buy-and-hold of the same symbol over the same period). Pure: no I/O; every formula is
``core.metrics``'.

* return: ``core.metrics.period_returns`` (from period-end equity; the first period from its first
  point, or the starting balance when given);
* P&L: end equity − start equity of the period; realized P&L: the closed trades' net P&L (trades
  belong to the period of their exit); fees: the fees of the fills in the period (trades' fees when
  there are no fills);
* win rate: ``core.metrics.win_rate`` of the period's trades; max drawdown: ``core.metrics.max_drawdown``
  of the equity points inside the period, starting from its start equity;
* benchmark: 100 × (last close in the period / last close before it − 1); the first period from its
  first close. None when there are no prices.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from core import metrics


@dataclass(slots=True)
class PeriodRow:
    period: str  # '2025-01' or '2025-W03'
    start_equity: float
    end_equity: float
    return_pct: float
    pnl: float
    realized_pnl: float
    fees: float
    trades: int
    win_rate_pct: float | None  # None without trades
    max_drawdown_pct: float
    benchmark_pct: float | None

    def dump(self) -> dict[str, Any]:
        return asdict(self)


def table(equity_t: Sequence[int], equity_v: Sequence[float], trades: Sequence[tuple[int, float, float]] = (),
          fees: Sequence[tuple[int, float]] | None = None,
          prices: tuple[Sequence[int], Sequence[float]] | None = None,
          start_equity: float | None = None, period: str = "month") -> list[PeriodRow]:
    """One row per period that has equity points. ``trades``: (exit time, net P&L, fees);
    ``fees``: (time, fee in quote) of the fills (None: take the trades' fees); ``prices``: (times,
    closes) of the benchmark."""
    t = np.asarray(equity_t, dtype=np.int64)
    v = np.asarray(equity_v, dtype=float)
    if len(t) == 0:
        return []
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    rets = metrics.period_returns(t, v, start_equity, period)
    keys = metrics.period_keys(t, period)
    trade_keys = metrics.period_keys([x[0] for x in trades], period) if trades else np.array([], dtype=str)
    fee_src = fees if fees is not None else [(x[0], x[2]) for x in trades]
    fee_keys = metrics.period_keys([x[0] for x in fee_src], period) if fee_src else np.array([], dtype=str)
    bench = _benchmark(prices, period)
    rows = []
    for key, start, end, ret in rets:
        inside = v[keys == key]
        pnls = [x[1] for x, k in zip(trades, trade_keys) if k == key]
        rows.append(PeriodRow(
            period=key, start_equity=start, end_equity=end, return_pct=ret, pnl=end - start,
            realized_pnl=float(sum(pnls)), fees=float(sum(x[1] for x, k in zip(fee_src, fee_keys) if k == key)),
            trades=len(pnls), win_rate_pct=100.0 * metrics.win_rate(pnls) if pnls else None,
            max_drawdown_pct=metrics.max_drawdown([start, *inside.tolist()]).max_dd_pct,
            benchmark_pct=bench.get(key)))
    return rows


def _benchmark(prices: tuple[Sequence[int], Sequence[float]] | None, period: str) -> dict[str, float]:
    if prices is None or len(prices[0]) == 0:
        return {}
    return {k: pct for k, _, _, pct in metrics.period_returns(prices[0], prices[1], None, period)}


def total(rows: list[PeriodRow], equity_v: Sequence[float] | None = None, label: str = "total") -> PeriodRow | None:
    """The rows taken together: compounded return and benchmark, summed P&L, fees and trades; the max
    drawdown of the whole curve ``equity_v`` (else the worst period's, a lower bound)."""
    if not rows:
        return None
    trades = sum(r.trades for r in rows)
    won = sum((r.win_rate_pct or 0.0) * r.trades / 100.0 for r in rows)
    bench = [r.benchmark_pct for r in rows if r.benchmark_pct is not None]
    return PeriodRow(
        period=label, start_equity=rows[0].start_equity, end_equity=rows[-1].end_equity,
        return_pct=metrics.total_return_pct([rows[0].start_equity, rows[-1].end_equity]),
        pnl=sum(r.pnl for r in rows), realized_pnl=sum(r.realized_pnl for r in rows), fees=sum(r.fees for r in rows),
        trades=trades, win_rate_pct=100.0 * won / trades if trades else None,
        max_drawdown_pct=(metrics.max_drawdown([rows[0].start_equity, *equity_v]).max_dd_pct if equity_v is not None
                          else max(r.max_drawdown_pct for r in rows)),
        benchmark_pct=(100.0 * (float(np.prod([1 + b / 100.0 for b in bench])) - 1.0)) if bench else None)


def combine(curves: Sequence[tuple[Sequence[int], Sequence[float]]]) -> tuple[np.ndarray, np.ndarray]:
    """Several bots' equity curves as one (a mode's): on the union of their times, each bot's last
    equity carried forward (before its first point, its first equity: a bot starting later is not a
    deposit), summed."""
    curves = [(np.asarray(t, dtype=np.int64), np.asarray(v, dtype=float)) for t, v in curves if len(t)]
    if not curves:
        return np.array([], dtype=np.int64), np.array([], dtype=float)
    times = np.unique(np.concatenate([t for t, _ in curves]))
    total_v = np.zeros(len(times))
    for t, v in curves:
        order = np.argsort(t, kind="stable")
        t, v = t[order], v[order]
        idx = np.searchsorted(t, times, side="right") - 1
        total_v += np.where(idx >= 0, v[np.clip(idx, 0, None)], v[0])
    return times, total_v
