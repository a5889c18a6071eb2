"""The Live tab: the venue (with a clear REAL MONEY marking on mainnet), pre-flight results,
reconciliation with adopt / ignore / flatten, balances, positions, open orders and fills of each
live bot — or a plain statement that there are none and live trading is off."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from state.models import BotMeta, BotSnapshot
from state.telemetry import intents
from ui import bot_view, drift, fmt, golive, login, records_panel, risk
from ui.common import reader, short_ts, tranche_details, ts
from ui.controls import _open, bot_controls, state_lines


def venue_fills(rows: list[dict[str, object]], symbol: str, n: int = 20) -> pd.DataFrame:
    """The venue's own trades of a bot's orders (its intents), newest first: the fee in the asset the
    venue charged (BTC on a spot buy), the time on the venue's clock."""
    out = []
    for rec in rows:
        for f in rec.get("fills") or []:  # type: ignore[union-attr]
            out.append({"_t": int(f["time"]), "time (venue clock, UTC)": fmt.when(int(f["time"]), True),  # type: ignore[index]
                        "side": rec.get("side"), "quantity": fmt.qty(float(f["qty"]), symbol),  # type: ignore[index]
                        "price": fmt.price(float(f["price"]), symbol),  # type: ignore[index]
                        "fee (as charged)": fmt.fee(float(f["commission"]), str(f["commission_asset"])),  # type: ignore[index]
                        "for": rec.get("tag") or rec.get("purpose"), "order": rec.get("client_order_id")})
    out.sort(key=lambda x: x["_t"], reverse=True)
    return pd.DataFrame(out[:n]).drop(columns=["_t"]) if out else pd.DataFrame()


def summary(s: BotSnapshot) -> None:
    """A live bot's numbers at a glance, with its currency."""
    c = st.columns(5)
    c[0].metric(f"Equity ({s.quote_asset})", f"{s.equity:,.2f}")
    c[1].metric(f"P&L ({s.quote_asset})", f"{s.pnl:+,.2f}", f"{s.pnl_pct:+.2f}%")
    c[2].metric("Win rate", f"{s.win_rate_pct:.1f}%" if s.trade_count else "—", help=f"{s.wins} of {s.trade_count}")
    c[3].metric("Closed trades", f"{s.trade_count}")
    pos = s.open_positions
    c[4].metric("Position", " + ".join(f"{fmt.qty(abs(p.quantity), p.symbol)}" for p in pos) if pos else "flat",
                help=" · ".join(f"{p.side} avg {fmt.price(p.avg_entry, p.symbol, True)}" for p in pos) or None)


def render(metas: list[BotMeta], refresh_s: float) -> None:
    if not metas:
        with st.container(key="live_none"):
            st.info(
                "**No live bots are configured, and live trading is off.**\n\n"
                "Nothing on this machine can place a real order. Real-money trading needs two switches at once: "
                "`BOT_LIVE_TRADING=1` in the worker's environment **and** `live.enabled: true` plus a bot with "
                "`mode: live` in config.yaml. See docs/operations.md before you do."
            )
        return
    names = [m.name for m in metas]
    kinds = {m.name: m.kind for m in metas}
    metas_by_name = {m.name: m for m in metas}

    @st.fragment(run_every=max(refresh_s, 1.0))
    def panel() -> None:
        r = reader()
        snaps = r.snapshots(names)
        for name in names:
            view = r.venue_view(name) or {}
            pre = r.preflight(name)
            venue = str(view.get("venue") or (pre or {}).get("venue") or "?")
            with st.container(key=f"venue_{name}"):
                if view.get("real_money") or (pre or {}).get("real_money"):
                    st.error(f"**REAL MONEY** · {name} trades on Binance **{venue}** with real funds.")
                else:
                    st.info(f"**{name}** trades on the **{venue}** venue: real orders, no real money.")
            s = snaps.get(name)
            if s is not None:
                with st.container(key=f"live_summary_{name}"):
                    summary(s)
            if pre is not None:
                ok = pre.get("ok")
                checks = pre.get("checks", []) or []
                with st.container(key=f"preflight_{name}"):
                    st.markdown(f"**Pre-flight** {':green-badge[passed]' if ok else ':red-badge[FAILED: the bot is halted]'}"
                                f" · {len(checks)} checks")  # type: ignore[arg-type]
                    with st.expander("Pre-flight checks", expanded=not ok):
                        st.dataframe(pd.DataFrame([{"check": c["name"], "ok": "✓" if c["ok"] else "✗",
                                                    "detail": c["reason"]} for c in checks]),  # type: ignore[union-attr]
                                     hide_index=True, key=f"preflight_table_{name}")
            with st.container(key=f"recon_{name}"):
                if view.get("ok") is False:
                    st.error(f"**Reconciliation drift** (checked {short_ts(int(view.get('time', 0)))}): "
                             f"{view.get('summary')}. The bot is paused. Choose what is true:")
                    c = st.columns(3)
                    if not login.can_operate():
                        c[0].caption("A viewer sees this; an operator chooses.")
                    elif kinds.get(name) == "dca":  # a DCA position belongs to deals: no adopting it
                        c[0].caption("DCA bot: its position belongs to deals, so it cannot adopt the venue's.")
                    else:
                        c[0].button("Adopt the venue's position", key=f"adopt_{name}", on_click=_open,
                                    args=("adopt", "bot", name))
                    if login.can_operate():
                        c[1].button("Ignore the difference", key=f"ignore_{name}", on_click=_open,
                                    args=("ignore_drift", "bot", name))
                        c[2].button("Close all positions", key=f"recon_flatten_{name}", on_click=_open,
                                    args=("flatten", "bot", name))
                elif view:
                    st.caption(f"Reconciliation: no drift (checked {ts(int(view.get('time', 0)))}, wall clock)")
                us = view.get("user_stream")
                if isinstance(us, dict):
                    if us.get("connected"):
                        st.caption(f"Fills: user-data stream connected · {us.get('events', 0)} events · "
                                   f"{us.get('reconnects', 0)} reconnects")
                    else:
                        st.warning("User-data stream **down**: fills are found by REST polling until it reconnects "
                                   "(booked late, never lost).")
            cols = st.columns(2)
            with cols[0]:
                st.markdown("**Venue balances**")
                bal = view.get("balances") or {}
                st.dataframe(pd.DataFrame([{"asset": a, "total": fmt.qty(float(v), asset=a)}  # type: ignore[arg-type]
                                           for a, v in bal.items()]),  # type: ignore[union-attr]
                             hide_index=True, key=f"live_balances_{name}") if bal else st.caption("—")
                vpos = view.get("positions") or []
                if vpos:
                    st.markdown("**Venue positions** (futures)")
                    st.dataframe(pd.DataFrame([{k: p[k] for k in ("symbol", "amount", "entry_price", "mark_price",
                                                                  "unrealized_pnl", "liquidation_price", "leverage",
                                                                  "margin_type") if k in p} for p in vpos]),  # type: ignore[union-attr]
                                 hide_index=True)
                oo = view.get("open_orders") or []
                tags = view.get("resting_tags") or {}
                if oo:
                    st.markdown(f"**Open orders on the venue** ({len(oo)})")  # type: ignore[arg-type]
                    st.dataframe(pd.DataFrame([{"for": tags.get(o.get("client_order_id"), ""),  # type: ignore[union-attr]
                                                "symbol": o.get("symbol"), "side": o.get("side"),
                                                "type": o.get("type", ""), "price": o.get("price", ""),
                                                "quantity": o.get("quantity", ""), "executed": o.get("executed", ""),
                                                "status": o.get("status"), "order": o.get("client_order_id")}
                                               for o in oo]), hide_index=True, key=f"open_orders_{name}")  # type: ignore[union-attr]
                else:
                    st.caption("Open orders on the venue: 0")
            with cols[1]:
                st.markdown("**Bot position**")
                if s is not None and s.open_positions:
                    st.dataframe(pd.DataFrame([{"symbol": p.symbol, "side": p.side,
                                                "quantity": fmt.qty(abs(p.quantity), p.symbol),
                                                "tranches": p.tranche_count, "avg entry": fmt.price(p.avg_entry, p.symbol),
                                                "mark": fmt.price(p.mark, p.symbol),
                                                "unrealized P&L": fmt.money(p.unrealized_pnl, s.quote_asset, signed=True),
                                                "stop": fmt.price(p.stop_loss, p.symbol),
                                                "take profit": fmt.price(p.take_profit, p.symbol)}
                                               for p in s.open_positions]), hide_index=True, key=f"live_position_{name}")
                    tranche_details([(name, p) for p in s.open_positions], "live")
                    # what rests on the exchange itself while the worker is down (executors/protection.py)
                    if s.protection and "not protected" in s.protection:
                        st.warning(f"On the venue: {s.protection}")
                    elif s.protection:
                        st.caption(f"Protected on the venue: {s.protection}")
                    elif not s.dca:
                        st.caption("No stop rests on the venue (the position has no stop, or protective orders are "
                                   "off): it is watched by the worker only.")
                else:
                    st.caption("Flat.")
                if s is not None:
                    st.caption(f"realized {fmt.money(s.realized_pnl, s.quote_asset, signed=True)} · fees "
                               f"{fmt.money(s.fees_paid, s.quote_asset)} · as of {short_ts(s.last_candle_time)} (market)")
                if s is not None and s.dca and s.dca.get("deals"):
                    for d in s.dca["deals"]:  # type: ignore[union-attr]
                        sym = str(d.get("symbol"))
                        st.caption(f"Deal {d.get('id')} on {sym}: {d.get('status')} · "
                                   f"safety orders filled {d.get('safety_filled')} · average "
                                   f"{fmt.price(float(d.get('cost', 0)) / float(d.get('quantity') or 1), sym, True)} · "
                                   "its ladder is on the chart below")
            fills = venue_fills(intents(r.r, name), metas_by_name[name].symbol)
            if not fills.empty:
                st.markdown("**Fills** (the venue's trades of this bot's orders, newest first; fee in the asset "
                            "the venue charged)")
                st.dataframe(fills, hide_index=True, key=f"fills_{name}")
        state_lines(list(snaps.values()), "live")
        risk.panel(list(snaps.values()), r, "live")

    panel()
    bot_view.history_panel(names, "live")
    drift.panel(names)
    st.markdown("**Kill switches** — Close all positions sends market orders to the venue (reduce-only on futures)")
    bot_controls(metas, "live")
    st.markdown("**Charts** (trades, stops, take-profits and the DCA ladder on the venue)")
    bot_view.charts(metas, "live", refresh_s)
    records_panel.exports(names, "live", kinds=("trades", "fills", "orders", "equity", "signals", "drift"),
                          audit=True)
    golive.render(metas)  # go-live stages, their evidence and the approval steps (ui.golive)
