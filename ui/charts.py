"""Plotly charts: candlesticks with a bot's entries and exits, equity curves."""
from __future__ import annotations

from datetime import datetime, timezone

import plotly.graph_objects as go

from state.models import CandleRecord, EquityRecord, TradeRecord


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def candles_with_trades(symbol: str, candles: list[CandleRecord], trades: list[TradeRecord],
                        open_entry: tuple[int, float, str] | None = None) -> go.Figure:
    fig = go.Figure(go.Candlestick(
        x=[_dt(c.t) for c in candles], open=[c.o for c in candles], high=[c.h for c in candles],
        low=[c.l for c in candles], close=[c.c for c in candles], name=symbol,
    ))
    start = candles[0].t if candles else 0
    shown = [t for t in trades if t.exit_time >= start]
    entries_x = [_dt(t.entry_time) for t in shown if t.entry_time >= start]
    entries_y = [t.entry_price for t in shown if t.entry_time >= start]
    if open_entry and open_entry[0] >= start:
        entries_x.append(_dt(open_entry[0]))
        entries_y.append(open_entry[1])
    fig.add_trace(go.Scatter(x=entries_x, y=entries_y, mode="markers", name="entry",
                             marker=dict(symbol="triangle-up", size=12, color="#1f77b4",
                                         line=dict(width=1, color="white"))))
    fig.add_trace(go.Scatter(
        x=[_dt(t.exit_time) for t in shown], y=[t.exit_price for t in shown], mode="markers", name="exit",
        text=[f"{t.exit_reason}: {t.pnl:+.2f}" for t in shown],
        marker=dict(symbol="x", size=11, color=["#2ca02c" if t.pnl > 0 else "#d62728" for t in shown]),
    ))
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=30, b=10), xaxis_rangeslider_visible=False,
                      legend=dict(orientation="h", y=1.08), title=f"{symbol} · 1m")
    return fig


def equity_curve(points: list[EquityRecord], title: str) -> go.Figure:
    pts = sorted(points, key=lambda p: p.time)
    fig = go.Figure(go.Scatter(x=[_dt(p.time) for p in pts], y=[p.equity for p in pts], mode="lines",
                               name="equity"))
    fig.update_layout(height=260, margin=dict(l=10, r=10, t=30, b=10), title=title)
    return fig
