"""Page-wide layout rules (CSS): on a phone-width screen the Emergency stop stays on screen however far
the page is scrolled (pinned to the bottom right), wide tables scroll sideways instead of squeezing,
and each bot's kill switches wrap onto full-width rows."""
from __future__ import annotations

import streamlit as st

CSS = """
<style>
@media (max-width: 700px) {
  .st-key-emergency_stop {
    position: fixed !important; right: 12px; bottom: 14px; z-index: 999990; width: auto !important;
  }
  .st-key-emergency_stop button { box-shadow: 0 2px 10px rgba(0, 0, 0, .35); padding: 0.7rem 1.1rem; }
  [class*="_controls_"] button { min-height: 2.6rem; }
  .block-container { padding-left: 0.8rem !important; padding-right: 0.8rem !important; padding-bottom: 5rem; }
  h1 { font-size: 1.6rem !important; }
  /* summary metrics two a row, smaller: the numbers, not the scrolling, on a phone */
  [class*="_summary"] [data-testid="stHorizontalBlock"] { flex-wrap: wrap !important; gap: 0.5rem !important; }
  [class*="_summary"] [data-testid="stColumn"] { min-width: calc(50% - 0.5rem) !important;
                                                 flex: 1 1 calc(50% - 0.5rem) !important; }
  [class*="_summary"] [data-testid="stMetricValue"] { font-size: 1.5rem !important; }
}
</style>
"""


def apply() -> None:
    st.markdown(CSS, unsafe_allow_html=True)
