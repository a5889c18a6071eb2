"""Shared dashboard helpers: the cached Redis client, formatting of money, times and states."""
from __future__ import annotations

import os
from datetime import datetime, timezone

import pandas as pd
import redis
import streamlit as st

from core.types import TradingState
from state.connection import connect
from state.models import PositionView
from state.reader import StateReader
from ui.fmt import columns, price

STATE_COLOURS = {
    TradingState.ACTIVE: "green",
    TradingState.REDUCE_ONLY: "orange",
    TradingState.PAUSED: "orange",
    TradingState.FLATTEN: "red",
    TradingState.HALTED: "red",
}


@st.cache_resource
def get_redis(url: str) -> redis.Redis:
    # One thread-safe pool for every session.
    return connect(url, timeout_s=2)


def redis_url() -> str:
    if os.environ.get("BOT_REDIS__URL"):
        return os.environ["BOT_REDIS__URL"]
    from settings import ConfigError, load_config

    try:
        return load_config().redis.url
    except ConfigError:
        return "redis://127.0.0.1:6399/0"


def reader() -> StateReader:
    return StateReader(get_redis(redis_url()))


def money(x: float, asset: str = "USDT") -> str:
    return f"{x:,.2f} {asset}"


def signed_money(x: float) -> str:
    return f"{x:+,.2f}"


def ts(ms: int) -> str:
    if not ms:
        return "—"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def short_ts(ms: int) -> str:
    """Minutes, with the year (a date without its year is ambiguous in a record that lasts)."""
    if not ms:
        return "—"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def duration(ms: int) -> str:
    s = max(0, ms // 1000)
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"


def state_badge(state: TradingState) -> str:
    return f":{STATE_COLOURS[state]}-badge[{state.value}]"


def tranche_frame(p: PositionView) -> pd.DataFrame:
    """The entries a position still holds, oldest first, with each one's share of it."""
    size = sum(t.quantity for t in p.tranches)
    return pd.DataFrame([{
        "#": i, "time": short_ts(t.time), "price": t.price, "quantity": t.quantity,
        "share %": round(100.0 * t.quantity / size, 2) if size else None, "fee": round(t.fee, 6),
    } for i, t in enumerate(p.tranches, 1)])


def tranche_details(rows: list[tuple[str, PositionView]], key: str) -> None:
    """One expander per position with tranches: the position row shows only their count and
    the average entry, the list is here (a bot may add up to max_tranches entries)."""
    for bot, p in rows:
        if not p.tranches:
            continue
        title = (f"Tranches · {bot} · {p.symbol} {p.side}: {len(p.tranches)} held, "
                 f"avg entry {price(p.avg_entry, p.symbol, True)}")
        with st.expander(title, expanded=False):
            st.dataframe(tranche_frame(p), hide_index=True, key=f"{key}_tranches_{bot}_{p.symbol}_{p.side}",
                         column_config=columns(p.symbol, prices=["price"], qtys=["quantity"]))
            if p.realized_pnl:
                st.caption(f"realized by partial exits so far: {p.realized_pnl:+,.2f}")
