"""A supervised dataset from candles, and purged walk-forward splits of it.

* Features: ``strategy.ml_features.feature_matrix`` (row i from candles <= i).
* Label of row i: 1 when the close ``horizon`` candles later is above close i by more than the
  round-trip fees (``2 * fee_pct``), else 0. Rows whose features are undefined (warm-up) or whose
  label would need candles past the end are dropped.
* ``purged_splits``: K walk-forward folds over the rows in time order; fold j tests on block j+1
  and trains on the rows before it, *purged* of every row whose label window reaches into the test
  block (``horizon`` rows) and *embargoed* a further ``embargo`` rows, so no training label was
  formed from test-period prices (Lopez de Prado's purging and embargo, forward-only).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backtest.data import SymbolData
from strategy.ml_features import FEATURES, feature_matrix


@dataclass(slots=True)
class Dataset:
    x: np.ndarray  # (rows, features)
    y: np.ndarray  # int8 labels
    index: np.ndarray  # candle index of each row in the source data
    features: list[str]
    horizon: int
    threshold_return: float  # the label's bar: forward return must beat this (fraction)


def labels(closes: np.ndarray, horizon: int, fee_pct: float) -> np.ndarray:
    """float array: 1.0 / 0.0 per candle, NaN for the last ``horizon`` candles (no future yet)."""
    out = np.full(len(closes), np.nan)
    if len(closes) > horizon:
        fwd = closes[horizon:] / closes[:-horizon] - 1.0
        out[:-horizon] = (fwd > 2.0 * fee_pct / 100.0).astype(np.float64)
    return out


def build_dataset(data: SymbolData, horizon: int, fee_pct: float) -> Dataset:
    if horizon < 1:
        raise ValueError(f"--horizon {horizon}: must be >= 1 candle")
    x = feature_matrix(data.opens, data.highs, data.lows, data.closes, data.volumes, data.times)
    y = labels(data.closes, horizon, fee_pct)
    ok = ~np.isnan(x).any(axis=1) & ~np.isnan(y)
    idx = np.flatnonzero(ok)
    return Dataset(x[ok], y[ok].astype(np.int8), idx, list(FEATURES), horizon, 2.0 * fee_pct / 100.0)


@dataclass(slots=True)
class Split:
    fold: int
    train: np.ndarray  # row indices
    test: np.ndarray


def purged_splits(index: np.ndarray, folds: int, horizon: int, embargo: int, min_train: int = 200,
                  min_test: int = 50) -> list[Split]:
    """K forward folds over rows whose candle indices are ``index`` (increasing); see the module
    docstring. A training row r is kept when its label window ends before the test block's first
    candle less the embargo: ``index[r] + horizon + embargo < index[test start]``. ValueError when
    the rows are too few for the folds."""
    rows = len(index)
    if folds < 1:
        raise ValueError(f"--folds {folds}: must be >= 1")
    if embargo < 0:
        raise ValueError(f"--embargo {embargo}: must be >= 0")
    block = rows // (folds + 1)
    gap = horizon + embargo
    if block < min_test or block - gap < min_train:
        raise ValueError(f"{rows:,} labelled rows make {folds + 1} blocks of {block:,}; each needs at least "
                         f"{max(min_test, min_train + gap):,} rows (training {min_train} + purge {horizon} + embargo "
                         f"{embargo}): use fewer --folds or more data")
    out = []
    for j in range(1, folds + 1):
        start = j * block
        end = rows if j == folds else (j + 1) * block
        first = int(index[start])
        train = np.flatnonzero(index[:start] + gap < first)
        out.append(Split(j, train, np.arange(start, end)))
    return out
