"""The backtest report: every figure from ``core.metrics`` (the one metrics module), JSON-safe.

Returns are measured on the per-candle equity curve (equity at each candle's close). Sharpe and
Sortino use daily returns (``metrics.daily_returns``; 365-day years). Max drawdown is taken on
the per-candle curve, with its peak/trough/recovery dates and its duration. Buy-and-hold is the
same starting balance put into the symbol at the first candle's close (no fee) and held.
JSON has no inf/NaN: such values become null (see ``json_safe``).

DCA bots (``backtest.dca``) add ``deals`` (one row per deal: P&L, safety orders used, duration,
max floating drawdown, close reason; deals open at the end as ``OPEN``), ``deals_summary``,
their ``dca`` settings and ``notes`` (run settings that did not apply to them). Their
buy-and-hold is the pairs in equal parts (``backtest.dca.benchmark_index``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from backtest.data import iso
from backtest.result import BotResult
from core import metrics
import records.periods as periods
from core.types import INTERVAL_MS, EquityPoint, Trade

if TYPE_CHECKING:
    from backtest.result import DealRow


def json_safe(x: Any) -> Any:
    """Recursively replace inf/NaN by None and numpy scalars by Python ones."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def daily_points(times: np.ndarray, equity: np.ndarray, close_offset: int) -> list[EquityPoint]:
    """The first point plus the last point of each UTC day: what ``metrics.daily_returns`` reads
    (it keeps only the first equity and each day's last), without a million EquityPoints."""
    if len(times) == 0:
        return []
    t = times + close_offset  # equity is marked at each candle's close
    day = t // metrics.DAY_MS
    last = np.flatnonzero(np.append(day[1:] != day[:-1], True))
    pts = [EquityPoint(int(t[0]), float(equity[0]))]
    pts.extend(EquityPoint(int(t[i]), float(equity[i])) for i in last.tolist())
    return pts


@dataclass(slots=True)
class DrawdownInfo:
    max_drawdown_pct: float
    peak_time: str | None
    trough_time: str | None
    recovery_time: str | None  # None: not recovered by the end of the data
    duration_bars: int
    duration_days: float


def drawdown_info(times: np.ndarray, equity: np.ndarray, close_offset: int) -> DrawdownInfo:
    dd = metrics.max_drawdown(equity.tolist())
    if dd.max_dd_pct == 0.0:
        return DrawdownInfo(0.0, None, None, None, 0, 0.0)
    end = dd.recovery_index if dd.recovery_index is not None else len(times) - 1
    span_ms = int(times[end] - times[dd.peak_index])
    t = times + close_offset
    return DrawdownInfo(
        dd.max_dd_pct, iso(int(t[dd.peak_index])), iso(int(t[dd.trough_index])),
        iso(int(t[dd.recovery_index])) if dd.recovery_index is not None else None,
        dd.duration, span_ms / metrics.DAY_MS,
    )


def trade_row(t: Trade) -> dict[str, Any]:
    return {
        "symbol": t.symbol, "side": t.side.value, "quantity": t.quantity, "entry_time": iso(t.entry_time),
        "exit_time": iso(t.exit_time), "entry_price": t.entry_price, "exit_price": t.exit_price,
        "pnl": t.pnl, "return_pct": t.return_pct, "fees": t.fees, "exit_reason": t.exit_reason,
        "entry_ms": t.entry_time, "exit_ms": t.exit_time, "temperature": t.temperature, "regime": t.regime,
    }


def deal_row_json(d: DealRow) -> dict[str, Any]:
    """A deals-table row with ISO times (and the epoch-ms ones, like trade rows)."""
    return {
        "id": d.id, "symbol": d.symbol, "side": d.side, "status": d.status,
        "opened": iso(d.opened_at), "closed": iso(d.closed_at), "duration_h": d.duration_ms / 3_600_000,
        "safety_orders": d.safety_orders, "max_safety_orders": d.max_safety_orders,
        "base_price": d.base_price, "avg_entry": d.avg_entry, "exit_price": d.exit_price,
        "quantity": d.quantity, "invested": d.invested, "pnl": d.pnl, "pnl_pct": d.pnl_pct, "fees": d.fees,
        "max_drawdown_pct": d.max_drawdown_pct, "close_reason": d.close_reason,
        "tp_steps_filled": d.tp_steps_filled, "opened_ms": d.opened_at, "closed_ms": d.closed_at,
    }


def deals_summary(deals: list[DealRow]) -> dict[str, Any]:
    """Counts and averages over the deals table (closed deals for the averages)."""
    closed = [d for d in deals if not d.open]
    n = len(closed)
    return {
        "closed": sum(1 for d in closed if d.status == "CLOSED"),
        "stopped": sum(1 for d in closed if d.status == "STOPPED"),
        "open": len(deals) - n,
        "realized_pnl": sum(d.pnl for d in closed),
        "open_pnl": sum(d.pnl for d in deals if d.open),
        "avg_safety_orders": sum(d.safety_orders for d in closed) / n if n else None,
        "max_safety_orders_used": max((d.safety_orders for d in deals), default=0),
        "avg_duration_h": sum(d.duration_ms for d in closed) / n / 3_600_000 if n else None,
        "max_duration_h": max((d.duration_ms for d in deals), default=0) / 3_600_000,
        "worst_deal_drawdown_pct": max((d.max_drawdown_pct for d in deals), default=0.0),
        "max_invested": max((d.invested for d in deals), default=0.0),
        "close_reasons": _count(d.close_reason for d in closed),
    }


def build_report(r: BotResult, include_trades: bool = True) -> dict[str, Any]:
    """The full report of one bot's backtest as a JSON-safe dict."""
    close_offset = INTERVAL_MS[r.interval]
    n = r.bars
    out: dict[str, Any] = {
        "bot": r.name, "symbol": r.symbol, "strategy": r.strategy, "params": r.params, "interval": r.interval,
        "engine_path": r.path, "bars": n, "fill_model": asdict(r.fill_model),
        "starting_balance": r.starting_balance,
    }
    if r.kind == "dca":
        out.update({"kind": "dca", "symbols": r.symbols, "dca": r.dca_settings, "notes": r.notes})
    if n == 0:
        return json_safe(out)
    start_ms, end_ms = int(r.times[0]), int(r.times[-1]) + close_offset
    eq = r.equity
    first = EquityPoint(start_ms, r.starting_balance)
    last = EquityPoint(end_ms, float(eq[-1]))
    days = daily_points(r.times, eq, close_offset)
    rets = metrics.daily_returns([first, *days])
    cagr = metrics.cagr([first, last])
    dd = drawdown_info(r.times, eq, close_offset)
    stats = metrics.trade_stats(r.trades)
    intervals: list[tuple[int, int] | Trade] = list(r.trades)
    if r.kind == "dca":  # every open deal, on any pair
        intervals.extend((d.opened_at, end_ms) for d in r.deals if d.open)
    elif r.open_quantity:
        intervals.append((r.open_since, end_ms))
    bh_curve = r.starting_balance * r.closes / r.closes[0]
    bh_days = daily_points(r.times, bh_curve, close_offset)
    out.update({
        "start": iso(start_ms), "end": iso(end_ms),
        "final_equity": float(eq[-1]),
        "total_return_pct": metrics.total_return_pct([r.starting_balance, float(eq[-1])]),
        "cagr_pct": cagr,
        "sharpe": metrics.sharpe(rets),
        "sortino": metrics.sortino(rets),
        "calmar": metrics._ratio(cagr, dd.max_drawdown_pct),  # = metrics.calmar on this curve's CAGR and DD
        "max_drawdown": asdict(dd),
        "trades": stats.count,
        "win_rate_pct": 100.0 * stats.win_rate,
        "profit_factor": stats.profit_factor,
        "expectancy": stats.expectancy,
        "payoff_ratio": stats.payoff_ratio,
        "avg_win": stats.avg_win, "avg_loss": stats.avg_loss,
        "net_pnl": stats.net_pnl, "largest_win": stats.largest_win, "largest_loss": stats.largest_loss,
        "exposure_time_pct": metrics.exposure_time_pct(intervals, start_ms, end_ms),
        "fees_paid": r.fees_paid,
        "funding": r.funding,
        "orders_sent": r.orders_sent, "orders_expired": r.orders_expired, "risk_denials": r.denials,
        "signals": len(r.signals), "signals_acted": sum(1 for s in r.signals if s[2]),
        "open_position": ({"quantity": r.open_quantity, "avg_entry": r.open_entry, "since": iso(r.open_since)}
                          if r.open_quantity else None),
        "buy_and_hold": {
            "total_return_pct": metrics.total_return_pct([float(r.closes[0]), float(r.closes[-1])]),
            "cagr_pct": metrics.cagr([first, EquityPoint(end_ms, float(bh_curve[-1]))]),
            "max_drawdown_pct": metrics.max_drawdown(bh_curve.tolist()).max_dd_pct,
            "sharpe": metrics.sharpe(metrics.daily_returns([first, *bh_days])),
        },
        "exit_reasons": _count(t.exit_reason for t in r.trades),
        "by_regime": by_regime(r.trades),
        "trading_state": r.trading_state,
        "halt": halt_summary(r),
        # the monthly report (records.periods): the same rows a running bot's report has
        "periods": [row.dump() for row in periods.table(
            r.times, eq, [(t.exit_time, t.pnl, t.fees) for t in r.trades], None, (r.times, r.closes),
            r.starting_balance, "month")],
        "risk_events": [{"time": iso(e.time), "rule": e.rule, "state": e.state, "reason": e.reason,
                         "flattened": e.flattened} for e in r.risk_events],
    })
    if r.kind == "dca":
        out["buy_and_hold"]["pairs"] = r.symbols  # equal parts of each pair
        out["deals_summary"] = deals_summary(r.deals)
        out["deals"] = [deal_row_json(d) for d in r.deals]
    if include_trades:
        out["trade_list"] = [trade_row(t) for t in r.trades]
    return json_safe(out)


def halt_summary(r: BotResult) -> str | None:
    """When a risk rule stopped the bot during the run, say so plainly: the state, when, which rule and
    why, and how much of the run was left without trading (None when it traded to the end)."""
    if r.trading_state == "ACTIVE" or not r.risk_events or r.bars == 0:
        return None
    e = next((x for x in r.risk_events if x.state == r.trading_state), r.risk_events[-1])
    months = metrics.period_keys(r.times, "month")
    after = months[r.times >= e.time - INTERVAL_MS[r.interval]]
    total, left = len(set(months.tolist())), len(set(after.tolist()))
    bars_left = int((r.times >= e.time).sum())
    what = {"HALTED": "no orders at all", "PAUSED": "no new entries",
            "REDUCE_ONLY": "only orders that shrink the position"}.get(r.trading_state, "restricted")
    return (f"{r.trading_state} on {iso(e.time)} by {e.rule} ({e.reason})"
            + (", position flattened" if e.flattened else "")
            + f": {what} for the rest of the run — it traded {total - left + 1} of {total} month"
              f"{'s' if total > 1 else ''} ({100.0 * (r.bars - bars_left) / r.bars:.0f}% of the bars)")


def by_regime(trades: list[Trade]) -> dict[str, dict[str, float]]:
    """Performance per market regime the trades opened in (strategy.regime); {} when none has one."""
    out: dict[str, dict[str, float]] = {}
    for t in trades:
        if t.regime:
            g = out.setdefault(t.regime, {"trades": 0, "pnl": 0.0, "wins": 0})
            g["trades"] += 1
            g["pnl"] += t.pnl
            g["wins"] += t.pnl > 0
    for g in out.values():
        g["win_rate_pct"] = 100.0 * g.pop("wins") / g["trades"]
    return out


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for k in items:
        out[k] = out.get(k, 0) + 1
    return out


def summary_text(rep: dict[str, Any]) -> str:
    """A few readable lines of one report."""
    def f(x: Any, spec: str = ".2f") -> str:
        return "n/a" if x is None else format(x, spec)

    dd = rep.get("max_drawdown") or {}
    bh = rep.get("buy_and_hold") or {}
    lines = [
        f"{rep['bot']}  {','.join(rep.get('symbols') or [rep['symbol']])} {rep['interval']}  {rep['strategy']} "
        f"{rep['params']}  "
        f"[{rep['engine_path']} path, {rep['fill_model']['policy']} fills at {rep['fill_model']['fill_at']}]",
        f"  {rep.get('start')} -> {rep.get('end')}  {rep['bars']:,} bars",
        f"  return {f(rep.get('total_return_pct'))} %  CAGR {f(rep.get('cagr_pct'))} %  "
        f"Sharpe {f(rep.get('sharpe'))}  Sortino {f(rep.get('sortino'))}  Calmar {f(rep.get('calmar'))}",
        f"  max drawdown {f(dd.get('max_drawdown_pct'))} % from {dd.get('peak_time')} to {dd.get('trough_time')}, "
        f"recovered {dd.get('recovery_time') or 'not yet'} ({f(dd.get('duration_days'), '.1f')} days)",
        f"  trades {rep.get('trades', 0)}  win rate {f(rep.get('win_rate_pct'), '.1f')} %  "
        f"profit factor {f(rep.get('profit_factor'))}  expectancy {f(rep.get('expectancy'))}  "
        f"payoff {f(rep.get('payoff_ratio'))}",
        f"  exposure {f(rep.get('exposure_time_pct'), '.1f')} %  fees {f(rep.get('fees_paid'))}  "
        + (f"funding {f(rep.get('funding'))}  " if rep.get("funding") else "")
        + f"final equity {f(rep.get('final_equity'))}  risk denials {rep.get('risk_denials') or 'none'}",
        f"  buy & hold: return {f(bh.get('total_return_pct'))} %  max drawdown {f(bh.get('max_drawdown_pct'))} %"
        + (f" (equal parts of {', '.join(bh['pairs'])})" if len(bh.get("pairs") or []) > 1 else ""),
    ]
    if rep.get("halt"):
        lines.insert(1, f"  !! {rep['halt']}")
    for regime, g in sorted((rep.get("by_regime") or {}).items()):
        lines.append(f"  regime {regime}: {g['trades']} trades  P&L {f(g['pnl'])}  win rate {f(g['win_rate_pct'], '.1f')} %")
    ds = rep.get("deals_summary")
    if ds is not None:
        lines.append(
            f"  deals: {ds['closed']} closed, {ds['stopped']} stopped, {ds['open']} open  "
            f"realized {f(ds['realized_pnl'])}  open {f(ds['open_pnl'])}  "
            f"avg safety orders {f(ds['avg_safety_orders'], '.2f')} (max {ds['max_safety_orders_used']})  "
            f"avg duration {f(ds['avg_duration_h'], '.1f')} h  worst deal drawdown {f(ds['worst_deal_drawdown_pct'])} %")
    for note in rep.get("notes") or []:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def deals_text(rep: dict[str, Any], limit: int = 20) -> str:
    """The deals table of a DCA report as aligned text (the last ``limit`` deals)."""
    deals = rep.get("deals") or []
    if not deals:
        return "  no deals"
    head = f"  {'deal':<22} {'pair':<9} {'status':<7} {'opened':<20} {'hours':>7} {'SOs':>5} {'invested':>10} " \
           f"{'pnl':>9} {'pnl %':>7} {'max DD %':>8}  close reason"
    rows = [head]
    if len(deals) > limit:
        rows.append(f"  ... {len(deals) - limit} earlier deals (all of them are in --json)")
    for d in deals[-limit:]:
        rows.append(
            f"  {d['id'][-22:]:<22} {d['symbol']:<9} {d['status']:<7} {d['opened'] or '':<20} "
            f"{d['duration_h']:>7.1f} {d['safety_orders']:>2}/{d['max_safety_orders']:<2} {d['invested']:>10.2f} "
            f"{d['pnl']:>+9.2f} {d['pnl_pct']:>+7.2f} {d['max_drawdown_pct']:>8.2f}  {d['close_reason'] or '-'}")
    return "\n".join(rows)
