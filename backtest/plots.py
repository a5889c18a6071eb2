"""Backtest plots (plotly), written as HTML files: equity + drawdown, trades on candlesticks,
monthly returns heatmap.

Long runs are thinned for the browser: the equity curve to at most ``MAX_POINTS`` points (the
min and max of each bucket are kept, so drawdowns stay visible) and the candlesticks to at most
``MAX_CANDLES`` bars (aggregated OHLC). plotly.js is written once per directory
(``plotly.min.js``), so the files work offline.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from backtest.engine import BotResult
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


def equity_figure(r: BotResult) -> go.Figure:
    t = pd.to_datetime(r.times, unit="ms", utc=True)
    eq = r.equity
    peak = np.maximum.accumulate(np.maximum(eq, r.starting_balance))
    dd = np.where(peak > 0, 100.0 * (eq - peak) / peak, 0.0)
    bh = r.starting_balance * r.closes / r.closes[0]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.04)
    for name, values, row in (("equity", eq, 1), ("buy & hold", bh, 1), ("drawdown %", dd, 2)):
        x, y = _thin(np.asarray(t), values)
        fig.add_trace(go.Scatter(x=x, y=y, name=name, mode="lines",
                                 fill="tozeroy" if row == 2 else None), row=row, col=1)
    fig.update_layout(title=f"{r.name}: equity and drawdown", height=650, hovermode="x unified")
    return fig


def trades_figure(r: BotResult) -> go.Figure:
    df = pd.DataFrame({"t": r.times, "o": r.data.opens, "h": r.data.highs, "l": r.data.lows, "c": r.closes})
    if len(df) > MAX_CANDLES:  # aggregate into at most MAX_CANDLES bars
        g = np.arange(len(df)) // int(np.ceil(len(df) / MAX_CANDLES))
        df = df.groupby(g).agg(t=("t", "first"), o=("o", "first"), h=("h", "max"), l=("l", "min"), c=("c", "last"))
    fig = go.Figure(go.Candlestick(x=pd.to_datetime(df["t"], unit="ms", utc=True), open=df["o"], high=df["h"],
                                   low=df["l"], close=df["c"], name=r.symbol))
    if r.trades:
        long = [t.side is PositionSide.LONG for t in r.trades]
        fig.add_trace(go.Scatter(
            x=pd.to_datetime([t.entry_time for t in r.trades], unit="ms", utc=True),
            y=[t.entry_price for t in r.trades], mode="markers", name="entry",
            marker={"symbol": ["triangle-up" if lg else "triangle-down" for lg in long], "size": 9,
                    "color": "#1f77b4"}))
        fig.add_trace(go.Scatter(
            x=pd.to_datetime([t.exit_time for t in r.trades], unit="ms", utc=True),
            y=[t.exit_price for t in r.trades], mode="markers", name="exit",
            text=[f"{t.exit_reason}: {t.pnl:+.2f}" for t in r.trades],
            marker={"symbol": "x", "size": 8, "color": ["#2ca02c" if t.pnl > 0 else "#d62728" for t in r.trades]}))
    fig.update_layout(title=f"{r.name}: trades on {r.symbol}", height=650, xaxis_rangeslider_visible=False)
    return fig


def monthly_returns(r: BotResult) -> pd.DataFrame:
    """Percent return per calendar month (rows: years, columns: 1..12), from month-end equity."""
    s = pd.Series(r.equity, index=pd.to_datetime(r.times, unit="ms", utc=True))
    month_end = s.groupby([s.index.year, s.index.month]).last()
    prev = month_end.shift(1)
    prev.iloc[0] = r.starting_balance
    ret = 100.0 * (month_end / prev - 1.0)
    table = ret.unstack()
    return table.reindex(columns=range(1, 13))


def monthly_figure(r: BotResult) -> go.Figure:
    table = monthly_returns(r)
    z = table.to_numpy(dtype=float)
    text = [["" if np.isnan(v) else f"{v:+.1f}%" for v in row] for row in z]
    fig = go.Figure(go.Heatmap(z=z, x=["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                                       "Dec"], y=[str(y) for y in table.index], text=text, texttemplate="%{text}",
                               colorscale="RdYlGn", zmid=0, colorbar={"title": "%"}))
    fig.update_layout(title=f"{r.name}: monthly returns", height=200 + 40 * len(table))
    return fig


def write_plots(r: BotResult, out_dir: str | Path) -> list[Path]:
    """Write the three HTML files for one bot; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind, fig in (("equity", equity_figure(r)), ("trades", trades_figure(r)), ("monthly", monthly_figure(r))):
        p = out / f"{r.name}-{kind}.html"
        fig.write_html(p, include_plotlyjs="directory", full_html=True)
        paths.append(p)
    return paths
