"""The Live tab: the venue (with a clear REAL MONEY marking on mainnet), pre-flight results,
reconciliation with adopt / ignore / flatten, balances, positions, open orders and fills of each
live bot — or a plain statement that there are none and live trading is off."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from state.models import BotMeta
from ui import golive, login, risk
from ui.common import reader, short_ts, tranche_details, ts
from ui.controls import _open, bot_controls, state_lines


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
            if pre is not None:
                ok = pre.get("ok")
                with st.container(key=f"preflight_{name}"):
                    st.markdown(f"**Pre-flight** {':green-badge[passed]' if ok else ':red-badge[FAILED: the bot is halted]'}")
                    st.dataframe(pd.DataFrame([{"check": c["name"], "ok": "✓" if c["ok"] else "✗", "detail": c["reason"]}
                                               for c in pre.get("checks", [])]), hide_index=True)  # type: ignore[union-attr]
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
                    st.caption(f"Reconciliation: no drift (checked {ts(int(view.get('time', 0)))})")
                us = view.get("user_stream")
                if isinstance(us, dict):
                    if us.get("connected"):
                        st.caption(f"Fills: user-data stream connected · {us.get('events', 0)} events · "
                                   f"{us.get('reconnects', 0)} reconnects")
                    else:
                        st.warning("User-data stream **down**: fills are found by REST polling until it reconnects "
                                   "(booked late, never lost).")
            s = snaps.get(name)
            cols = st.columns(2)
            with cols[0]:
                st.markdown("**Venue balances**")
                bal = view.get("balances") or {}
                st.dataframe(pd.DataFrame([{"asset": a, "total": v} for a, v in bal.items()]),  # type: ignore[union-attr]
                             hide_index=True) if bal else st.caption("—")
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
                    st.dataframe(pd.DataFrame([{"symbol": p.symbol, "side": p.side, "quantity": p.quantity,
                                                "tranches": p.tranche_count, "avg entry": p.avg_entry, "mark": p.mark,
                                                "unrealized P&L": round(p.unrealized_pnl, 4), "stop": p.stop_loss}
                                               for p in s.open_positions]), hide_index=True)
                    tranche_details([(name, p) for p in s.open_positions], "live")
                else:
                    st.caption("Flat.")
                if s is not None:
                    st.caption(f"equity {s.equity:,.2f} · realized {s.realized_pnl:+,.2f} · trades {s.trade_count}")
                if s is not None and s.dca and s.dca.get("deals"):
                    for d in s.dca["deals"]:  # type: ignore[union-attr]
                        st.caption(f"Deal {d.get('id')} on {d.get('symbol')}: {d.get('status')} · "
                                   f"safety orders filled {d.get('safety_filled')} · "
                                   f"average {float(d.get('cost', 0)) / float(d.get('quantity') or 1):,.2f} · "
                                   "ladder and chart on the DCA tab")
            fills = r.fills(name, 20)
            if fills:
                st.markdown("**Fills** (from the venue, newest first)")
                st.dataframe(pd.DataFrame([{"time": ts(f.time), "side": f.side, "quantity": f.quantity,
                                            "price": f.price, "fee": round(f.fee, 6), "fee asset": f.fee_asset,
                                            "order": f.client_order_id} for f in fills]), hide_index=True,
                             key=f"fills_{name}")
        state_lines(list(snaps.values()), "live")
        risk.panel(list(snaps.values()), r, "live")

    panel()
    st.markdown("**Kill switches** — Close all positions sends market orders to the venue (reduce-only on futures)")
    bot_controls(metas, "live")
    golive.render(metas)  # go-live stages, their evidence and the approval steps (ui.golive)
