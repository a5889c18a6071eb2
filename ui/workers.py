"""Which worker holds which bots, when the bots are spread over several shards (``worker.shards`` > 1):
one line per shard with its lease holder and its bots; a shard without a holder in red (its bots do not
trade until a worker takes it over). Nothing is shown with one shard."""
from __future__ import annotations

import streamlit as st

from state import shards
from state.reader import StateReader
from ui.common import ts


def render(r: StateReader) -> None:
    if shards.count(r.r) < 2:
        return
    rows = shards.holders(r.r)
    with st.container(key="workers"):
        st.markdown("**Workers and shards**")
        for row in rows:
            bots = ", ".join(row.bots) or "no bots"
            if row.holder is None:
                st.error(f"Shard {row.shard} — **no worker**: {bots} not trading. A worker takes it over one "
                         "heartbeat TTL after its lease expired (or start one: `bot_manager.py run --standby`).")
            else:
                st.markdown(f"Shard {row.shard} — worker **{row.holder.worker}** (since {ts(row.holder.since)}): {bots}")
