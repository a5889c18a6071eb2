"""The Live tab's paper ↔ live drift: each live bot against its paper shadow (``records.drift``):
slippage in basis points, fill rate, P&L difference, and the last pairs."""
from __future__ import annotations

import streamlit as st

from records.drift import drift
from records.paths import records_dir
from records.store import RecordStore
from state.telemetry import shadows
from ui.common import get_redis, redis_url


@st.cache_data(ttl=10, show_spinner=False)
def _drift(bot: str, shadow: str):  # type: ignore[no-untyped-def]
    return drift(bot, shadow, RecordStore(records_dir()), get_redis(redis_url()))


def panel(names: list[str], quote: str = "USDT") -> None:
    links = shadows(get_redis(redis_url()))
    with st.container(key="live_drift"):
        st.markdown("**Paper ↔ live drift** (each live order against its paper shadow's on the same signal)")
        missing = [n for n in names if n not in links]
        if missing:
            st.caption(f"Not measured for {', '.join(missing)}: this worker runs no paper shadow of its live bots "
                       "yet, so there is nothing to compare their fills with (docs/records.md).")
        for name in names:
            if name not in links:
                continue
            pairs, s = _drift(name, links[name])
            c = st.columns(4)
            c[0].metric("Slippage vs paper", "—" if s.slippage_bps_mean is None else f"{s.slippage_bps_mean:+.1f} bps",
                        help=f"mean over {s.pairs} paired fills; median "
                             f"{'—' if s.slippage_bps_median is None else f'{s.slippage_bps_median:+.1f}'} bps, worst "
                             f"{'—' if s.slippage_bps_worst is None else f'{s.slippage_bps_worst:+.1f}'} bps; "
                             "positive: live filled worse than paper")
            c[1].metric("Fill rate live / paper", "—" if s.live_fill_rate_pct is None else
                        f"{s.live_fill_rate_pct:.0f}% / {s.shadow_fill_rate_pct or 0:.0f}%",
                        delta=None if s.fill_rate_diff_pp is None else f"{s.fill_rate_diff_pp:+.1f} pp")
            c[2].metric("Realized P&L live − paper", f"{s.pnl_diff:+,.2f} {quote}",
                        help=f"live {s.live_pnl:+,.2f}, paper {s.shadow_pnl:+,.2f}")
            c[3].metric("Unmatched orders", f"{sum(s.unmatched.values())}",
                        help=", ".join(f"{k}: {v}" for k, v in s.unmatched.items()) or "none")
            if not pairs.empty:
                st.dataframe(pairs.sort_values("time", ascending=False).head(20).drop(columns=["time"]),
                             hide_index=True, key=f"drift_pairs_{name}")
