"""Plotly figures of the dashboard: a bot's price chart (candles; entries and exits; the open position's
average, stop and take-profit; a DCA bot's ladder — resting safety orders and take-profits, filled
tranches, its average and stop; a ghost bot's signals) and equity curves (per bot, and the mode's sum).

Times are market times (the candles' clock), UTC, with the year on the axis. The figures are drawn by
``ui.live_chart`` so a refresh updates them in place and the user's zoom stays.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable

import plotly.graph_objects as go

from state.models import BotSnapshot, CandleRecord, EquityRecord, SignalRecord, TradeRecord
from ui import fmt

GREEN, RED, BLUE, GREY, CYAN = "#2ca02c", "#d62728", "#1f77b4", "#7f7f7f", "#17becf"


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def _layout(fig: go.Figure, title: str, height: int) -> None:
    # an explicit template: the chart is drawn in its own frame, where Streamlit's theme does not reach
    fig.update_layout(template="plotly_white", height=height, margin=dict(l=60, r=110, t=60, b=30),
                      xaxis_rangeslider_visible=False, legend=dict(orientation="h", y=1.0, yanchor="bottom", x=0),
                      title=dict(text=title, x=0, xanchor="left", y=0.98, font=dict(size=14)),
                      hovermode="x unified", xaxis=dict(type="date", hoverformat="%Y-%m-%d %H:%M"))


def _level(fig: go.Figure, y: float | None, colour: str, dash: str, label: str) -> None:
    if y is None:
        return
    fig.add_hline(y=y, line_color=colour, line_dash=dash, line_width=1, annotation_text=label,
                  annotation_position="right", annotation_font_color=colour)


def price_chart(symbol: str, candles: list[CandleRecord], trades: Iterable[TradeRecord] = (),
                snap: BotSnapshot | None = None, signals: Iterable[SignalRecord] = (), title: str = "",
                height: int = 440) -> go.Figure:
    """Candles with what the bot did on them (see the module docstring)."""
    fig = go.Figure(go.Candlestick(
        x=[_dt(c.t) for c in candles], open=[c.o for c in candles], high=[c.h for c in candles],
        low=[c.l for c in candles], close=[c.c for c in candles], name=symbol, showlegend=False,
        increasing=dict(line=dict(color="#26a69a", width=1), fillcolor="#26a69a"),
        decreasing=dict(line=dict(color="#ef5350", width=1), fillcolor="#ef5350")))
    start = candles[0].t if candles else 0
    shown = [t for t in trades if t.symbol == symbol and t.exit_time >= start]
    entries = [(t.entry_time, t.entry_price, t.side) for t in shown if t.entry_time >= start]
    if snap is not None:
        entries += [(p.opened_at, p.avg_entry, p.side) for p in snap.open_positions
                    if p.symbol == symbol and p.opened_at >= start and not p.tranches]
        entries += [(tr.time, tr.price, p.side) for p in snap.open_positions if p.symbol == symbol
                    for tr in p.tranches if tr.time >= start]
    if entries:
        fig.add_trace(go.Scatter(
            x=[_dt(e[0]) for e in entries], y=[e[1] for e in entries], mode="markers", name="entry",
            hovertemplate="entry %{y}<extra></extra>",
            marker=dict(symbol=["triangle-up" if e[2] == "LONG" else "triangle-down" for e in entries], size=12,
                        color=BLUE, line=dict(width=1, color="white"))))
    if shown:
        fig.add_trace(go.Scatter(
            x=[_dt(t.exit_time) for t in shown], y=[t.exit_price for t in shown], mode="markers", name="exit",
            text=[f"{t.exit_reason}: {t.pnl:+,.2f} {fmt.quote(symbol)}" for t in shown],
            hovertemplate="exit %{y} · %{text}<extra></extra>",
            marker=dict(symbol="x", size=11, color=[GREEN if t.pnl > 0 else RED for t in shown])))
    sigs = [s for s in signals if s.symbol == symbol and s.time >= start]
    if sigs:
        fig.add_trace(go.Scatter(
            x=[_dt(s.time) for s in sigs], y=[s.price for s in sigs], mode="markers", name="signal",
            text=[f"{s.side} ({'taken' if s.acted else s.note or 'not taken'}): {s.reason}" for s in sigs],
            hovertemplate="%{text}<extra></extra>",
            marker=dict(symbol=["circle" if s.side == "BUY" else "circle-open" for s in sigs], size=7,
                        color=[GREEN if s.side == "BUY" else RED for s in sigs])))
    if snap is not None:
        _position_levels(fig, snap, symbol)
        _ghost_levels(fig, snap, symbol)
        _dca_levels(fig, snap, symbol)
    _layout(fig, title or f"{symbol} · 1m candles · market time (UTC)", height)
    return fig


def _position_levels(fig: go.Figure, snap: BotSnapshot, symbol: str) -> None:
    for p in snap.open_positions:
        if p.symbol != symbol or (snap.dca and snap.dca.get("deals")):
            continue  # a DCA deal draws its own average and stop
        _level(fig, p.avg_entry, BLUE, "solid", f"avg {fmt.price(p.avg_entry, symbol)}")
        _level(fig, p.stop_loss, RED, "dash", f"stop {fmt.price(p.stop_loss, symbol)}")
        _level(fig, p.take_profit, GREEN, "dash", f"take profit {fmt.price(p.take_profit, symbol)}")


def _ghost_levels(fig: go.Figure, snap: BotSnapshot, symbol: str) -> None:
    for h in snap.open_signals[-3:]:  # the newest hypothetical trades' levels (more would clutter)
        stop, take = h.get("stop_loss"), h.get("take_profit")
        _level(fig, float(stop) if stop else None, RED, "dot", "stop (signal)")  # type: ignore[arg-type]
        _level(fig, float(take) if take else None, GREEN, "dot", "take profit (signal)")  # type: ignore[arg-type]


def _dca_levels(fig: go.Figure, snap: BotSnapshot, symbol: str) -> None:
    dca: dict[str, Any] = snap.dca or {}
    for deal in dca.get("deals", []):
        if deal.get("symbol") != symbol:
            continue
        for t in deal.get("tranches", []):
            _level(fig, float(t["price"]), GREEN, "dot", f"{t.get('tag', '')} filled")
        qty, cost = float(deal.get("quantity") or 0), float(deal.get("cost") or 0)
        if qty:
            _level(fig, cost / qty, BLUE, "solid", f"avg {fmt.price(cost / qty, symbol)}")
        if deal.get("stop_price"):
            _level(fig, float(deal["stop_price"]), RED, "solid", "stop")
    for o in dca.get("resting", []):
        if o.get("symbol") == symbol:
            tag = str(o.get("tag", ""))
            _level(fig, float(o["price"]), GREY if tag.startswith("SO") else CYAN, "dash", f"{tag} resting")


def equity_chart(curves: dict[str, list[EquityRecord]], title: str, quote: str = "USDT", total: bool = True,
                 height: int = 320) -> go.Figure:
    """Each bot's equity as its change since its first point here (so bots of any size share one
    axis; the hover shows the equity itself), and with several bots their sum — the mode's curve (each
    bot's last equity carried forward, so a bot with fewer points does not make the sum jump)."""
    fig = go.Figure()
    series = {name: sorted(pts, key=lambda p: p.time) for name, pts in curves.items() if pts}
    for name, pts in series.items():
        base = pts[0].equity
        fig.add_trace(go.Scatter(x=[_dt(p.time) for p in pts], y=[p.equity - base for p in pts], mode="lines",
                                 name=name, customdata=[p.equity for p in pts], line=dict(width=1.5),
                                 hovertemplate=f"{name}: %{{y:+,.2f}} {quote} (equity %{{customdata:,.2f}})<extra></extra>"))
    if total and len(series) > 1:
        from records.periods import combine

        t, v = combine([([p.time for p in pts], [p.equity for p in pts]) for pts in series.values()])
        fig.add_trace(go.Scatter(x=[_dt(int(x)) for x in t], y=(v - v[0]).tolist(), mode="lines", name="all together",
                                 customdata=v.tolist(), line=dict(width=2.5, color="#333"),
                                 hovertemplate=f"all: %{{y:+,.2f}} {quote} (equity %{{customdata:,.2f}})<extra></extra>"))
    _layout(fig, title, height)
    fig.update_layout(yaxis_title=f"change since the first point ({quote})")
    return fig
