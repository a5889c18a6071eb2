"""The Reports tab: by month or ISO week, per mode and per bot — return, P&L, fees, trades, win rate,
drawdown and buy-and-hold of the same symbol (``records.report``) — for the running bots, from their
whole record (the long-term store plus Redis), or for a stored backtest; each as an HTML file to keep
or send."""
from __future__ import annotations

import time
from datetime import date, datetime, timezone

import pandas as pd
import streamlit as st

import records.report as report
from records.paths import records_dir
from records.periods import PeriodRow
from records.store import RecordStore
from state import backtest_store
from state.models import BotMeta
from ui.common import get_redis, redis_url, short_ts

FORMATS = {"return %": "%+.2f", "buy & hold %": "%+.2f", "P&L": "%+,.2f", "realized": "%+,.2f", "fees": "%,.2f",
           "win rate %": "%.1f", "max DD %": "%.2f", "equity at end": "%,.2f"}
COLUMNS = {"period": "period", "return_pct": "return %", "benchmark_pct": "buy & hold %", "pnl": "P&L",
           "realized_pnl": "realized", "fees": "fees", "trades": "trades", "win_rate_pct": "win rate %",
           "max_drawdown_pct": "max DD %", "end_equity": "equity at end"}
TEXT = ("buy & hold %", "win rate %")  # may be missing: shown as text


@st.cache_data(ttl=20, show_spinner="Reading the records…")
def _running(bots: tuple[tuple[str, str, str], ...], start: int | None, end: int | None, period: str) -> report.Report:
    return report.running(RecordStore(records_dir()), get_redis(redis_url()), {n: (m, s) for n, m, s in bots},
                          start, end, period)


def frame(rows: list[PeriodRow], total: PeriodRow | None) -> pd.DataFrame:
    df = pd.DataFrame([r.dump() for r in [*rows, *([total] if total else [])]])
    if df.empty:
        return df
    df = df[list(COLUMNS)].rename(columns=COLUMNS)
    for col in TEXT:  # a period with no trades has no win rate (no candles: no buy & hold): "—", not "None"
        df[col] = [FORMATS[col] % v if v is not None and v == v else "—" for v in df[col]]
    return df


def _show(rep: report.Report, key: str) -> None:
    for note in rep.notes:
        st.warning(note)
    if not rep.bots:
        st.info("No equity records in this range yet.")
        return
    for group, title in ((rep.modes, "By mode"), (rep.bots, "By bot")):
        if not group:
            continue
        st.markdown(f"**{title}**")
        for cr in group:
            st.caption(f"{cr.name} · {cr.mode} · {', '.join(cr.symbols)} · amounts in {cr.quote}"
                       + (f" · total return {cr.total.return_pct:+.2f}% vs buy & hold "
                          f"{cr.total.benchmark_pct:+.2f}%" if cr.total and cr.total.benchmark_pct is not None else ""))
            st.dataframe(frame(cr.rows, cr.total), hide_index=True, key=f"{key}_{title}_{cr.name}",
                         column_config={c: st.column_config.NumberColumn(c, format=f) for c, f in FORMATS.items()
                                        if c not in TEXT})
    st.download_button("Download the report (HTML)", report.to_html(rep),
                       file_name=f"report-{time.strftime('%Y%m%d-%H%M', time.gmtime())}.html", mime="text/html",
                       key=f"{key}_html", on_click="ignore")


def _ms(d: date | None) -> int | None:
    return int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp() * 1000) if d else None


def render(metas: list[BotMeta]) -> None:
    with st.container(key="reports"):
        c = st.columns([1, 1.2, 1, 1])
        what = c[0].radio("Report on", ["running bots", "a backtest"], key="rep_what")
        period = c[1].radio("By", ["month", "week"], key="rep_period", horizontal=True)
        if what == "a backtest":
            _backtest()
            return
        modes = sorted({m.mode for m in metas})
        scope = c[2].selectbox("Mode", ["all", *modes], key="rep_mode")
        limit = c[3].checkbox("Limit dates", key="rep_limit")
        start = end = None
        if limit:
            d = st.columns(2)
            start = _ms(d[0].date_input("From (market time, UTC)", key="rep_from"))
            end = _ms(d[1].date_input("To (exclusive)", key="rep_to"))
        bots = tuple(sorted((m.name, m.mode, m.symbol) for m in metas if scope in ("all", m.mode)))
        if not bots:
            st.info("No bots in this mode.")
            return
        try:
            rep = _running(bots, start, end, period)
        except Exception as exc:  # noqa: BLE001 - a report must never take the tab down
            st.error(f"The report could not be built: {exc}")
            return
        st.caption(f"Built {short_ts(rep.generated_at)} (wall clock) from the records of {len(bots)} bots; "
                   "periods are market time (UTC); refreshed every 20 s.")
        _show(rep, "rep_running")


def _backtest() -> None:
    r = get_redis(redis_url())
    done = [m for m in backtest_store.list_results(r) if m.get("status") == "done"]
    if not done:
        st.info("No finished backtest yet: run one on the Backtest tab.")
        return
    pick = st.selectbox("Backtest", [m["id"] for m in done], key="rep_bt_pick",
                        format_func=lambda i: next(f"{m['bot']} · {short_ts(m.get('created_at', 0))}"
                                                   for m in done if m["id"] == i))
    doc = backtest_store.load(r, pick)
    if doc is None:
        st.warning("This result is gone (only the last 20 are kept).")
        return
    _show(report.backtest(doc), "rep_backtest")
