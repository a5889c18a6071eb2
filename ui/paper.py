"""The Paper tab: portfolio summary, bot states, open positions, trade history, price chart."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from state.models import BotMeta, BotSnapshot
from ui import bot_view, fmt, records_panel, risk
from ui.common import reader, short_ts, tranche_details
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
    """Open positions; the numbers stay numbers (``position_text`` is how the page writes them)."""
    rows = [{
        "bot": s.name, "symbol": p.symbol, "side": p.side, "quantity": abs(p.quantity), "tranches": p.tranche_count,
        "avg entry": p.avg_entry, "mark": p.mark, "unrealized P&L": round(p.unrealized_pnl, 2), "stop": p.stop_loss, "take profit": p.take_profit,
        "opened": short_ts(p.opened_at),
    } for s in snaps for p in s.open_positions]
    return pd.DataFrame(rows)


def position_text(df: pd.DataFrame) -> pd.DataFrame:
    """``positions_frame`` as the page shows it (symbol precision, currencies named)."""
    return fmt.texts(df, prices=("avg entry", "mark", "stop", "take profit"), qtys=("quantity",),
                     amounts=("unrealized P&L",))


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
            quote = snaps[0].quote_asset if snaps else "USDT"
            c[0].metric("Starting capital", f"{s['start']:,.2f}", help=f"in {quote}")
            c[1].metric("Current value", f"{s['value']:,.2f}", help=f"in {quote}, positions marked to market")
            c[2].metric(f"P&L ({quote})", f"{s['pnl']:+,.2f}", f"{s['pnl_pct']:+.2f}%")
            c[3].metric("Win rate", f"{s['win_rate']:.1f}%")
            c[4].metric("Completed trades", f"{s['trades']}")
            c[5].metric("Open positions", f"{s['open']}")
        st.dataframe(pd.DataFrame([{
            "bot": x.name, "symbol": x.symbol, "strategy": x.strategy, "equity": fmt.money(x.equity, x.quote_asset),
            "P&L": fmt.money(x.pnl, x.quote_asset, signed=True), "P&L %": round(x.pnl_pct, 3), "trades": x.trade_count,
            "win rate %": round(x.win_rate_pct, 1), "fees": fmt.money(x.fees_paid, x.quote_asset),
            "funding": fmt.money(x.funding, x.quote_asset, signed=True),
            "last price": fmt.price(x.last_price, x.symbol), "as of (market)": short_ts(x.last_candle_time),
            "last signal": x.last_signal, "regime": x.regime,
        } for x in snaps]), hide_index=True, key="paper_bots_table")
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
            st.dataframe(position_text(pos), hide_index=True, key="paper_positions_table")
            tranche_details([(x.name, p) for x in snaps for p in x.open_positions], "paper")

    panel()
    bot_view.history_panel(names, "paper", stats=False)
    st.markdown("**Kill switches**")
    bot_controls(metas, "paper")
    st.markdown("**Charts**")
    bot_view.charts(metas, "paper", refresh_s)
    records_panel.exports(names, "paper")
