"""The Backtest tab: run a configured bot over stored candles without blocking the worker, and
read the stored results (metrics, equity and drawdown, trades on candlesticks, monthly returns).

The button posts a ``backtest`` command (target: the bot, payload: ``BacktestRequest`` JSON);
the worker starts ``backtest.service.start_in_process`` with the command's nonce as result id,
and the result appears in the list below (``state.backtest_store``) as running, then done or failed.
DCA bots from config.yaml are offered too (the worker backtests configured bots only, so DCA bots
created from the dashboard are not); their result adds the deals table.
"""
from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from state import backtest_store as store
from backtest.plots import equity_figure_of, monthly_figure_of, trades_figure_of
from backtest.service import BacktestRequest
from state.commands import new_command, post_command
from ui import login
from state.models import BotMeta
from ui.common import get_redis, reader, redis_url, short_ts
from ui.optimize import render as render_research

CONFIG_DATA = "(config default: replay files or synthetic market)"
POLICY_HELP = ("optimistic: a touch fills; realistic: price must trade through, volume-capped; "
               "pessimistic: through by a tick, worst price of the candle")


def _label(path: str) -> str:
    p = Path(path)
    return f"{p.parent.name}/{p.name}" if p.parent.name else p.name


def _fmt(x: Any, spec: str = ",.2f", suffix: str = "") -> str:
    return "—" if x is None else f"{x:{spec}}{suffix}"


def _post(req: BacktestRequest) -> None:
    command = new_command("backtest", "bot", req.bot, user=login.sender(), payload=req.payload(),
                          reason="dashboard backtest")
    entry = post_command(get_redis(redis_url()), command)
    st.session_state["last_sent"] = {"nonce": command.nonce, "label": f"Backtest {req.bot}", "entry": entry,
                                     "at": int(time.time() * 1000)}
    st.session_state["backtest_pick"] = command.nonce  # show this result, and nothing older meanwhile
    st.session_state["backtest_jump"] = True


def _offered(metas: list[BotMeta]) -> list[BotMeta]:
    """The bots this tab offers, from the registered ``metas`` (the dashboard's one ``bots()`` read):
    the signal bots, then the DCA bots of config.yaml. DCA bots made from the dashboard (dynamic)
    are left out, since the worker's backtest knows only the configured ones."""
    signal = [m for m in metas if m.kind != "dca"]
    dca = [m for m in metas if m.kind == "dca"]
    if dca:
        try:
            rd = reader()
            dca = [m for m in dca if rd.dynamic_bot(m.name) is None]
        except Exception:  # noqa: BLE001 - Redis down: the results fragment says so
            dca = []
    return [*signal, *sorted(dca, key=lambda m: m.name)]


def _form(metas: list[BotMeta], data_choices: list[str]) -> None:
    kinds = {m.name: m.kind for m in metas}
    names = list(kinds)
    if not names:
        st.info("No bots are configured.")
        return
    with st.form("backtest_form", border=True):
        c = st.columns([1.2, 2.4])
        bot = c[0].selectbox("Bot", names, key="bt_bot",
                             format_func=lambda n: f"{n} (DCA)" if kinds.get(n) == "dca" else n,
                             help="DCA bots run candle by candle over all their pairs; market orders fill at "
                                  "the close, resting orders when price trades through them")
        data = c[1].selectbox("Candles", [CONFIG_DATA, *data_choices], key="bt_data",
                              format_func=lambda p: p if p == CONFIG_DATA else _label(p))
        c = st.columns([1, 1, 1.2, 1])
        use_range = c[0].checkbox("Limit dates", key="bt_use_range")
        start = c[1].date_input("From", value=date(2024, 1, 1), key="bt_from")
        end = c[2].date_input("To (exclusive)", value=date.today(), key="bt_to")
        interval = c[3].text_input("Interval (dir only)", value="", key="bt_interval", max_chars=4,
                                   help="only when the data is a directory holding several intervals")
        c = st.columns(3)
        policy = c[0].selectbox("Fill policy", ["realistic", "optimistic", "pessimistic"], key="bt_policy",
                                help=POLICY_HELP)
        fill_at = c[1].selectbox("Market orders fill at", ["close", "next_open"], key="bt_fill_at")
        intrabar = c[2].selectbox("Stop and take-profit in one candle", ["stop_first", "take_first", "ohlc"],
                                  key="bt_intrabar")
        sent = st.form_submit_button("Run backtest", type="primary")
    if sent:
        try:
            req = BacktestRequest.model_validate({
                "bot": bot, "data": None if data == CONFIG_DATA else data,
                "from": start.isoformat() if use_range else None, "to": end.isoformat() if use_range else None,
                "fill_policy": policy, "fill_at": fill_at, "intrabar": intrabar, "interval": interval or None,
            })
        except ValueError as exc:
            st.error(f"Bad request: {exc}")
            return
        _post(req)
        st.success(f"Backtest of **{bot}** sent to the worker; it runs in its own process. "
                   "The result appears below.")


def _results_table(metas: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for m in metas:
        h = m.get("headline") or {}
        req = m.get("request") or {}
        rows.append({
            "created": short_ts(m.get("created_at", 0)), "bot": m.get("bot", ""), "status": m.get("status", ""),
            "data": _label(req["data"]) if req.get("data") else "config",
            "range": f"{req.get('from') or '…'} → {req.get('to') or '…'}", "policy": req.get("fill_policy", ""),
            "return %": h.get("total_return_pct"), "sharpe": h.get("sharpe"),
            "max DD %": h.get("max_drawdown_pct"), "trades": h.get("trades"), "error": m.get("error", ""),
        })
    return pd.DataFrame(rows)


def _metrics(rep: dict[str, Any]) -> None:
    if rep.get("halt"):  # a rule stopped the bot during the run: the first thing to know about it
        st.error(f"**{rep['halt']}**")
    dd = rep.get("max_drawdown") or {}
    bh = rep.get("buy_and_hold") or {}
    c = st.columns(6)
    c[0].metric("Total return", _fmt(rep.get("total_return_pct"), "+.2f", " %"),
                delta=f"B&H {_fmt(bh.get('total_return_pct'), '+.2f', ' %')}", delta_color="off")
    c[1].metric("CAGR", _fmt(rep.get("cagr_pct"), "+.2f", " %"))
    c[2].metric("Sharpe", _fmt(rep.get("sharpe"), ".2f"))
    c[3].metric("Sortino", _fmt(rep.get("sortino"), ".2f"))
    c[4].metric("Calmar", _fmt(rep.get("calmar"), ".2f"))
    c[5].metric("Max drawdown", _fmt(dd.get("max_drawdown_pct"), ".2f", " %"),
                help=f"peak {dd.get('peak_time')} → trough {dd.get('trough_time')}, recovered {dd.get('recovery_time')}")
    c = st.columns(6)
    c[0].metric("Trades", _fmt(rep.get("trades"), ",d"))
    c[1].metric("Win rate", _fmt(rep.get("win_rate_pct"), ".1f", " %"))
    c[2].metric("Profit factor", _fmt(rep.get("profit_factor"), ".2f"))
    c[3].metric("Expectancy", _fmt(rep.get("expectancy"), ",.2f"))
    c[4].metric("Exposure", _fmt(rep.get("exposure_time_pct"), ".1f", " %"))
    c[5].metric("Fees paid", _fmt(rep.get("fees_paid"), ",.2f"))
    st.caption(f"{rep.get('bars', 0):,} {rep.get('interval', '')} bars of {', '.join(rep.get('symbols') or [rep.get('symbol', '')])} "
               f"{rep.get('start', '')} → {rep.get('end', '')} · engine path {rep.get('engine_path', '')} · "
               f"final equity {_fmt(rep.get('final_equity'))} · trading state at the end "
               f"**{rep.get('trading_state', 'ACTIVE')}** · risk denials {rep.get('risk_denials') or 'none'}")
    for e in rep.get("risk_events") or []:
        st.warning(f"Risk **{e['rule']}** at {e['time']}: {e['reason']} → {e['state']}"
                   + (" (position flattened)" if e.get("flattened") else ""))


def _deals(rep: dict[str, Any]) -> None:
    """A DCA result: the deals summary, notes and the deals table."""
    ds = rep.get("deals_summary") or {}
    c = st.columns(5)
    c[0].metric("Deals closed", _fmt(ds.get("closed"), ",d"),
                delta=f"{ds.get('stopped', 0)} stopped · {ds.get('open', 0)} open", delta_color="off")
    c[1].metric("Realized P&L", _fmt(ds.get("realized_pnl"), "+,.2f"),
                delta=f"open {_fmt(ds.get('open_pnl'), '+,.2f')}", delta_color="off")
    c[2].metric("Avg safety orders", _fmt(ds.get("avg_safety_orders"), ".2f"),
                help=f"most in one deal: {ds.get('max_safety_orders_used', 0)}")
    c[3].metric("Avg deal duration", _fmt(ds.get("avg_duration_h"), ",.1f", " h"),
                help=f"longest: {_fmt(ds.get('max_duration_h'), ',.1f', ' h')}")
    c[4].metric("Worst deal drawdown", _fmt(ds.get("worst_deal_drawdown_pct"), ".2f", " %"))
    for note in rep.get("notes") or []:
        st.caption(f"Note: {note}")
    deals = rep.get("deals") or []
    if deals:
        cols = ["id", "symbol", "status", "opened", "closed", "duration_h", "safety_orders", "invested", "pnl",
                "pnl_pct", "fees", "max_drawdown_pct", "close_reason"]
        with st.expander(f"Deals ({len(deals):,}"
                         + (f" of {rep['deals_truncated']:,}" if rep.get("deals_truncated") else "") + ")",
                         expanded=True):
            st.dataframe(pd.DataFrame(deals)[cols], hide_index=True, use_container_width=True, key="bt_deals")


@st.cache_data(max_entries=4, show_spinner=False)
def _finished(_r: Any, result_id: str) -> dict[str, Any] | None:
    """A finished result (``store.load``; ``_r``, the Redis client, is not part of the key). A stored
    result never changes and ids are not reused, so it is read from Redis once, not on every refresh
    of the results fragment while another backtest runs."""
    return store.load(_r, result_id)


def _show(doc: dict[str, Any]) -> None:
    rep = doc.get("report") or {}
    _metrics(rep)
    plot = doc.get("plot")
    if plot:
        st.plotly_chart(equity_figure_of(plot), use_container_width=True, key="bt_equity")
        st.plotly_chart(trades_figure_of(plot), use_container_width=True, key="bt_trades")
        st.plotly_chart(monthly_figure_of(plot), use_container_width=True, key="bt_monthly")
    if rep.get("kind") == "dca":
        _deals(rep)
    trades = rep.get("trade_list") or []
    if trades:
        with st.expander(f"Trades ({len(trades):,}"
                         + (f" of {rep['trade_list_truncated']:,}" if rep.get("trade_list_truncated") else "") + ")"):
            st.dataframe(pd.DataFrame(trades), hide_index=True, use_container_width=True)
    with st.expander("Request and data"):
        st.code(json.dumps({"request": doc.get("request"), "data": doc.get("data"),
                            "elapsed_s": doc.get("elapsed_s"), "bars_per_s": doc.get("bars_per_s")}, indent=2),
                language="json")


def _picked() -> None:
    """The operator chose a result: that one stays shown (a later run is shown once it is sent)."""
    st.session_state["backtest_pick"] = st.session_state.get("bt_pick_box")
    st.session_state.pop("backtest_jump", None)


def render(metas: list[BotMeta], data_choices: list[str], refresh_s: float = 2.0) -> None:
    """The tab. ``metas``: the bots the worker registered (``StateReader.bots()``, signal and DCA);
    ``data_choices``: candle files to offer (``backtest.service.data_choices(app)``)."""
    _form(_offered(metas), data_choices)
    r = get_redis(redis_url())
    try:
        busy = bool(store.running(r))
    except Exception:  # noqa: BLE001 - shown by the fragment below
        busy = False
    sent = st.session_state.get("last_sent") or {}
    recent = sent.get("label", "").startswith("Backtest") and time.time() * 1000 - sent.get("at", 0) < 30_000
    # Refresh only while something runs (or was just sent): redrawing the charts every few
    # seconds for nothing would make the tab flicker.

    @st.fragment(run_every=refresh_s if busy or recent else None)
    def results() -> None:
        try:
            lines = store.list_results(r)
        except Exception as exc:  # Redis down: say so instead of a traceback
            st.error(f"State store unreachable: {exc}")
            return
        if not lines:
            st.info("No backtest results yet: run one above.")
            return
        st.dataframe(_results_table(lines), hide_index=True, use_container_width=True, key="bt_results")
        ids = [m["id"] for m in lines]
        by_id = {m["id"]: m for m in lines}
        want = st.session_state.get("backtest_pick")
        if want and want not in ids and st.session_state.get("backtest_jump"):
            # sent, not registered by the worker yet: say so rather than show an older run
            st.info("The backtest just sent is waiting for the worker to start it…")
            return
        if want in ids and st.session_state.pop("backtest_jump", False):
            st.session_state["bt_pick_box"] = want  # the run just started is the one shown
        if st.session_state.get("bt_pick_box") not in ids:
            st.session_state["bt_pick_box"] = ids[0]
        pick = st.selectbox("Result", ids, key="bt_pick_box", on_change=_picked,
                            format_func=lambda i: f"{by_id[i]['bot']} · {by_id[i]['status']} · "
                                                  f"{short_ts(by_id[i].get('created_at', 0))}")
        m = by_id[pick]
        if m["status"] == "running":
            st.info(f"**{m['bot']}** is running in its own process…")
        elif m["status"] == "failed":
            st.error(f"**{m['bot']}** failed: {m.get('error')}")
        else:
            doc = _finished(r, pick)
            if doc is None:
                st.warning("This result is gone (only the last 20 are kept).")
            else:
                _show(doc)

    results()
    render_research()  # hyperopt studies and ML models (ui/optimize.py)
