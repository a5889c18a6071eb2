"""Streamlit dashboard (port 8502): worker health, the global kill switch, Paper / Ghost / Live tabs.

It reads state through state.reader and posts commands through state.commands; it never
talks to an exchange. Panels refresh in fragments without reloading the page.
"""
from __future__ import annotations

import hmac
import os
import time

import streamlit as st

from core.types import TradingState
from ui import audit as audit_tab
from ui import backtest as backtest_tab
from ui import dca, ghost, health_panel, layout, live, login, paper, reports, workers
from ui import golive as golive_ui
from ui.common import reader, short_ts, ts
from ui.controls import close_pending_text, global_controls, last_command_note

REFRESH_S = float(os.environ.get("BOT_DASHBOARD__REFRESH_S", "1"))

st.set_page_config(page_title="Trading bot", page_icon="📈", layout="wide")


def password_gate() -> bool:
    """Optional shared-password gate (BOT_DASHBOARD_PASSWORD); the typed value is not kept."""
    secret = os.environ.get("BOT_DASHBOARD_PASSWORD")
    if not secret or st.session_state.get("authed"):
        return True
    typed = st.text_input("Dashboard password", type="password", key="pw")
    if typed:
        ok = hmac.compare_digest(typed.encode(), secret.encode())
        del st.session_state["pw"]
        if ok:
            st.session_state["authed"] = True
            st.rerun()
        st.error("Wrong password")
    return False


@st.fragment(run_every=REFRESH_S)
def health() -> None:
    r = reader()
    try:
        hb = r.heartbeat()
        g = r.control("global")
    except Exception as exc:  # Redis down: say so instead of a traceback
        st.error(f"State store unreachable: {exc}")
        return
    with st.container(key="health"):
        if hb is None:
            last = r.last_heartbeat()
            since = f" since {ts(last.time)} (its last heartbeat)" if last else " (it has not run against this Redis)"
            st.error(f"● **Worker down**{since}. Kill switches are queued and applied when it restarts; "
                     "under `make run` it is restarted by itself.")
        else:
            age = max(0.0, time.time() - hb.time / 1000)
            st.success(f"● **Worker up** — heartbeat {age:.1f} s ago · {hb.bots} bots · market {hb.market} · "
                       f"last candle {short_ts(hb.last_candle_time)} · bad candles rejected: {hb.candles_rejected}")
            if hb.crashed_before and time.time() * 1000 - hb.started_at < 15 * 60_000:
                st.warning(f"The worker restarted at {ts(hb.started_at)} after the previous one stopped answering at "
                           f"{ts(hb.crashed_before)} (it did not stop cleanly). Open orders were resolved with the "
                           "venue before trading resumed.")
            if "×" in hb.market and not hb.market.endswith("×1"):
                st.caption("The synthetic market runs faster than the clock, so candle times run ahead of wall time.")
    with st.container(key="global_state"):
        if g.state is not TradingState.ACTIVE:
            st.warning(f"**Global state: {g.state.value}** — set by {g.set_by} at {ts(g.set_at)}: {g.reason}. "
                       "No bot opens a position until **Resume all**.")
    with st.container(key="venue_status"):
        venue_status(r.health(), hb is not None)
    workers.render(r)  # several shards: which worker holds which bots
    with st.container(key="closes_pending"):  # on every session, until the venue confirms them flat
        # the bots' control records only: the snapshots (positions, ladders, ...) are the tabs' business
        for name, control in sorted(r.bot_controls().items()):
            if control.state is TradingState.FLATTEN:
                st.error(close_pending_text(name, control.set_at, control.then))
    last_command_note(r)


def venue_status(view: dict[str, object] | None, worker_up: bool) -> None:
    """One line a venue market and one for market data: green when healthy, amber when degraded, red
    when bots are held in REDUCE_ONLY because of it."""
    if not view or not worker_up:
        return
    now = time.time() * 1000
    held = view.get("held") or {}
    ages = view.get("market_data_age_s") or {}
    limit = float(view.get("stale_after_s") or 0)  # type: ignore[arg-type]
    age_text = " · ".join(f"{s} {a:.1f} s" if a is not None else f"{s} none yet" for s, a in ages.items())  # type: ignore[union-attr]
    stale = [s for s, a in ages.items() if a is None or (limit and a > limit)]  # type: ignore[union-attr]
    slow = [s for s, a in ages.items() if a is not None and limit and a > limit / 2]  # type: ignore[union-attr]
    text = f"Market data age (wall clock): {age_text} (limit {limit:.0f} s)"
    (st.error if stale else st.warning if slow else st.caption)(text)
    for market, h in (view.get("markets") or {}).items():  # type: ignore[union-attr]
        stream = h.get("stream") or {}
        ok_ago = (now - h["last_ok_ms"]) / 1000 if h.get("last_ok_ms") else None
        parts = [f"last REST success {ok_ago:.0f} s ago" if ok_ago is not None else "no REST success yet",
                 f"weight {h.get('weight_used', 0)}/{h.get('weight_limit', 0)}",
                 "user-data stream " + ("connected" if stream.get("connected") else "DOWN") if stream else "",
                 f"{h.get('errors_last_minute', 0)} errors/min"]
        if h.get("blocked_until_ms", 0) > now:
            parts.append(f"BANNED until {ts(int(h['blocked_until_ms']))}")
        line = f"Venue {market}: " + " · ".join(p for p in parts if p)
        if h.get("problems"):
            st.error(line + " — bots held in REDUCE_ONLY: " + "; ".join(h["problems"]))
        elif not stream.get("connected", True) or h.get("errors_last_minute") or \
                h.get("weight_used", 0) > 0.8 * max(h.get("weight_limit", 1), 1):
            st.warning(line)
        else:
            st.caption(line)
    if held:
        st.error("Held in REDUCE_ONLY by market or venue health (they come back by themselves): "
                 + "; ".join(f"**{b}**: {', '.join(why)}" for b, why in held.items()))  # type: ignore[union-attr]


@st.cache_data(ttl=30, show_spinner=False)
def _config_view() -> tuple[list[str], list[str]]:
    """(market symbols, candle files the Backtest tab offers) from one config load and one scan
    of the market directory, kept 30 s: the script reruns on every click."""
    from backtest.service import data_choices
    from settings import ConfigError, load_config

    try:
        app = load_config()
    except ConfigError:
        return ["BTCUSDT", "ETHUSDT"], []
    return list(app.market.symbols), data_choices(app)


def main() -> None:
    st.title("Trading bot")
    if not login.gate() or not password_gate():  # users and sessions (ui.login); the old shared password
        return
    layout.apply()
    login.account_bar()
    golive_ui.enrolment()
    health()
    health_panel.panel(REFRESH_S)
    r = reader()
    global_controls(r)
    try:
        metas = list(r.bots().values())
    except Exception as exc:
        st.error(f"Cannot read the bots from Redis: {exc}")
        return
    signal_bots = [b for b in metas if b.kind != "dca"]
    by_mode = {m: [b for b in signal_bots if b.mode == m] for m in ("paper", "ghost", "live")}
    symbols, data_choices = _config_view()
    # Only the open tab runs (and refreshes): seven tabs of panels and charts each second would keep the
    # server busy for nothing.
    tab_paper, tab_ghost, tab_live, tab_dca, tab_bt, tab_rep, tab_audit = st.tabs(
        ["Paper", "Ghost", "Live", "DCA", "Backtest", "Reports", "Audit"], key="tab", on_change="rerun")
    with tab_paper:
        if tab_paper.open:
            paper.render(by_mode["paper"], REFRESH_S)
    with tab_ghost:
        if tab_ghost.open:
            ghost.render(by_mode["ghost"], REFRESH_S)
    with tab_live:  # every bot on real orders, DCA included: its venue state and kill switches belong here
        if tab_live.open:
            live.render([b for b in metas if b.mode == "live"], REFRESH_S)
    with tab_dca:
        if tab_dca.open:
            dca.render([b for b in metas if b.kind == "dca"], symbols, REFRESH_S)
    with tab_bt:
        if tab_bt.open:
            backtest_tab.render(metas, data_choices, REFRESH_S)
    with tab_rep:
        if tab_rep.open:
            reports.render(metas)
    with tab_audit:  # commands and their results, events, the notifier's status
        if tab_audit.open:
            audit_tab.render(metas, REFRESH_S)


main()
