"""Research on the Backtest tab: hyperopt studies (best trials, parameter importance, objective history,
walk-forward windows) and ML models (metrics, holdout backtest, live hit rate and feature drift).

Studies are read read-only from their SQLite files (``backtest.study_view``), models from their
folders; live candles for monitoring come from Redis (``StateReader.candles``). Every panel
catches its own errors and says what went wrong: a broken study or model file never shows an
exception on the page.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ui.common import reader


@st.cache_data(ttl=10, show_spinner=False)
def _view(file: str, name: str, mtime: float) -> dict[str, Any]:
    """A study as data (cached per file modification: a running study refreshes as it grows)."""
    from backtest.study_view import study_view

    return study_view(file, name)


def _studies() -> None:
    from backtest.study_view import list_studies

    try:
        studies = list_studies()
    except Exception as exc:  # noqa: BLE001 - an unreadable folder must not break the tab
        st.error(f"Cannot list the optimisation studies: {exc}")
        return
    if not studies:
        st.info("No optimisation studies yet: `python bot_manager.py optimize --bot NAME --space fast=5:50 "
                "--space slow=20:200 --trials 200`.")
        return
    labels = [f"{name} ({Path(f).name})" for f, name in studies]
    i = st.selectbox("Study", range(len(studies)), format_func=lambda k: labels[k], key="opt_study")
    file, name = studies[i]
    try:
        view = _view(file, name, os.path.getmtime(file))
    except Exception as exc:  # noqa: BLE001 - a corrupt or foreign file
        st.error(f"Cannot read study {name} from {file}: {type(exc).__name__}: {exc}")
        return
    try:
        _study(view)
    except Exception as exc:  # noqa: BLE001 - a study written by another version: say so, no traceback
        st.error(f"Cannot show study {name} from {file}: {type(exc).__name__}: {exc}")


def _study(v: dict[str, Any]) -> None:
    spec, counts = v.get("spec") or {}, v.get("counts") or {}
    st.caption(f"bot **{spec.get('bot', '?')}** ({spec.get('strategy', '?')}) · objective **{spec.get('objective', '?')}**"
               f" · space {' '.join(spec.get('space') or [])} · min trades {spec.get('min_trades', '?')} · "
               + " · ".join(f"{k.lower()} {n}" for k, n in sorted(counts.items()))
               + (f" · last run {v['last_run']['new_trials']} trials in {v['last_run']['seconds']:.0f} s on "
                  f"{v['last_run']['executor']}" if v.get("last_run") else ""))
    best = v.get("best") or []
    with st.container(key="opt_best_trials"):
        st.markdown("**Best trials**")
        if best:
            # a static table: ten rows at most, and every figure is in the page's text
            st.table(pd.DataFrame(best).set_index("trial").style.format(precision=4))
        else:
            st.info("No complete trial yet.")
    c = st.columns(2)
    imp = v.get("importance") or {}
    with c[0]:
        st.markdown("**Parameter importance** (fANOVA)")
        if imp:
            fig = go.Figure(go.Bar(x=list(imp.values()), y=list(imp.keys()), orientation="h"))
            fig.update_layout(height=260, margin={"l": 10, "r": 10, "t": 10, "b": 10})
            st.plotly_chart(fig, use_container_width=True, key="opt_importance")
        else:
            st.caption("Not computed: the run has not finished, or too few complete trials differ.")
    hist = [h for h in v.get("history") or [] if h.get("value") is not None]
    with c[1]:
        st.markdown("**Objective history**")
        if hist:
            fig = go.Figure()
            fig.add_trace(go.Scatter(x=[h["trial"] for h in hist], y=[h["value"] for h in hist], mode="markers",
                                     name="trial"))
            fig.add_trace(go.Scatter(x=[h["trial"] for h in hist], y=[h["best"] for h in hist], mode="lines", line_shape="hv",
                                     name="best so far"))
            fig.update_layout(height=260, margin={"l": 10, "r": 10, "t": 10, "b": 10}, xaxis_title="trial",
                              yaxis_title=spec.get("objective", "value"))
            st.plotly_chart(fig, use_container_width=True, key="opt_history")
        else:
            st.caption("No complete trial yet.")
    wf = v.get("walk_forward")
    if wf:
        _walk_forward(wf)


def _walk_forward(wf: dict[str, Any]) -> None:
    if wf.get("error"):
        st.warning(wf["error"])
        return
    st.markdown(f"**Walk-forward** ({wf.get('mode')}, {len(wf.get('windows') or [])} windows)")
    rows = [{"window": w["index"], "train": " → ".join(x or "" for x in w["train"]),
             "test": " → ".join(x or "" for x in w["test"]), "params": w["params"],
             "IS sharpe": w["in_sample"].get("sharpe"), "OOS sharpe": w["out_of_sample"].get("sharpe"),
             "OOS return %": w["out_of_sample"].get("total_return_pct"), "OOS trades": w["out_of_sample"].get("trades"),
             "collapsed": w["collapsed"]} for w in wf.get("windows") or []]
    if rows:
        st.dataframe(pd.DataFrame(rows).astype({"params": str}), hide_index=True, use_container_width=True,
                     key="opt_wf")
    cat = wf.get("oos_concatenated") or {}
    eff = wf.get("efficiency")
    ret = cat.get("total_return_pct")
    st.caption(f"Out of sample, concatenated: return {'—' if ret is None else f'{ret:.2f}'} % · Sharpe "
               f"{cat.get('sharpe')} · max drawdown {cat.get('max_drawdown_pct')} % · trades {cat.get('trades')} · "
               f"walk-forward efficiency {eff if eff is None else round(eff, 2)}")
    if wf.get("collapsed_windows"):
        st.warning(f"The best trial collapsed out of sample in window(s) {wf['collapsed_windows']} "
                   f"({wf.get('rule')}): likely overfit.")


def _models() -> None:
    from backtest.ml.artifact import list_models

    try:
        models = list_models()
    except Exception as exc:  # noqa: BLE001
        st.error(f"Cannot list the models: {exc}")
        return
    if not models:
        st.info("No ML models yet: `python bot_manager.py ml train --model NAME --data FILE`.")
        return
    rows = [{"model": m.get("name"), "version": m.get("version"), "symbol": (m.get("data") or {}).get("symbol"),
             "interval": (m.get("data") or {}).get("interval"), "AUC": (m.get("metrics") or {}).get("auc"),
             "precision@thr": (m.get("metrics") or {}).get("precision_at_threshold"), "threshold": m.get("threshold"),
             "holdout return %": (m.get("backtest") or {}).get("total_return_pct"),
             "created": m.get("created_at"), "error": m.get("error", "")} for m in models]
    st.dataframe(pd.DataFrame(rows), hide_index=True, use_container_width=True, key="ml_models")
    ok = [m for m in models if "error" not in m]
    if not ok:
        return
    k = st.selectbox("Monitor", range(len(ok)), key="ml_pick",
                     format_func=lambda i: f"{ok[i]['name']} v{ok[i]['version']}")
    try:
        _monitor(ok[k])
    except Exception as exc:  # noqa: BLE001 - metadata from another version: say so, no traceback
        st.error(f"Cannot monitor {ok[k].get('name')} v{ok[k].get('version')}: {type(exc).__name__}: {exc}")


def _monitor(meta: dict[str, Any]) -> None:
    """Live hit rate and drift on the worker's recent candles of the model's symbol."""
    from backtest.data import SymbolData
    from backtest.ml.monitor import monitor_model
    from core.types import INTERVAL_MS

    sym, iv = (meta.get("data") or {}).get("symbol"), (meta.get("data") or {}).get("interval", "1m")
    try:
        recs = reader().candles(sym, 2000) if sym else []
    except Exception as exc:  # noqa: BLE001 - Redis down
        st.error(f"State store unreachable: {exc}")
        return
    if len(recs) < 200:
        st.info(f"Monitoring needs the worker's recent {sym} candles: {len(recs)} in Redis so far (200 needed).")
        return
    step = recs[1].t - recs[0].t
    if step != INTERVAL_MS.get(iv):
        st.info(f"The worker's {sym} candles are {step // 60_000} min apart; {meta['name']} v{meta['version']} was "
                f"trained on {iv}: its live hit rate and drift are not comparable.")
        return
    try:
        data = SymbolData.from_candles([r.to_candle(sym, iv) for r in recs])
        rep = monitor_model(meta["name"], int(meta["version"]), data)
    except Exception as exc:  # noqa: BLE001 - a model file that became unreadable
        st.error(f"Cannot monitor {meta['name']} v{meta['version']}: {exc}")
        return
    c = st.columns(3)
    c[0].metric("Live hit rate", "—" if rep.hit_rate is None else f"{rep.hit_rate:.1%}",
                delta=f"{rep.signals} signals scored", delta_color="off")
    c[1].metric("Training precision", "—" if rep.train_precision is None else f"{rep.train_precision:.1%}")
    c[2].metric("Worst drift (PSI)", f"{max(rep.psi.values()):.2f}" if rep.psi else "—")
    for w in rep.warnings:
        st.warning(w)
    if rep.psi:
        st.dataframe(pd.DataFrame({"feature": list(rep.psi), "PSI": list(rep.psi.values())}), hide_index=True,
                     key="ml_psi")


def render() -> None:
    """The research section, below the backtests."""
    st.divider()
    st.subheader("Optimisation studies")
    _studies()
    st.subheader("ML models")
    _models()
