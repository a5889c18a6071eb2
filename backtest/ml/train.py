"""Train a classifier on candles: purged walk-forward metrics, a versioned artefact, and a backtest of its
signals through the normal backtester.

1. ``backtest.ml.dataset``: features, labels (forward return over ``horizon`` beyond round-trip
   fees), K purged and embargoed walk-forward splits.
2. One LightGBM classifier per split (trained on the past, scored on the next block): the
   out-of-sample predictions of all test blocks give the metrics (AUC, accuracy at 0.5,
   precision at the trading threshold, how many rows reach it, the labels' base rate).
3. The artefact is the last split's model: trained on everything before the last block (purged),
   so the last block is a true holdout. ``meta.json`` records features, data range and hash,
   training range, metrics and each feature's training distribution (deciles) for drift.
4. The holdout is backtested with a ``ml_classifier`` bot on this very artefact through
   ``backtest.engine.run_config`` (long/flat, 50 % of equity, the fill model given), and the
   report's headline is stored in ``meta.json`` too.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backtest.data import SymbolData, iso
from backtest.engine import run_config
from backtest.fills import FillModel
from backtest.ml import artifact
from backtest.ml.dataset import build_dataset, purged_splits
from backtest.ml.monitor import feature_bins
from backtest.report import build_report
from settings import AppConfig, BotConfig
from strategy.ml_features import LOOKBACK

LGBM_PARAMS: dict[str, Any] = {"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 15, "min_child_samples": 50,
                               "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8, "reg_lambda": 1.0,
                               "n_jobs": 1, "verbose": -1, "deterministic": True, "force_row_wise": True}


@dataclass(slots=True)
class TrainSpec:
    name: str
    horizon: int = 12
    threshold: float = 0.6
    folds: int = 4
    embargo: int | None = None  # None: the horizon
    fee_pct: float = 0.1
    seed: int = 7


def data_hash(d: SymbolData) -> str:
    h = hashlib.sha256()
    for col in (d.times, d.opens, d.highs, d.lows, d.closes, d.volumes):
        h.update(np.ascontiguousarray(col).tobytes())
    return h.hexdigest()


def _classifier(seed: int):  # type: ignore[no-untyped-def]
    import lightgbm as lgb

    return lgb.LGBMClassifier(**LGBM_PARAMS, random_state=seed)


def scores(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, roc_auc_score

    at = p >= threshold
    return {
        "rows": int(len(y)), "base_rate": float(y.mean()) if len(y) else None,
        "auc": float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else None,
        "accuracy": float(accuracy_score(y, p >= 0.5)) if len(y) else None,
        "precision_at_threshold": float(y[at].mean()) if at.any() else None,
        "signals_at_threshold": int(at.sum()),
    }


def signal_backtest(app: AppConfig, data: SymbolData, model: FillModel, name: str, version: int, threshold: float,
                    start: int) -> dict[str, Any]:
    """The artefact traded by an ``ml_classifier`` bot from candle ``start`` on (with ``LOOKBACK - 1``
    candles before it to warm up), through ``backtest.engine.run_config``; the report's headline."""
    bot = BotConfig.model_validate({
        "name": f"ml-{name}"[:40], "mode": "paper", "symbol": data.symbol, "strategy": "ml_classifier",
        "params": {"model": name, "version": version, "threshold": threshold}, "max_tranches": 1,
        "sizing": {"kind": "percent_equity", "value": 50},
        "risk": {"max_position_pct": 100, "min_notional": 0, "max_orders_per_minute": None,
                 "max_loss_per_trade_pct": None, "daily_loss_pct": None, "max_drawdown_pct": None}})
    sim = app.model_copy(update={"bots": [bot]})
    artifact.install_loader()  # the bot reads the artefact just written, as the worker would
    lo = max(0, start - (LOOKBACK - 1))
    window = data.between(int(data.times[lo]), None)
    res = run_config(sim, {data.symbol: window}, model, [bot.name], path="bar")[0]
    rep = build_report(res, include_trades=False)
    return {k: rep.get(k) for k in ("start", "end", "bars", "total_return_pct", "sharpe", "sortino", "trades",
                                     "win_rate_pct", "profit_factor", "expectancy", "fees_paid", "exposure_time_pct")} | {
        "max_drawdown_pct": (rep.get("max_drawdown") or {}).get("max_drawdown_pct"),
        "buy_and_hold_return_pct": (rep.get("buy_and_hold") or {}).get("total_return_pct"),
        "warmup_candles": int(start - lo),  # before the holdout: the strategy cannot signal on them
        "bot": {"sizing": "50 % of equity", "long_only": True, "fill_policy": model.policy}}


def train(spec: TrainSpec, data: SymbolData, app: AppConfig, model: FillModel) -> tuple[Path, dict[str, Any]]:
    """Train, score, save and backtest (see the module docstring); returns (version folder, meta)."""
    artifact.check_name(spec.name)
    if not 0.5 < spec.threshold < 1.0:
        raise ValueError(f"--threshold {spec.threshold}: must be in (0.5, 1)")
    embargo = spec.horizon if spec.embargo is None else spec.embargo
    t0 = time.perf_counter()
    ds = build_dataset(data, spec.horizon, spec.fee_pct)
    splits = purged_splits(ds.index, spec.folds, spec.horizon, embargo)
    if len(np.unique(ds.y)) < 2:
        raise ValueError(f"every label is {int(ds.y[0]) if len(ds.y) else '-'}: the data never (or always) moves "
                         f"more than the fees over {spec.horizon} candles; pick another --horizon")
    oos_p, oos_y, folds, clf = [], [], [], None
    for sp in splits:
        ytr = ds.y[sp.train]
        if len(np.unique(ytr)) < 2:
            raise ValueError(f"fold {sp.fold}: the training labels are all {int(ytr[0])}; use more data")
        clf = _classifier(spec.seed)
        clf.fit(ds.x[sp.train], ytr)
        p = clf.predict_proba(ds.x[sp.test])[:, 1]
        oos_p.append(p)
        oos_y.append(ds.y[sp.test])
        i0, i1 = int(ds.index[sp.test[0]]), int(ds.index[sp.test[-1]])
        folds.append({"fold": sp.fold, "train_rows": int(len(sp.train)), "test": [iso(int(data.times[i0])),
                      iso(int(data.times[i1]))], **scores(ds.y[sp.test], p, spec.threshold)})
    assert clf is not None
    metrics = scores(np.concatenate(oos_y), np.concatenate(oos_p), spec.threshold)
    last = splits[-1]
    hold0 = int(ds.index[last.test[0]])
    train_end = int(ds.index[last.train[-1]])
    import lightgbm

    meta: dict[str, Any] = {
        "created_at": iso(int(time.time() * 1000)), "kind": "lightgbm", "lightgbm": lightgbm.__version__,
        "features": ds.features, "horizon": spec.horizon, "fee_pct": spec.fee_pct,
        "label": f"close[t+{spec.horizon}] / close[t] - 1 > {ds.threshold_return:.6g} (round-trip fees)",
        "threshold": spec.threshold, "folds": spec.folds, "embargo": embargo, "seed": spec.seed,
        "params": LGBM_PARAMS,
        "data": {"symbol": data.symbol, "interval": data.interval, "start": iso(int(data.times[0])),
                 "end": iso(int(data.times[-1])), "bars": len(data), "sha256": data_hash(data)},
        "train_range": [iso(int(data.times[int(ds.index[0])])), iso(int(data.times[train_end]))],
        "holdout_range": [iso(int(data.times[hold0])), iso(int(data.times[-1]))],
        "metrics": {**metrics, "folds": folds},
        "feature_bins": feature_bins(ds.x[last.train], ds.features),
    }
    folder = artifact.save(spec.name, clf.booster_.model_to_string(), meta)
    meta.update(name=spec.name, version=int(folder.name[1:]))
    meta["backtest"] = signal_backtest(app, data, model, spec.name, meta["version"], spec.threshold, hold0)
    meta["seconds"] = round(time.perf_counter() - t0, 2)
    artifact.rewrite_meta(folder, meta)
    return folder, meta
