"""Download buttons for a tab's records (``records.export``: the long-term store plus what the Redis
streams hold beyond it, so a file is complete up to the click), and the archiver's status line."""
from __future__ import annotations

import time
from typing import Callable

import streamlit as st

from records.export import collect, file_name, to_bytes
from records.paths import records_dir
from records.store import RecordStore
from state.records import KINDS, RecordStreams
from ui.common import get_redis, redis_url

MIME = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}


def _data(kind: str, names: list[str], fmt: str) -> Callable[[], bytes]:
    def build() -> bytes:  # runs when the button is clicked, not on every refresh
        if kind == "drift":
            from records.drift import drift_export

            ex = drift_export(RecordStore(records_dir()), get_redis(redis_url()), names)
        else:
            ex = collect(kind, RecordStore(records_dir()), get_redis(redis_url()), names)
        return to_bytes(ex, fmt)

    return build


def exports(names: list[str], tab: str, kinds: tuple[str, ...] = ("trades", "fills", "orders", "equity", "signals"),
            audit: bool = False) -> None:
    """One download button a kind, for the bots of this tab."""
    if not names:
        return
    with st.expander("Export records", expanded=False), st.container(key=f"{tab}_exports"):
        st.caption("Every record of these bots since they started (the long-term store, var/records, plus what "
                   "Redis holds beyond it): one row a record, with its stream id; times in epoch ms and UTC.")
        fmt = st.radio("Format", ["csv", "parquet"], key=f"{tab}_export_format", horizontal=True)
        cols = st.columns(len(kinds) + (1 if audit else 0))
        for col, kind in zip(cols, [*kinds, *(["audit"] if audit else [])]):
            col.download_button(kind, data=_data(kind, names, fmt), file_name=file_name(kind, names, fmt),
                                mime=MIME[fmt], key=f"{tab}_export_{kind}", on_click="ignore",
                                help=f"{KINDS[kind].label if kind in KINDS else kind} of {', '.join(names)}")


def archiver_line() -> None:
    """Where the records go, and whether the archiver keeps up (gaps in red: records Redis trimmed
    before they were archived)."""
    try:
        status = RecordStreams(get_redis(redis_url())).status()
    except Exception:  # noqa: BLE001 - the health line says Redis is down
        return
    with st.container(key="archiver_status"):
        if status is None:
            st.warning("Records archiver not running: trades, fills and equity are kept only in Redis' capped "
                       "streams until it is back (make run starts it; log: var/log/archiver.log).")
            return
        age = max(0.0, time.time() - status.last_commit / 1000) if status.last_commit else None
        st.caption(f"Records: {status.rows:,} archived in {status.store} · {status.streams} streams · "
                   f"{status.lag} waiting · last commit {f'{age:.0f} s ago' if age is not None else 'none yet'}"
                   + (f" · {status.error}" if status.error else ""))
        for gap in status.gaps[-3:]:
            st.error(f"Records lost: {gap}")
