"""The Ghost tab: signal statistics and recent signals with what each would have made."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from state.models import BotMeta, BotSnapshot, PositionView, SignalRecord, TradeRecord, TrancheView
from ui import bot_view, fmt, records_panel, risk
from ui.common import reader, short_ts, tranche_details
from ui.controls import bot_controls, state_lines


def signal_outcomes(signals: list[SignalRecord], trades: list[TradeRecord], snap: BotSnapshot | None) -> pd.DataFrame:
    """Join each signal with the hypothetical trade it opened (or its open P&L so far)."""
    by_signal = {t.signal_id: t for t in trades if t.signal_id}
    open_by_id = {str(h["signal_id"]): h for h in (snap.open_signals if snap else [])}
    rows = []
    for s in signals:
        t = by_signal.get(s.id)
        if t is not None:
            outcome, pnl, ret = f"closed ({t.exit_reason})", round(t.pnl, 2), round(t.return_pct, 3)
        elif s.id in open_by_id and snap is not None:
            h = open_by_id[s.id]
            qty, entry = float(h["quantity"]), float(h["entry_price"])  # type: ignore[arg-type]
            sign = 1.0 if h["side"] == "LONG" else -1.0
            open_pnl = (snap.last_price - entry) * qty * sign
            outcome, pnl = "open", round(open_pnl, 2)
            ret = round(100.0 * open_pnl / (qty * entry), 3) if entry else 0.0
        else:
            outcome, pnl, ret = s.note or "not taken", None, None
        rows.append({"time": short_ts(s.time), "bot": s.bot, "symbol": s.symbol, "signal": s.side,
                     "price": fmt.price(s.price, s.symbol),
                     "confidence": round(s.confidence, 2), "temperature": s.temperature, "regime": s.regime,
                     "outcome": outcome, "would have made": pnl, "return %": ret, "reason": s.reason})
    return pd.DataFrame(rows)


def hypothetical_positions(snap: BotSnapshot) -> list[PositionView]:
    """A ghost bot's open hypothetical trades as one position per side, each signal a tranche
    (ghost bots follow every signal; max_tranches does not limit them)."""
    out = []
    for side in ("LONG", "SHORT"):
        hs = [h for h in snap.open_signals if h.get("side") == side]
        if not hs:
            continue
        tranches = [TrancheView(price=float(h["entry_price"]), quantity=float(h["quantity"]),  # type: ignore[arg-type]
                                time=int(h["entry_time"])) for h in hs]  # type: ignore[call-overload]
        qty = sum(t.quantity for t in tranches)
        avg = sum(t.price * t.quantity for t in tranches) / qty if qty else 0.0
        sign = 1.0 if side == "LONG" else -1.0
        out.append(PositionView(symbol=snap.symbol, side=side, quantity=sign * qty, avg_entry=avg,
                                mark=snap.last_price, unrealized_pnl=(snap.last_price - avg) * qty * sign,
                                opened_at=min(t.time for t in tranches), tranches=tranches))
    return out


def positions_frame(snaps: list[BotSnapshot]) -> pd.DataFrame:
    return pd.DataFrame([{
        "bot": s.name, "symbol": p.symbol, "side": p.side, "quantity": abs(p.quantity), "tranches": p.tranche_count,
        "avg entry": p.avg_entry, "mark": p.mark, "would make now": round(p.unrealized_pnl, 2),
        "oldest": short_ts(p.opened_at),
    } for s in snaps for p in hypothetical_positions(s)])


def render(metas: list[BotMeta], refresh_s: float) -> None:
    if not metas:
        st.info("No ghost bots are configured. Add one under `bots:` in config.yaml with `mode: ghost`.")
        return
    names = [m.name for m in metas]

    @st.fragment(run_every=refresh_s)
    def panel() -> None:
        r = reader()
        snaps = r.snapshots(names)
        for name in names:
            s = snaps.get(name)
            if s is None or s.signal_stats is None:
                st.caption(f"{name}: waiting for the first candle…")
                continue
            q = s.signal_stats
            st.markdown(f"**{name}** · {s.symbol} · {s.strategy} · hypothetical, no fees, places nothing · amounts in "
                        f"{s.quote_asset}")
            with st.container(key=f"ghost_stats_{name}"):
                c = st.columns(8)
                c[0].metric("Signals", f"{q.total_signals}")
                c[1].metric("Accuracy", f"{q.accuracy_pct:.1f}%", help="% of closed hypothetical trades that were profitable")
                c[2].metric("Avg win", f"{q.avg_win:+,.2f}")
                c[3].metric("Avg loss", f"{q.avg_loss:+,.2f}")
                c[4].metric("Expectancy", f"{q.expectancy:+,.2f}", help="mean P&L per closed hypothetical trade")
                c[5].metric("Profit factor", "—" if q.profit_factor is None else f"{q.profit_factor:.2f}")
                c[6].metric("Max drawdown", f"{q.max_drawdown_pct:.2f}%")
                c[7].metric("Sharpe", f"{q.sharpe:.2f}", help="daily returns, risk-free 0, × sqrt(365)")
        st.markdown("**Trading state**")
        state_lines(list(snaps.values()), "ghost")
        risk.panel(list(snaps.values()), r, "ghost")
        st.markdown("**Open hypothetical positions** (each open signal is a tranche)")
        present = [x for x in snaps.values() if x is not None]
        pos = positions_frame(present)
        if pos.empty:
            st.caption("No open hypothetical trades.")
        else:
            st.dataframe(fmt.texts(pos, prices=("avg entry", "mark"), qtys=("quantity",), amounts=("would make now",)),
                         hide_index=True, key="ghost_positions_table")
            tranche_details([(x.name, p) for x in present for p in hypothetical_positions(x)], "ghost")
        st.markdown("**Recent signals** (newest first) and what each would have made")
        frames = [signal_outcomes(r.signals(n, 100), r.trades(n, 300), snaps.get(n)) for n in names]
        df = pd.concat([f for f in frames if not f.empty], ignore_index=True) if any(not f.empty for f in frames) else pd.DataFrame()
        if df.empty:
            st.caption("No signals yet.")
        else:
            st.dataframe(df.sort_values("time", ascending=False), hide_index=True, height=320, key="ghost_signals_table")

    panel()
    st.markdown("**Kill switches**")
    bot_controls(metas, "ghost")
    st.markdown("**Charts** (signals: filled circle buy, open circle sell; hypothetical entries and exits)")
    bot_view.charts(metas, "ghost", refresh_s)
    records_panel.exports(names, "ghost", kinds=("signals", "trades", "equity", "risk"))
