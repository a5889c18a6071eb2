"""Backtest plots (plotly), written as HTML files: equity + drawdown, trades on candlesticks,
monthly returns heatmap.

Long runs are thinned for the browser: the equity curve to at most ``MAX_POINTS`` points (the
min and max of each bucket are kept, so drawdowns stay visible) and the candlesticks to at most
``MAX_CANDLES`` bars (aggregated OHLC). plotly.js is written once per directory
(``plotly.min.js``), so the files work offline. ``plot_data`` is that thinned data as JSON
(stored with dashboard results); the ``*_figure_of`` functions draw from it. A DCA bot on
several pairs gets its first pair's candles and trades in the trades figure.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from backtest.result import BotResult
from core import metrics
from core.types import PositionSide

MAX_POINTS = 4000
MAX_CANDLES = 1500


def _thin(times: np.ndarray, values: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    n = len(values)
    if n <= max_points:
        return times, values
    step = int(np.ceil(n / (max_points // 2)))
    idx: list[int] = []
    for a in range(0, n, step):
        seg = values[a:a + step]
        lo, hi = a + int(seg.argmin()), a + int(seg.argmax())
        idx.extend(sorted({lo, hi}))
    sel = np.asarray(idx)
    return times[sel], values[sel]


def plot_data(r: BotResult, max_points: int = MAX_POINTS, max_candles: int = MAX_CANDLES) -> dict[str, Any]:
    """Everything the three figures draw, thinned and JSON-ready (the dashboard stores this in
    Redis and draws the same figures from it): the equity curve with buy & hold and drawdown
    (at most ``max_points``), candles (at most ``max_candles``), the trades, monthly returns."""
    eq = r.equity
    peak = np.maximum.accumulate(np.maximum(eq, r.starting_balance))
    dd = np.where(peak > 0, 100.0 * (eq - peak) / peak, 0.0)
    bh = r.starting_balance * r.closes / r.closes[0]
    curves = {}
    for name, values in (("equity", eq), ("buy & hold", bh), ("drawdown %", dd)):
        x, y = _thin(r.times, values, max_points)
        curves[name] = {"t": x.tolist(), "v": y.tolist()}
    # The candles are the bot's (first) pair's own: a DCA bot's curve runs on the union of its
    # pairs' times and its ``closes`` are a benchmark index, so read the candles from ``data``.
    d = r.data
    df = pd.DataFrame({"t": d.times, "o": d.opens, "h": d.highs, "l": d.lows, "c": d.closes})
    if len(df) > max_candles:  # aggregate into at most max_candles bars
        g = np.arange(len(df)) // int(np.ceil(len(df) / max_candles))
        df = df.groupby(g).agg(t=("t", "first"), o=("o", "first"), h=("h", "max"), l=("l", "min"), c=("c", "last"))
    table = monthly_returns(r)
    return {
        "name": r.name, "symbol": r.symbol,
        "curves": curves,
        "candles": {k: df[k].tolist() for k in ("t", "o", "h", "l", "c")},
        "trades": [{"long": t.side is PositionSide.LONG, "entry_time": t.entry_time, "entry_price": t.entry_price,
                    "exit_time": t.exit_time, "exit_price": t.exit_price, "pnl": t.pnl, "exit_reason": t.exit_reason}
                   for t in r.trades if t.symbol == d.symbol],  # the trades on the candles drawn
        "monthly": {"years": [str(y) for y in table.index],
                    "values": [[None if np.isnan(v) else float(v) for v in row] for row in table.to_numpy(float)]},
        # risk events that moved the bot's state (a HALT marks the rest of the run on both figures)
        "events": [{"t": e.time, "state": e.state, "rule": e.rule, "reason": e.reason} for e in r.risk_events],
        "end": int(r.times[-1]) if len(r.times) else 0,
    }


def _mark_events(fig: go.Figure, d: dict[str, Any], rows: bool = False) -> None:
    """A dashed line at each risk event, and the time after the state the run ended in shaded, named."""
    events = d.get("events") or []
    kw: dict[str, Any] = {"row": "all", "col": 1} if rows else {}
    for e in events:
        fig.add_vline(x=_ts([e["t"]])[0], line_color="#d62728", line_dash="dash", **kw)
    last = events[-1] if events else None
    if last is not None and last["state"] != "ACTIVE" and d.get("end"):
        first = next(e for e in events if e["state"] == last["state"])
        fig.add_vrect(x0=_ts([first["t"]])[0], x1=_ts([d["end"]])[0], fillcolor="#d62728", opacity=0.08,
                      line_width=0, annotation_text=f"{first['state']} by {first['rule']}: no trading from here",
                      annotation_position="top left", annotation_font_color="#d62728", **kw)


def _ts(ms: Any) -> pd.DatetimeIndex:
    return pd.to_datetime(np.asarray(ms, dtype=np.int64), unit="ms", utc=True)


def equity_figure_of(d: dict[str, Any]) -> go.Figure:
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.04)
    for name, row in (("equity", 1), ("buy & hold", 1), ("drawdown %", 2)):
        c = d["curves"][name]
        fig.add_trace(go.Scatter(x=_ts(c["t"]), y=c["v"], name=name, mode="lines",
                                 fill="tozeroy" if row == 2 else None), row=row, col=1)
    fig.update_layout(title=f"{d['name']}: equity and drawdown", height=650, hovermode="x unified")
    _mark_events(fig, d, rows=True)
    return fig


def trades_figure_of(d: dict[str, Any]) -> go.Figure:
    k = d["candles"]
    fig = go.Figure(go.Candlestick(x=_ts(k["t"]), open=k["o"], high=k["h"], low=k["l"], close=k["c"],
                                   name=d["symbol"]))
    trades = d["trades"]
    if trades:
        fig.add_trace(go.Scatter(
            x=_ts([t["entry_time"] for t in trades]), y=[t["entry_price"] for t in trades], mode="markers",
            name="entry", marker={"symbol": ["triangle-up" if t["long"] else "triangle-down" for t in trades],
                                  "size": 9, "color": "#1f77b4"}))
        fig.add_trace(go.Scatter(
            x=_ts([t["exit_time"] for t in trades]), y=[t["exit_price"] for t in trades], mode="markers",
            name="exit", text=[f"{t['exit_reason']}: {t['pnl']:+.2f}" for t in trades],
            marker={"symbol": "x", "size": 8, "color": ["#2ca02c" if t["pnl"] > 0 else "#d62728" for t in trades]}))
    fig.update_layout(title=f"{d['name']}: trades on {d['symbol']}", height=650, xaxis_rangeslider_visible=False)
    _mark_events(fig, d)
    return fig


def monthly_figure_of(d: dict[str, Any]) -> go.Figure:
    m = d["monthly"]
    z = np.array([[np.nan if v is None else v for v in row] for row in m["values"]], dtype=float).reshape(-1, 12)
    text = [["" if np.isnan(v) else f"{v:+.1f}%" for v in row] for row in z]
    fig = go.Figure(go.Heatmap(z=z, x=["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                                       "Dec"], y=m["years"], text=text, texttemplate="%{text}",
                               colorscale="RdYlGn", zmid=0, colorbar={"title": "%"}))
    fig.update_layout(title=f"{d['name']}: monthly returns", height=200 + 40 * len(m["years"]),
                      yaxis={"type": "category"})  # years as labels, not a numeric axis with 2,023.5 ticks
    return fig


def monthly_returns(r: BotResult) -> pd.DataFrame:
    """Percent return per calendar month (rows: years, columns: 1..12), from month-end equity
    (``core.metrics.period_returns``, the one formula running bots' reports use too)."""
    rows = metrics.period_returns(r.times, r.equity, r.starting_balance, "month")
    ret = pd.Series({(int(k[:4]), int(k[5:7])): pct for k, _, _, pct in rows}, dtype=float)
    return ret.unstack().reindex(columns=range(1, 13))


def write_plots(r: BotResult, out_dir: str | Path) -> list[Path]:
    """Write the three HTML files for one bot; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    d = plot_data(r)
    for kind, fig in (("equity", equity_figure_of(d)), ("trades", trades_figure_of(d)), ("monthly", monthly_figure_of(d))):
        p = out / f"{r.name}-{kind}.html"
        fig.write_html(p, include_plotlyjs="directory", full_html=True)
        paths.append(p)
    return paths
