"""What every tab shows of its bots the same way: the price chart of a chosen bot (trades, stops,
take-profits, the DCA ladder, a ghost bot's signals), the equity curves (each bot and the tab's sum),
the trade history with win rate, and P&L by day. Every widget key carries the tab's name (a bot may be
drawn on two tabs)."""
from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import streamlit as st

from core import metrics
from state.models import BotMeta, EquityRecord, TradeRecord
from state.reader import StateReader
from state.telemetry import symbols as symbol_facts
from ui import fmt, live_chart
from ui.charts import equity_chart, price_chart
from ui.common import duration, reader, short_ts

EQUITY_POINTS = 1500  # per bot, from Redis; the Reports tab reads the whole history from the records


def charts(metas: list[BotMeta], tab: str, refresh_s: float) -> None:
    """A bot picker, then its price chart and the equity curves, refreshed in place (zoom kept)."""
    if not metas:
        return
    names = [m.name for m in metas]
    by_name = {m.name: m for m in metas}
    try:  # first shown: a bot holding something (its stops, take-profits or ladder are on the chart)
        held = [n for n, s in reader().snapshots(names).items() if s.open_positions or s.open_signals]
    except Exception:  # noqa: BLE001 - the chart says when Redis is down
        held = []
    pick = st.selectbox("Chart of", names, key=f"{tab}_chart_bot", index=names.index(held[0]) if held else 0,
                        format_func=lambda n: f"{n} · {by_name[n].symbol}")
    meta = by_name[pick]
    symbols = meta.symbols or [meta.symbol]
    symbol = st.selectbox("Pair", symbols, key=f"{tab}_chart_pair_{fmt.key_part(pick)}") if len(symbols) > 1 \
        else symbols[0]

    @st.fragment(run_every=max(refresh_s, 2.0))
    def draw() -> None:
        r = reader()
        try:
            fmt.remember(symbol_facts(r.r))
            candles = r.candles(symbol, 240)
            snap = r.snapshots([pick]).get(pick)
            trades = r.trades(pick, 200)
            signals = r.signals(pick, 100) if meta.mode == "ghost" else []
            curves = {n: r.equity(n, EQUITY_POINTS) for n in names}
        except Exception as exc:  # noqa: BLE001 - Redis down: say so
            st.error(f"State store unreachable: {exc}")
            return
        if not candles:
            st.caption(f"No {symbol} candles yet.")
        else:
            with st.container(key=f"{tab}_price_box"):
                live_chart.show(price_chart(symbol, candles, trades, snap, signals,
                                            title=f"{pick} · {symbol} · 1m · market time (UTC)"),
                                key=f"{tab}_price_{fmt.key_part(pick)}_{symbol}")
        quote = snap.quote_asset if snap is not None else fmt.quote(symbol)
        with st.container(key=f"{tab}_equity_box"):
            live_chart.show(equity_chart(curves, f"Equity of the {tab} bots (marked to market; market time, UTC)",
                                         quote),
                            key=f"{tab}_equity")

    draw()


def trade_table(r: StateReader, names: list[str], n: int = 200) -> pd.DataFrame:
    """Closed round trips, newest first, numbers at their symbol's precision and currencies named."""
    trades = sorted((t for name in names for t in r.trades(name, n)), key=lambda t: t.exit_time, reverse=True)[:n]
    return pd.DataFrame([{
        "bot": t.bot, "symbol": t.symbol, "side": t.side, "quantity": fmt.qty(t.quantity, t.symbol),
        "entry": fmt.price(t.entry_price, t.symbol), "exit": fmt.price(t.exit_price, t.symbol),
        "entry time": short_ts(t.entry_time), "exit time": short_ts(t.exit_time),
        "held": duration(t.exit_time - t.entry_time), "P&L": fmt.money(t.pnl, fmt.quote(t.symbol), signed=True),
        "return %": round(t.return_pct, 3), "fees": fmt.money(t.fees, fmt.quote(t.symbol)), "exit reason": t.exit_reason,
        "temperature": t.temperature, "regime": t.regime,  # engine.signal_policy, strategy.regime
    } for t in trades])


def trade_stats(trades: list[TradeRecord]) -> metrics.TradeStats:
    return metrics.trade_stats([t.pnl for t in trades])


def pnl_by_day(equity: dict[str, list[EquityRecord]], trades: list[TradeRecord]) -> pd.DataFrame:
    """Per market day (UTC): the equity change of the bots together, realized P&L, trades and wins."""
    rows: dict[str, dict[str, float]] = {}
    for pts in equity.values():
        if not pts:
            continue
        pts = sorted(pts, key=lambda p: p.time)
        prev = pts[0].equity
        for day_ms, end in metrics.daily_equity([_pt(p) for p in pts]):
            d = rows.setdefault(_day(day_ms), {"equity change": 0.0, "realized": 0.0, "trades": 0, "wins": 0})
            d["equity change"] += end - prev
            prev = end
    for t in trades:
        d = rows.setdefault(_day(t.exit_time), {"equity change": 0.0, "realized": 0.0, "trades": 0, "wins": 0})
        d["realized"] += t.pnl
        d["trades"] += 1
        d["wins"] += 1 if t.pnl > 0 else 0
    out = pd.DataFrame([{"day": k, **v} for k, v in sorted(rows.items(), reverse=True)])
    if not out.empty:
        rate = (100.0 * out["wins"] / out["trades"]).round(1)
        out["win rate %"] = [f"{x:g}" if n else "—" for x, n in zip(rate, out["trades"])]  # no trades: no rate
        out = out.round({"equity change": 2, "realized": 2})
    return out


def _pt(p: EquityRecord):  # type: ignore[no-untyped-def]
    from core.types import EquityPoint

    return EquityPoint(p.time, p.equity)


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


HISTORY_REFRESH_S = 5.0  # closed trades change rarely; reading 500 a bot every second would be waste


def history_panel(names: list[str], tab: str, quote: str = "USDT", stats: bool = True) -> None:
    """``history`` in a fragment of its own, refreshed every few seconds."""
    if not names:
        return

    @st.fragment(run_every=HISTORY_REFRESH_S)
    def draw() -> None:
        try:
            history(reader(), names, tab, quote, stats)
        except Exception as exc:  # noqa: BLE001 - Redis down: say so
            st.error(f"State store unreachable: {exc}")

    draw()


def history(r: StateReader, names: list[str], tab: str, quote: str = "USDT", stats: bool = True) -> None:
    """Trade history with the win rate (``stats``), and P&L by day (market days, UTC)."""
    trades = [t for n in names for t in r.trades(n, 500)]
    s = trade_stats(trades)
    with st.container(key=f"{tab}_history"):
        if stats:
            c = st.columns(4)
            c[0].metric("Closed trades", f"{s.count:,}", help="the last 500 per bot in Redis; all: the Reports tab")
            c[1].metric("Win rate", f"{100 * s.win_rate:.1f}%" if s.count else "—")
            c[2].metric(f"Realized P&L ({quote})", f"{s.net_pnl:+,.2f}")
            c[3].metric("Profit factor", "—" if s.profit_factor is None else f"{s.profit_factor:.2f}")
        st.markdown("**Trade history** (round trips, newest first; times are market time, UTC)")
        tf = trade_table(r, names)
        if tf.empty:
            st.caption("No closed trades yet.")
        else:
            st.dataframe(tf, hide_index=True, key=f"{tab}_trades_table")  # as tall as its rows (up to 10, then scrolls)
        st.markdown("**P&L by day** (market days, UTC)")
        days = pnl_by_day({n: r.equity(n, EQUITY_POINTS) for n in names}, trades)
        if days.empty:
            st.caption("No equity records yet.")
        else:
            st.dataframe(days, hide_index=True, key=f"{tab}_days_table",
                         column_config={"equity change": st.column_config.NumberColumn(f"equity change ({quote})",
                                                                                       format="%+.2f"),
                                        "realized": st.column_config.NumberColumn(f"realized ({quote})", format="%+.2f")})
