"""Charts that keep the user's zoom and pan while new candles arrive.

``st.plotly_chart`` gives a figure a new identity whenever its data changes, so every refresh redraws it
from scratch and resets the zoom. This component (``ui/assets/live_chart/index.html``) keeps its iframe
across refreshes (a stable key), receives each new figure and updates it in place with ``Plotly.react``;
the layout's ``uirevision`` — stable per chart — tells Plotly to keep what the user zoomed, panned or
hid. plotly.js comes from the installed plotly package, copied once next to the page (var/ui/).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import plotly
import plotly.graph_objects as go
import streamlit as st
import streamlit.components.v1 as components

from records.paths import var_dir

ASSETS = Path(__file__).resolve().parent / "assets" / "live_chart"


@st.cache_resource
def _component():  # type: ignore[no-untyped-def]
    serve = var_dir() / "ui" / "live_chart"
    serve.mkdir(parents=True, exist_ok=True)
    js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    for src in (ASSETS / "index.html", js):
        dst = serve / src.name
        if not dst.exists() or dst.stat().st_size != src.stat().st_size or dst.stat().st_mtime < src.stat().st_mtime:
            shutil.copy2(src, dst)
    return components.declare_component("live_chart", path=str(serve))


def show(fig: go.Figure, key: str) -> None:
    """Draw ``fig`` under ``key`` (stable across refreshes: it is the chart's identity and its
    zoom's); the next call with the same key updates the data and keeps the view."""
    _component()(figure=json.loads(fig.to_json()), revision=key, key=key, default=None)
