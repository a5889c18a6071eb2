"""Monitoring a deployed model: its live hit rate against the training metrics, and feature drift.

* Hit rate: on recent candles, the share of rows where the model reached the trading threshold
  (p >= threshold) whose label came true (forward return over the horizon beyond the fees),
  next to the training (out-of-sample) precision at that threshold. Rows whose horizon has not
  passed yet are not scored.
* Drift: the population stability index of each feature, recent rows against the training
  rows, on the training deciles (``feature_bins``, stored in the model's ``meta.json``):

      PSI = sum over bins of (a - e) * ln(a / e)      (e, a: training and recent shares; 1e-4 floor)

  Usual reading: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 a shift the model was not trained
  on. A feature past ``PSI_WARN`` gets a warning.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from backtest.data import SymbolData
from backtest.ml.dataset import labels
from strategy.ml_features import feature_matrix

PSI_WARN = 0.25
HIT_RATE_WARN = 0.10  # warn when the live hit rate is this far (absolute) below training precision
BINS = 10
_FLOOR = 1e-4


def feature_bins(x: np.ndarray, names: list[str]) -> dict[str, dict[str, list[float]]]:
    """Per feature: the inner decile edges of the training rows and the share of rows in each bin."""
    out = {}
    for j, name in enumerate(names):
        col = x[:, j]
        edges = np.unique(np.quantile(col, np.linspace(0, 1, BINS + 1)[1:-1]))
        out[name] = {"edges": edges.tolist(), "shares": _shares(col, edges).tolist()}
    return out


def _shares(col: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, col, side="right"), minlength=len(edges) + 1)
    return counts / max(1, len(col))


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e = np.maximum(np.asarray(expected, dtype=np.float64), _FLOOR)
    a = np.maximum(np.asarray(actual, dtype=np.float64), _FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass(slots=True)
class MonitorReport:
    model: str
    version: int
    rows: int  # recent rows with every feature defined
    scored: int  # ... of which the horizon has passed
    signals: int  # scored rows at p >= threshold
    hit_rate: float | None
    train_precision: float | None
    psi: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def monitor(meta: dict[str, Any], probabilities: np.ndarray, data: SymbolData) -> MonitorReport:
    """``probabilities``: the model's p per candle of ``data`` (``MlClassifierStrategy.signals_at``)."""
    x = feature_matrix(data.opens, data.highs, data.lows, data.closes, data.volumes, data.times)
    ok = ~np.isnan(x).any(axis=1)
    feats = list(meta.get("features") or [])
    from strategy.ml_features import FEATURES

    report = MonitorReport(str(meta.get("name")), int(meta.get("version") or 0), int(ok.sum()), 0, 0, None,
                           (meta.get("metrics") or {}).get("precision_at_threshold"))
    bins = meta.get("feature_bins") or {}
    for name in feats:
        b = bins.get(name)
        if b is None or not ok.any():
            continue
        value = psi(np.asarray(b["shares"]), _shares(x[ok, FEATURES.index(name)], np.asarray(b["edges"])))
        report.psi[name] = round(value, 4)
        if value > PSI_WARN:
            report.warnings.append(f"feature {name} drifted: PSI {value:.2f} > {PSI_WARN} (recent data unlike training)")
    y = labels(data.closes, int(meta["horizon"]), float(meta["fee_pct"]))
    scored = ok & ~np.isnan(y) & ~np.isnan(probabilities)
    at = scored & (probabilities >= float(meta["threshold"]))
    report.scored, report.signals = int(scored.sum()), int(at.sum())
    if at.any():
        report.hit_rate = float(y[at].mean())
        tp = report.train_precision
        if tp is not None and report.hit_rate < tp - HIT_RATE_WARN:
            report.warnings.append(f"live hit rate {report.hit_rate:.1%} is below the training precision {tp:.1%} "
                                   f"by more than {HIT_RATE_WARN:.0%} ({report.signals} signals)")
    return report


def monitor_model(name: str, version: int | None, data: SymbolData) -> MonitorReport:
    """Read model ``name`` (ModelUnavailable naming the file if it cannot be used) and monitor it on
    ``data``: its probabilities come from the very strategy that trades it."""
    from backtest.ml.artifact import read_model
    from strategy.ml_classifier import MlClassifierParams, MlClassifierStrategy, ModelUnavailable

    pred = read_model(name, version)
    strat = MlClassifierStrategy(MlClassifierParams(model=name, version=pred.version,
                                                    threshold=float(pred.meta.get("threshold", 0.6))), read_model)
    if strat.unavailable:
        raise ModelUnavailable(strat.unavailable)
    _, _, p = strat.signals_at(data.opens, data.highs, data.lows, data.closes, data.volumes, data.times)
    return monitor(pred.meta, p, data)
