"""The Live tab: live bots, or a plain statement that there are none and live trading is off."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from state.models import BotMeta
from ui.common import reader
from ui import risk
from ui.controls import bot_controls, state_lines


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

    @st.fragment(run_every=refresh_s)
    def panel() -> None:
        r = reader()
        snaps = r.snapshots(names)
        state_lines(list(snaps.values()))
        risk.panel(list(snaps.values()), r, "live")

    panel()
    bot_controls(metas)
