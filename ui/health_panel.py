"""The worker health panel: the trading loop's latency (p50/p99), each symbol's candle age, the market
data feed's and user-data streams' state and reconnects, the API weight used, API errors, the one clock
(market time with the wall time beside it) and the records archiver. Figures the worker does not report
are said to be missing, never guessed (``state.telemetry.HealthView`` lists what it writes)."""
from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from state.telemetry import HealthView
from state.telemetry import health as read_health
from ui import fmt
from ui.common import reader
from ui.records_panel import archiver_line

MISSING = "not reported by this worker"


def rows(view: HealthView | None, now_ms: int) -> list[dict[str, str]]:
    """The panel's table: what, value, and how it stands (ok / watch / PROBLEM)."""
    out: list[dict[str, str]] = []
    if view is None:
        return [{"what": "health view", "value": "none (the worker writes it every second)", "state": "watch"}]
    if view.loop_ms_p50 is not None:
        state = "ok" if (view.loop_ms_p99 or 0) < 250 else "watch" if (view.loop_ms_p99 or 0) < 1000 else "PROBLEM"
        out.append({"what": "trading loop latency", "value": f"p50 {view.loop_ms_p50:.1f} ms · p99 "
                    f"{view.loop_ms_p99:.1f} ms ({view.loop_samples} steps)", "state": state})
    else:
        out.append({"what": "trading loop latency", "value": MISSING, "state": "—"})
    limit = view.stale_after_s
    for symbol, age in view.market_data_age_s.items():
        state = "PROBLEM" if age is None or (limit and age > limit) else "watch" if limit and age > limit / 2 else "ok"
        out.append({"what": f"candle age {symbol} (wall clock)", "value": "none yet" if age is None else f"{age:.1f} s",
                    "state": f"{state} (limit {limit:.0f} s)" if limit else state})
    ms = view.market_stream
    out.append({"what": "market data stream", "value": MISSING if ms is None else
                f"{'connected' if ms.connected else 'DOWN'} · {ms.reconnects} reconnects",
                "state": "—" if ms is None else "ok" if ms.connected else "PROBLEM"})
    for market, h in view.markets.items():
        used = f"{h.weight_used}/{h.weight_limit}" if h.weight_limit else f"{h.weight_used}"
        heavy = h.weight_limit and h.weight_used > 0.8 * h.weight_limit
        out.append({"what": f"API weight used, {market} (1 min)", "value": used, "state": "watch" if heavy else "ok"})
        out.append({"what": f"API errors, {market} (1 min)", "value": str(h.errors_last_minute),
                    "state": "PROBLEM" if h.errors_last_minute >= 10 else "watch" if h.errors_last_minute else "ok"})
        if h.blocked_until_ms > now_ms:
            out.append({"what": f"{market} rate-limit ban", "value": f"until {fmt.when(h.blocked_until_ms, True)} UTC",
                        "state": "PROBLEM"})
        if h.stream is not None:
            s = h.stream
            last = f" · last event {max(0, now_ms - s.last_event_ms) / 1000:.0f} s ago" if s.last_event_ms else ""
            out.append({"what": f"user-data stream, {market}", "value": f"{'connected' if s.connected else 'DOWN'} · "
                        f"{s.events} events · {s.reconnects} reconnects{last}",
                        "state": "ok" if s.connected else "PROBLEM"})
    for bot, why in view.held.items():
        out.append({"what": f"{bot} held in REDUCE_ONLY", "value": "; ".join(why), "state": "PROBLEM"})
    return out


def panel(refresh_s: float) -> None:
    @st.fragment(run_every=max(refresh_s, 2.0))
    def draw() -> None:
        r = reader()
        try:
            view = read_health(r.r)
            hb = r.heartbeat()
        except Exception:  # noqa: BLE001 - the health line above says Redis is down
            return
        now = int(time.time() * 1000)
        table = rows(view, now)
        bad = sum(1 for x in table if x["state"].startswith("PROBLEM"))
        label = "Worker health" + (f" — {bad} problem(s)" if bad else "")
        with st.expander(label, expanded=bool(bad)), st.container(key="worker_health"):
            if hb is not None:
                st.caption(f"Clock: last candle {fmt.clock(hb.last_candle_time, hb.time)}. Trades, equity, signals "
                           "and charts use market time; venue fills and the audit use the wall clock.")
            st.dataframe(pd.DataFrame(table), hide_index=True, key="worker_health_table")
            archiver_line()

    draw()
