"""The risk panel shown on each tab: every bot's loss limits, drawdown and exposure against their
limits in green / amber / red, the last denials, and a risk report to download."""
from __future__ import annotations

import json

import streamlit as st

from state.models import BotSnapshot
from state.reader import StateReader
from ui.common import short_ts


def level(used: float, limit: float | None) -> str:
    """green below half the limit, amber below 80 %, red from 80 % on (and at or past it)."""
    if not limit:
        return "gray"
    ratio = used / limit
    return "green" if ratio < 0.5 else "orange" if ratio < 0.8 else "red"


def gauge(label: str, used: float, limit: float | None, unit: str = "") -> str:
    colour = level(max(0.0, used), limit)
    lim = f" / {limit:,.2f}{unit}" if limit else " (no limit)"
    return f"{label} :{colour}-badge[{used:,.2f}{unit}{lim}]"


def report(s: BotSnapshot, denials: list[dict[str, object]]) -> str:
    """The downloadable risk report: state, numbers, limits, denial counts, recent denials."""
    return json.dumps({
        "bot": s.name, "mode": s.mode, "symbol": s.symbol, "as_of": s.updated_at,
        "state": s.effective_state.value, "set_by": s.control.set_by, "why": s.control.reason,
        "equity": s.equity, "risk": s.risk.model_dump(exclude={"monitor"}), "denials_by_rule": s.denials,
        "recent_denials": denials,
    }, indent=2, default=str)


def panel(snaps: list[BotSnapshot], r: StateReader, key: str) -> None:
    if not snaps:
        return
    with st.expander("Risk", expanded=True), st.container(key=f"risk_{key}"):
        for s in snaps:
            v = s.risk
            lines = [
                f"**{s.name}** · equity {s.equity:,.2f} · high-water {v.high_water:,.2f}",
                gauge("daily loss", v.daily_loss, v.daily_loss_limit),
                gauge("weekly loss", v.weekly_loss, v.weekly_loss_limit),
                gauge("drawdown", v.drawdown_pct, v.max_drawdown_pct, "%"),
                gauge("exposure", v.exposure, v.exposure_limit),
            ]
            if v.max_consecutive_losses:
                lines.append(gauge("losses in a row", v.consecutive_losses, float(v.max_consecutive_losses)))
            if v.margin_utilization_pct is not None:
                lines.append(gauge("margin used", v.margin_utilization_pct, v.limits.get("max_margin_utilization_pct"),
                                   "%"))  # type: ignore[arg-type]
            if v.liquidation_distance_pct is not None:
                lines.append(gauge("way to liquidation", v.liquidation_distance_pct, 90.0, "%"))
            st.markdown(" · ".join(lines))
            if v.breaches:
                st.warning("Breached: " + "; ".join(v.breaches))
            recent = r.denials(s.name, 50)  # one read per bot and refresh: the caption and the report
            if recent:
                st.caption("Last denials: " + " · ".join(
                    f"{short_ts(d.time)} {d.rule}: {d.detail}" for d in recent[:5]))
            st.download_button("Download risk report", report(s, [d.model_dump() for d in recent]),
                               file_name=f"risk-{s.name}.json", mime="application/json", key=f"riskdl_{key}_{s.name}")
