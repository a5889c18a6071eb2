"""Reports: per bot and per mode, by month or ISO week — return, P&L, realized P&L, fees, trades, win
rate, max drawdown and the benchmark (buy-and-hold of the bot's symbol over the same period;
``records.periods``) — for running bots, from their records (the long-term store plus the streams'
tail), and for backtests, from a stored result; rendered as a self-contained HTML page (no scripts,
so it reads the same in a browser and in a mail client) or as text.
"""
from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

import numpy as np
import redis

from records import periods
from records.export import collect
from records.periods import PeriodRow
from records.store import RecordStore


@dataclass(slots=True)
class CurveReport:
    """One equity curve's report: a bot's, or a mode's (its bots summed)."""

    name: str
    mode: str
    symbols: list[str]
    quote: str
    rows: list[PeriodRow]
    total: PeriodRow | None
    curve: tuple[list[int], list[float]] = ([], [])  # thinned, for the sparkline
    bench: tuple[list[int], list[float]] = ([], [])  # the benchmark rebased to the curve's start


@dataclass(slots=True)
class Report:
    title: str
    period: str  # month | week
    start_ms: int | None
    end_ms: int | None
    bots: list[CurveReport] = field(default_factory=list)
    modes: list[CurveReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    generated_at: int = field(default_factory=lambda: int(time.time() * 1000))


def _thin(t: np.ndarray, v: np.ndarray, n: int = 300) -> tuple[list[int], list[float]]:
    if len(t) <= n:
        return t.tolist(), v.tolist()
    idx = np.unique(np.linspace(0, len(t) - 1, n).astype(int))
    return t[idx].tolist(), v[idx].tolist()


def _curve_report(name: str, mode: str, symbols: list[str], quote: str, t: np.ndarray, v: np.ndarray,
                  trades: list[tuple[int, float, float]], fees: list[tuple[int, float]] | None,
                  prices: tuple[np.ndarray, np.ndarray] | None, period: str,
                  start_equity: float | None = None) -> CurveReport:
    rows = periods.table(t, v, trades, fees, prices, start_equity, period)
    bench_t: list[int] = []
    bench_v: list[float] = []
    if prices is not None and len(prices[0]) and len(v):
        bench_t, bench_v = _thin(np.asarray(prices[0]), v[0] * np.asarray(prices[1], dtype=float) / prices[1][0])
    return CurveReport(name, mode, symbols, quote, rows, periods.total(rows, v.tolist()), _thin(t, v),
                       (bench_t, bench_v))


def running(store: RecordStore, r: redis.Redis | None, bots: dict[str, tuple[str, str]], start_ms: int | None = None,
            end_ms: int | None = None, period: str = "month", quote: str = "USDT") -> Report:
    """The report of running bots: ``bots`` maps each bot to (mode, symbol). Modes are their bots
    summed; a mode's benchmark weighs its bots' symbols by their starting equity."""
    names = sorted(bots)
    rep = Report(f"Trading report by {period}", period, start_ms, end_ms)
    equity = collect("equity", store, r, names, start_ms, end_ms)
    trades = collect("trades", store, r, names, start_ms, end_ms)
    fills = collect("fills", store, r, names, start_ms, end_ms)
    candles = collect("candles", store, r, sorted({s for _, s in bots.values()}), start_ms, end_ms)
    rep.notes += [n for ex in (equity, trades, fills) for n in ex.notes if n.startswith("gap") or "unreachable" in n]
    eq, tr, fi, ca = equity.frame, trades.frame, fills.frame, candles.frame
    by_mode: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = {}
    mode_trades: dict[str, list[tuple[int, float, float]]] = {}
    mode_fees: dict[str, list[tuple[int, float]]] = {}
    for name in names:
        mode, symbol = bots[name]
        e = eq[eq["bot"] == name] if not eq.empty else eq
        if e.empty:
            continue
        t = e["time"].to_numpy(np.int64)
        v = e["equity"].to_numpy(float)
        tt = tr[tr["bot"] == name] if not tr.empty else tr
        bot_trades = list(zip(tt["exit_time"].astype(int), tt["pnl"].astype(float), tt["fees"].astype(float))) \
            if not tt.empty else []
        ff = fi[(fi["bot"] == name) & (fi["fee_asset"] == quote)] if not fi.empty else fi
        bot_fees = list(zip(ff["time"].astype(int), ff["fee"].astype(float))) if not ff.empty else []
        cc = ca[(ca["bot"] == symbol) & (ca["t"] >= t[0]) & (ca["t"] <= t[-1])] if not ca.empty else ca
        prices = (cc["t"].to_numpy(np.int64), cc["c"].to_numpy(float)) if not cc.empty else None
        rep.bots.append(_curve_report(name, mode, [symbol], quote, t, v, bot_trades, bot_fees if not fi.empty else None,
                                      prices, period))
        by_mode.setdefault(mode, []).append((symbol, t, v))
        mode_trades.setdefault(mode, []).extend(bot_trades)
        mode_fees.setdefault(mode, []).extend(bot_fees)
    for mode, members in sorted(by_mode.items()):
        t, v = periods.combine([(mt, mv) for _, mt, mv in members])
        prices = _weighted_benchmark(members, ca, t)
        rep.modes.append(_curve_report(f"{mode} ({len(members)} bot{'s' if len(members) > 1 else ''})", mode, sorted({s for s, _, _ in members}),
                                       quote, t, v, sorted(mode_trades[mode]), sorted(mode_fees[mode]) or None,
                                       prices, period))
    if candles.frame.empty:
        rep.notes.append("no archived candles: the benchmark is empty (the archiver keeps them from its start)")
    return rep


def _weighted_benchmark(members: list[tuple[str, np.ndarray, np.ndarray]], candles: Any,
                        times: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """A price index of a mode's symbols, each weighted by its bots' first equity (buy-and-hold of
    the mode's starting allocation), on the candle times."""
    if candles.empty or not len(times):
        return None
    weights: dict[str, float] = {}
    for symbol, _, v in members:
        weights[symbol] = weights.get(symbol, 0.0) + float(v[0])
    series = []
    for symbol, w in weights.items():
        c = candles[(candles["bot"] == symbol) & (candles["t"] >= times[0]) & (candles["t"] <= times[-1])]
        if c.empty:
            return None
        ct, cv = c["t"].to_numpy(np.int64), c["c"].to_numpy(float)
        series.append((ct, w * cv / cv[0]))
    return periods.combine(series)


def backtest(doc: dict[str, Any]) -> Report:
    """The report of a stored backtest result (``state.backtest_store``): its period rows, computed on
    the full run when it was made (``report.periods``)."""
    rep_ = doc.get("report") or {}
    name = str(rep_.get("bot", "?"))
    rows = [PeriodRow(**row) for row in rep_.get("periods") or []]
    curve = ((doc.get("plot") or {}).get("curves") or {})
    eq, bh = curve.get("equity") or {}, curve.get("buy & hold") or {}
    rep = Report(f"Backtest report: {name}", "month", None, None)
    cr = CurveReport(name, "backtest", list(rep_.get("symbols") or [rep_.get("symbol", "")]), "USDT", rows,
                     periods.total(rows), (eq.get("t", []), eq.get("v", [])), (bh.get("t", []), bh.get("v", [])))
    if cr.total is not None and rep_.get("max_drawdown"):
        cr.total.max_drawdown_pct = float(rep_["max_drawdown"].get("max_drawdown_pct") or 0.0)
    rep.bots.append(cr)
    if not rows:
        rep.notes.append("this result was stored before reports had period rows: run it again")
    if rep_.get("halt"):
        rep.notes.append(str(rep_["halt"]))
    return rep


# ---- rendering ---------------------------------------------------------------------------------
COLUMNS = [("period", "period"), ("return_pct", "return %"), ("benchmark_pct", "buy & hold %"), ("pnl", "P&L"),
           ("realized_pnl", "realized"), ("fees", "fees"), ("trades", "trades"), ("win_rate_pct", "win rate %"),
           ("max_drawdown_pct", "max DD %"), ("end_equity", "equity at end")]


def _fmt(key: str, v: Any) -> str:
    if v is None:
        return "—"
    if key == "trades":
        return f"{int(v):,}"
    if key in ("return_pct", "benchmark_pct"):
        return f"{v:+.2f}"
    if key in ("pnl", "realized_pnl"):
        return f"{v:+,.2f}"
    if isinstance(v, float):
        return f"{v:,.2f}"
    return html.escape(str(v))


def _svg(cr: CurveReport, w: int = 560, h: int = 120) -> str:
    t, v = cr.curve
    if len(t) < 2:
        return ""
    bt, bv = cr.bench
    lo, hi = min([*v, *bv]), max([*v, *bv])
    span_t, span_v = (t[-1] - t[0]) or 1, (hi - lo) or 1.0

    def path(ts: list[int], vs: list[float]) -> str:
        return " ".join(f"{(x - t[0]) / span_t * w:.1f},{h - (y - lo) / span_v * h:.1f}" for x, y in zip(ts, vs))

    bench = f'<polyline fill="none" stroke="#999" stroke-dasharray="4 3" points="{path(bt, bv)}"/>' if len(bt) > 1 else ""
    return (f'<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="equity">{bench}'
            f'<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{path(t, v)}"/></svg>'
            '<div class="legend">— equity &nbsp; - - buy &amp; hold</div>')


def _table(cr: CurveReport) -> str:
    head = "".join(f"<th>{label}</th>" for _, label in COLUMNS)
    body = []
    for row in [*cr.rows, *([cr.total] if cr.total else [])]:
        d = row.dump()
        cls = ' class="total"' if row is cr.total else ""
        body.append(f"<tr{cls}>" + "".join(
            f'<td class="{"neg" if isinstance(d[k], float) and k in ("return_pct", "pnl", "realized_pnl") and d[k] < 0 else ""}">'
            f"{_fmt(k, d[k])}</td>" for k, _ in COLUMNS) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _when(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if ms else "…"


def to_html(rep: Report) -> str:
    sections = []
    for title, group in (("By mode", rep.modes), ("By bot", rep.bots)):
        if not group:
            continue
        sections.append(f"<h2>{title}</h2>")
        for cr in group:
            sections.append(f"<h3>{html.escape(cr.name)} <small>{html.escape(cr.mode)} · "
                            f"{html.escape(', '.join(cr.symbols))} · amounts in {html.escape(cr.quote)}</small></h3>"
                            + _svg(cr) + _table(cr))
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in rep.notes)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(rep.title)}</title>
<style>body{{font:14px system-ui,sans-serif;margin:24px;color:#222}}table{{border-collapse:collapse;margin:8px 0 24px}}
th,td{{border-bottom:1px solid #ddd;padding:4px 8px;text-align:right}}th:first-child,td:first-child{{text-align:left}}
tr.total td{{font-weight:600;border-top:2px solid #888}}td.neg{{color:#c0392b}}small{{color:#666;font-weight:400}}
.legend{{color:#666;font-size:12px}}</style></head><body>
<h1>{html.escape(rep.title)}</h1>
<p>Period {_when(rep.start_ms)} → {_when(rep.end_ms)} (market time) · generated {_when(rep.generated_at)} (wall clock)</p>
{f"<ul>{notes}</ul>" if notes else ""}{"".join(sections) or "<p>No equity records in this range.</p>"}
<p class="legend">Return: period-end equity over the previous period's end. Buy &amp; hold: the bot's symbol (a mode:
its symbols weighted by the bots' starting equity) over the same period. Max DD: inside the period.</p>
</body></html>"""


def to_text(rep: Report) -> str:
    lines = [rep.title, f"  {_when(rep.start_ms)} -> {_when(rep.end_ms)}"]
    lines += [f"  note: {n}" for n in rep.notes]
    for cr in [*rep.modes, *rep.bots]:
        lines.append(f"\n{cr.name}  [{cr.mode}; {', '.join(cr.symbols)}; {cr.quote}]")
        lines.append("  " + "  ".join(f"{label:>12}" for _, label in COLUMNS))
        for row in [*cr.rows, *([cr.total] if cr.total else [])]:
            d = row.dump()
            lines.append("  " + "  ".join(f"{_fmt(k, d[k]):>12}" for k, _ in COLUMNS))
    return "\n".join(lines)


def owners(store: RecordStore, r: redis.Redis | None) -> Iterable[str]:
    """Every bot with equity records (configured or not any more)."""
    ex = collect("equity", store, r)
    return sorted(set(ex.frame["bot"])) if not ex.frame.empty else []
