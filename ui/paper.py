"""The Paper tab: portfolio summary, bot states, open positions, trade history, price chart."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from state.models import BotMeta, BotSnapshot
from state.reader import StateReader
from ui.charts import candles_with_trades
from ui.common import duration, reader, short_ts, tranche_details
from ui import risk
from ui.controls import bot_controls, state_lines


def summary(snaps: list[BotSnapshot]) -> dict[str, float]:
    start = sum(s.starting_balance for s in snaps)
    value = sum(s.equity for s in snaps)
    trades = sum(s.trade_count for s in snaps)
    wins = sum(s.wins for s in snaps)
    return {
        "start": start, "value": value, "pnl": value - start,
        "pnl_pct": 100.0 * (value - start) / start if start else 0.0,
        "trades": trades, "win_rate": 100.0 * wins / trades if trades else 0.0,
        "open": sum(len(s.open_positions) for s in snaps),
    }


def positions_frame(snaps: list[BotSnapshot]) -> pd.DataFrame:
    rows = [{
        "bot": s.name, "symbol": p.symbol, "side": p.side, "quantity": abs(p.quantity), "tranches": p.tranche_count,
        "avg entry": p.avg_entry, "mark": p.mark, "unrealized P&L": round(p.unrealized_pnl, 2), "stop": p.stop_loss, "take profit": p.take_profit,
        "opened": short_ts(p.opened_at),
    } for s in snaps for p in s.open_positions]
    return pd.DataFrame(rows)


def trades_frame(r: StateReader, names: list[str], n: int = 100) -> pd.DataFrame:
    trades = sorted((t for name in names for t in r.trades(name, n)), key=lambda t: t.exit_time, reverse=True)[:n]
    return pd.DataFrame([{
        "bot": t.bot, "symbol": t.symbol, "side": t.side, "quantity": t.quantity, "entry": t.entry_price,
        "exit": t.exit_price, "entry time": short_ts(t.entry_time), "exit time": short_ts(t.exit_time),
        "duration": duration(t.exit_time - t.entry_time),
        "P&L": round(t.pnl, 2), "return %": round(t.return_pct, 3), "fees": round(t.fees, 4), "exit reason": t.exit_reason,
        "temperature": t.temperature, "regime": t.regime,  # engine.signal_policy, strategy.regime
    } for t in trades])


def render(metas: list[BotMeta], refresh_s: float) -> None:
    if not metas:
        st.info("No paper bots are configured. Add one under `bots:` in config.yaml with `mode: paper`.")
        return
    names = [m.name for m in metas]

    @st.fragment(run_every=refresh_s)
    def panel() -> None:
        r = reader()
        snaps = list(r.snapshots(names).values())
        s = summary(snaps)
        with st.container(key="paper_summary"):
            c = st.columns(6)
            c[0].metric("Starting capital", f"{s['start']:,.2f}")
            c[1].metric("Current value", f"{s['value']:,.2f}")
            c[2].metric("P&L", f"{s['pnl']:+,.2f}", f"{s['pnl_pct']:+.2f}%")
            c[3].metric("Win rate", f"{s['win_rate']:.1f}%")
            c[4].metric("Completed trades", f"{s['trades']}")
            c[5].metric("Open positions", f"{s['open']}")
        st.dataframe(pd.DataFrame([{
            "bot": x.name, "symbol": x.symbol, "strategy": x.strategy, "equity": round(x.equity, 2),
            "P&L": round(x.pnl, 2), "P&L %": round(x.pnl_pct, 3), "trades": x.trade_count,
            "win rate %": round(x.win_rate_pct, 1), "fees": round(x.fees_paid, 2), "last price": x.last_price,
            "last signal": x.last_signal, "regime": x.regime,
        } for x in snaps]), hide_index=True)
        for x in snaps:  # regime_switch bots: when the market regime changed (strategy.regime)
            if x.regime_history:
                st.caption(f"{x.name} regimes: " + " → ".join(f"{r} ({short_ts(t)})" for t, r in x.regime_history[-8:]))
        st.markdown("**Trading state**")
        state_lines(snaps, "paper")
        risk.panel(snaps, r, "paper")
        st.markdown("**Open positions**")
        pos = positions_frame(snaps)
        if pos.empty:
            st.caption("No open positions: every paper bot is flat.")
        else:
            st.dataframe(pos, hide_index=True)
            tranche_details([(x.name, p) for x in snaps for p in x.open_positions], "paper")
        st.markdown("**Trade history** (round trips, newest first)")
        tf = trades_frame(r, names)
        if tf.empty:
            st.caption("No completed trades yet.")
        else:
            st.dataframe(tf, hide_index=True, height=260)

    panel()
    st.markdown("**Kill switches**")
    bot_controls(metas, "paper")
    st.markdown("**Chart**")
    bot_name = st.selectbox("Bot", names, key="paper_chart_bot")
    meta = next(m for m in metas if m.name == bot_name)

    @st.fragment(run_every=max(refresh_s, 2.0))
    def chart() -> None:
        r = reader()
        candles = r.candles(meta.symbol, 240)
        snap = r.snapshots([meta.name]).get(meta.name)
        open_entry = None
        if snap and snap.position:
            open_entry = (snap.position.opened_at, snap.position.avg_entry, snap.position.side)
        if candles:
            st.plotly_chart(candles_with_trades(meta.symbol, candles, r.trades(meta.name, 200), open_entry),
                            key=f"chart_{meta.name}")
        else:
            st.caption("No candles yet.")

    chart()
