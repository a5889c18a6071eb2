"""The DCA tab: create or edit a DCA bot with a live ladder preview, each bot's active deals with
their ladder on the price chart, and closed deals."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from pydantic import ValidationError

from core.validation import error_lines
from strategy.dca_settings import DcaConfig
from state.models import BotMeta, CandleRecord
from strategy.dca import ladder
from ui.common import duration, reader, short_ts
from ui.controls import _open, bot_controls, state_lines


def preview_frame(cfg: DcaConfig, price: float) -> tuple[pd.DataFrame, str]:
    """The same ladder as `bot_manager.py dca-preview`, as a table plus its totals."""
    lad = ladder(cfg.params(), price)
    rows = [{
        "order": lv.name, "step %": None if lv.step_pct is None else float(lv.step_pct),
        "cum. dev %": float(lv.cum_deviation_pct), "price": float(lv.price), "size (quote)": float(lv.quote_size),
        "size (base)": float(lv.base_qty), "cum. cost": float(lv.cum_cost), "cum. qty": float(lv.cum_qty),
        "average": float(lv.avg_price), "take profit": float(lv.tp_price),
    } for lv in lad.levels]
    totals = f"max funds {float(lad.max_funds):,.2f} · max deviation covered {float(lad.max_deviation_pct):.2f}%"
    if lad.liquidation_price is not None:
        totals += f" · liquidation ≈ {float(lad.liquidation_price):,.2f} (x{cfg.leverage:g} isolated)"
    if lad.warnings:
        totals += " · ⚠ " + "; ".join(lad.warnings)
    return pd.DataFrame(rows), totals


def deal_chart(symbol: str, candles: list[CandleRecord], deal: dict[str, object],
               resting: list[dict[str, object]]) -> go.Figure:
    x = [datetime.fromtimestamp(c.t / 1000, tz=timezone.utc) for c in candles]
    fig = go.Figure(go.Candlestick(x=x, open=[c.o for c in candles], high=[c.h for c in candles],
                                   low=[c.l for c in candles], close=[c.c for c in candles], name=symbol))
    qty, cost = float(deal["quantity"]), float(deal["cost"])  # type: ignore[arg-type]

    def line(y: float, colour: str, dash: str, label: str) -> None:
        fig.add_hline(y=y, line_color=colour, line_dash=dash, annotation_text=label, annotation_position="right")

    for t in deal["tranches"]:  # type: ignore[union-attr]
        line(float(t["price"]), "#2ca02c", "dot", f"{t['tag']} filled")
    for o in resting:
        if o["symbol"] == symbol:
            colour = "#7f7f7f" if str(o["tag"]).startswith("SO") else "#17becf"
            line(float(o["price"]), colour, "dash", f"{o['tag']} resting")
    if qty:
        line(cost / qty, "#1f77b4", "solid", "average")
    if deal.get("stop_price"):
        line(float(deal["stop_price"]), "#d62728", "solid", "stop")  # type: ignore[arg-type]
    fig.update_layout(height=380, margin=dict(l=10, r=90, t=30, b=10), xaxis_rangeslider_visible=False,
                      title=f"{symbol} · deal {deal['id']} · {deal['status']}", showlegend=False)
    return fig


def editor(metas: list[BotMeta], symbols: list[str]) -> None:
    """Create or edit a DCA bot; the preview updates as the numbers change."""
    # Live DCA bots are edited in config.yaml only (the two-key switch), never from here.
    existing = {m.name: m for m in metas if m.mode != "live"}
    with st.expander("Create or edit a DCA bot", expanded=not metas):
        pick = st.selectbox("Bot", ["(new bot)", *existing], key="dca_edit_pick")
        seed = existing[pick].params if pick in existing else {}
        c = st.columns(4)
        name = pick if pick in existing else c[0].text_input("Name", "dca-new", key="dca_name")
        mode = (existing[pick].mode if pick in existing
                else c[1].selectbox("Mode", ["paper", "ghost"], key="dca_mode"))
        pair = (existing[pick].symbol if pick in existing
                else c[2].selectbox("Pair", symbols, key="dca_pair"))
        side = c[3].selectbox("Side", ["long", "short"], index=0 if seed.get("side", "long") == "long" else 1,
                              key=f"dca_side_{pick}")
        n = st.columns(5)
        values = {
            "base_order": n[0].number_input("Base order (quote)", 1.0, value=float(seed.get("base_order", 100.0)),
                                            key=f"dca_bo_{pick}"),
            "safety_order": n[1].number_input("Safety order (quote)", 1.0,
                                              value=float(seed.get("safety_order", 200.0)), key=f"dca_so_{pick}"),
            "deviation_pct": n[2].number_input("Deviation %", 0.01, 99.0, float(seed.get("deviation_pct", 1.0)),
                                               key=f"dca_dev_{pick}"),
            "step_scale": n[3].number_input("Step scale", 0.1, 10.0, float(seed.get("step_scale", 1.5)),
                                            key=f"dca_ss_{pick}"),
            "volume_scale": n[4].number_input("Volume scale", 0.1, 10.0, float(seed.get("volume_scale", 1.5)),
                                              key=f"dca_vs_{pick}"),
        }
        m = st.columns(5)
        values["max_safety_orders"] = int(m[0].number_input("Max safety orders", 0, 200,
                                                            int(seed.get("max_safety_orders", 4)), key=f"dca_n_{pick}"))
        values["active_safety_orders"] = int(m[1].number_input(
            "Active safety orders", 0, 200, int(seed.get("active_safety_orders") or 2), key=f"dca_a_{pick}"))
        values["take_profit_pct"] = m[2].number_input("Take profit %", 0.01, 1000.0,
                                                      float(seed.get("take_profit_pct", 1.0)), key=f"dca_tp_{pick}")
        sl = m[3].number_input("Stop loss % (0 = none)", 0.0, 99.0, float(seed.get("stop_loss_pct") or 0.0),
                               key=f"dca_sl_{pick}")
        values["cooldown_s"] = m[4].number_input("Cooldown (s)", 0.0, 10_000_000.0,
                                                 float(seed.get("cooldown_s", 300.0)), key=f"dca_cd_{pick}")
        values.update(side=side, stop_loss_pct=sl or None)
        # The form shows the common settings; every other stored setting (take-profit steps,
        # trailing, price range, pairs, ...) is kept as it was, not reset to a default.
        values = {**{k: v for k, v in seed.items() if k in DcaConfig.model_fields}, **values}
        try:
            cfg = DcaConfig(**values)
        except ValidationError as exc:
            for line in error_lines(exc):
                st.error(line)
            return
        candles = reader().candles(pair, 1)
        price = candles[-1].c if candles else 100.0
        frame, totals = preview_frame(cfg, price)
        st.caption(f"Preview at the last price {price:,.2f} — {totals}")
        st.dataframe(frame, hide_index=True, key=f"dca_preview_{pick}")
        stored = reader().dynamic_bot(name) if pick in existing else None
        risk = (stored or {}).get("risk") or {"max_position_pct": 50, "max_bot_exposure_pct": 50}
        payload = json.dumps({"mode": mode, "kind": "dca", "symbol": pair,
                              "dca": cfg.model_dump(exclude_defaults=True), "risk": risk})
        summary = (f"{side} {pair} in {mode}, base {cfg.base_order:g}, safety {cfg.safety_order:g} × "
                   f"{cfg.max_safety_orders} ({cfg.active_safety_orders} resting), deviation {cfg.deviation_pct:g}%, "
                   f"take profit {cfg.take_profit_pct:g}%; {totals}")
        st.button("Save DCA bot", key="dca_save", type="primary", on_click=_open,
                  args=("upsert_dca_bot", "bot", name, payload, summary))


def render(metas: list[BotMeta], symbols: list[str], refresh_s: float) -> None:
    editor(metas, symbols)

    @st.fragment(run_every=max(refresh_s, 2.0))
    def panel() -> None:
        r = reader()
        # Re-read the bots: one created from another page or the shell appears without a reload.
        names = [m.name for m in r.bots().values() if m.kind == "dca"]
        if not names:
            st.info("No DCA bots yet: create one above, or add one to config.yaml with `kind: dca`.")
            return
        snaps = r.snapshots(names)
        state_lines(list(snaps.values()), "dca")
        for name in names:
            s = snaps.get(name)
            if s is None:
                continue
            dca = s.dca or {}
            deals = dca.get("deals", [])  # type: ignore[union-attr]
            closed = r.deals(name, 50)
            st.markdown(f"**{name}** · equity {s.equity:,.2f} ({s.pnl:+,.2f}) · active deals {len(deals)} · "
                        f"closed deals {len(closed)} · resting orders {len(dca.get('resting', []))}")  # type: ignore[arg-type]
            for deal in deals:  # type: ignore[union-attr]
                st.plotly_chart(deal_chart(str(deal["symbol"]), r.candles(str(deal["symbol"]), 120), deal,
                                           dca.get("resting", [])),  # type: ignore[arg-type]
                                key=f"deal_{deal['id']}")
            if closed:
                st.dataframe(pd.DataFrame([{
                    "deal": d["id"], "pair": d["symbol"], "result": d["status"], "reason": d["close_reason"],
                    "opened": short_ts(int(d["opened_at"])), "duration": duration(int(d["closed_at"]) - int(d["opened_at"])),
                    "P&L": round(float(d["realized_pnl"]), 2), "safety orders used": d["safety_filled"],
                    "max floating drawdown %": round(float(d["max_drawdown_pct"]), 2),
                } for d in closed]), hide_index=True, key=f"closed_{name}")

    panel()
    st.markdown("**Kill switches**")
    bot_controls(metas, "dca")
