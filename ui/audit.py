"""The Audit tab: every command and its result (``bot:audit``) and every event (``bot:events``),
with filters (bot, kind, severity, time), CSV downloads, and the notifier's status.

Rejected and failed commands stand out: listed first in red, and marked in the table. The tab
refreshes every few seconds and shows the newest ``ROWS`` of each (its cost stays small beside the
trading tabs' 1 s refresh: no per-cell styling).
"""
from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from state.events import EVENT_KINDS, SEVERITIES, Event, read_audit, read_events
from state.models import AuditRecord, BotMeta
from state.notifier_store import NotifierStatus, read_notifier_status
from ui.common import get_redis, redis_url, short_ts, ts

RANGES = {"last hour": 3_600_000, "last 24 hours": 86_400_000, "last 7 days": 7 * 86_400_000, "all": None}
ALL, WORKER = "all bots", "worker-wide only"
ROWS = 200
REFRESH_S = 5.0
_FAILED = ("rejected", "refused", "failed")
_MARK = {"critical": "🔴", "warning": "🟠", "info": "⚪"}


def needs_attention(a: AuditRecord) -> bool:
    """A command the worker rejected or refused, or one that did not do all it should have."""
    return a.result in _FAILED or "NOT closed" in a.detail or "FAILED" in a.detail


def audit_frame(records: list[AuditRecord]) -> pd.DataFrame:
    return pd.DataFrame([{"": "🔴" if needs_attention(a) else "", "time": ts(a.time), "who": a.who,
                          "command": a.command, "target": a.target, "result": a.result, "detail": a.detail,
                          "attention": needs_attention(a)}
                         for a in records], columns=["", "time", "who", "command", "target", "result", "detail",
                                                     "attention"])


def events_frame(events: list[Event]) -> pd.DataFrame:
    return pd.DataFrame([{"": _MARK[e.severity], "time": ts(e.time), "severity": e.severity, "kind": e.kind,
                          "bot": e.bot, "title": e.title, "detail": e.detail} for e in events],
                        columns=["", "time", "severity", "kind", "bot", "title", "detail"])


def notifier_line(status: NotifierStatus | None) -> None:
    with st.container(key="notifier_status"):
        if status is None:
            st.warning("**Notifier not running** — no alerts are sent. `make run` starts it (`python -m notify`); "
                       "targets come from `BOT_NOTIFY_URLS` (docs/operations.md).")
            return
        age = time.time() - status.time / 1000
        if age > 15:
            st.error(f"**Notifier down** — last seen {ts(status.time)}; events wait in Redis until it is back.")
            return
        failing = [t for t in status.targets if t.state in ("retrying", "failing")]
        parts = [f"{t.label} ≥ {t.min_severity}: {t.state}, {t.events} sent" + (f", {t.dropped} given up"
                                                                              if t.dropped else "")
                 + (f" ({t.last_error})" if t.last_error and t.state != "ok" else "") for t in status.targets]
        text = (f"**Notifier up** — {len(status.targets)} target(s): {'; '.join(parts) or 'none configured'} · "
                f"{status.suppressed} repeats held back · Telegram {status.telegram} · worker {status.worker}")
        (st.warning if failing else st.info)(text)


def render(metas: list[BotMeta], refresh_s: float) -> None:
    names = [m.name for m in metas]

    @st.fragment(run_every=max(refresh_s, REFRESH_S))
    def panel() -> None:
        r = get_redis(redis_url())
        c = st.columns([1.2, 2.4, 1, 1])
        bot = c[0].selectbox("Bot", [ALL, WORKER, *names], key="audit_bot")
        kinds = c[1].multiselect("Event kinds", list(EVENT_KINDS), key="audit_kinds", placeholder="all kinds")
        severity = c[2].selectbox("Severity at least", list(SEVERITIES), key="audit_severity")
        span = c[3].selectbox("Time", list(RANGES), index=1, key="audit_range")
        since = None if RANGES[span] is None else int(time.time() * 1000) - RANGES[span]  # type: ignore[operator]
        try:
            notifier_line(read_notifier_status(r))
            records = read_audit(r, bot=None if bot in (ALL, WORKER) else bot, since_ms=since, limit=ROWS)
            if bot == WORKER:
                records = [a for a in records if a.target not in names]
            events = read_events(r, bot=None if bot == ALL else ("" if bot == WORKER else bot), kinds=kinds or None,
                                 min_severity=severity, since_ms=since, limit=ROWS)
        except Exception as exc:  # Redis down or a record it cannot read: say so, no traceback
            st.error(f"Cannot read the audit from Redis: {exc}")
            return
        st.subheader("Commands")
        attention = [a for a in records if needs_attention(a)]
        with st.container(key="audit_attention"):
            for a in attention[:10]:
                st.error(f"**{a.result.upper()}: {a.command} {a.target}** by {a.who} at {short_ts(a.time)} — "
                         f"{a.detail}")
            if len(attention) > 10:
                st.caption(f"… and {len(attention) - 10} more rejected or failed in the table below")
        frame = audit_frame(records)
        if frame.empty:
            st.caption("No commands in this range.")
        else:
            st.dataframe(frame.drop(columns="attention"), hide_index=True, key="audit_table")
        st.download_button("Download commands (CSV)", frame.drop(columns="").to_csv(index=False), "audit.csv",
                           "text/csv", key="audit_csv")
        st.subheader("Events")
        ev = events_frame(events)
        counts = ev["severity"].value_counts() if not ev.empty else {}
        m = st.columns(3)
        for col, sev in zip(m, SEVERITIES):
            col.metric(sev.capitalize(), int(counts.get(sev, 0)) if len(ev) else 0)
        if ev.empty:
            st.caption("No events in this range (the worker publishes them; see docs/operations.md).")
        else:
            st.dataframe(ev, hide_index=True, key="events_table")
        st.caption(f"The newest {ROWS} of each in the range; GET /api/v1/audit and /api/v1/events give more.")
        st.download_button("Download events (CSV)", ev.drop(columns="").to_csv(index=False), "events.csv",
                           "text/csv", key="events_csv")

    panel()
