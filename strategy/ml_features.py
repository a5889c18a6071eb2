"""Candle features of the ML signal pipeline: one definition for training (``backtest.ml``) and trading
(``strategy.ml_classifier``). Pure numpy, no I/O.

Row i of ``feature_matrix`` uses candles 0..i only (causal: checked with
``backtest.engine.detect_lookahead`` in the tests) and only the last ``LOOKBACK`` of them, through
fixed windows (no recursive indicator), so the row is bit-identical whether it is computed over the
whole series or over the last ``LOOKBACK`` candles (what ``evaluate()`` sees). NaN until the
windows fill.

Features (``FEATURES``): returns over 1, 5, 15 and 60 candles; volatility (standard deviation of
1-candle log returns) over 30 and 120 candles; RSI over 14 changes (simple averages of gains and
losses, Cutler's form); ATR over 14 candles as a fraction of the close; volume z-score over 60
candles; time of day of the candle's open (sine and cosine of the UTC minute of the day).
"""
from __future__ import annotations

import numpy as np

from strategy.indicators import FloatArray

__all__ = ["FEATURES", "LOOKBACK", "feature_matrix"]

RETURN_WINDOWS = (1, 5, 15, 60)
VOL_WINDOWS = (30, 120)
RSI_WINDOW = 14
ATR_WINDOW = 14
VOLUME_WINDOW = 60
FEATURES = [*(f"ret_{k}" for k in RETURN_WINDOWS), *(f"vol_{k}" for k in VOL_WINDOWS), f"rsi_{RSI_WINDOW}",
            f"atr_{ATR_WINDOW}_pct", f"volume_z_{VOLUME_WINDOW}", "tod_sin", "tod_cos"]
LOOKBACK = max(*RETURN_WINDOWS, *VOL_WINDOWS, RSI_WINDOW, ATR_WINDOW, VOLUME_WINDOW) + 1
DAY_MS = 86_400_000


def _windows(x: FloatArray, w: int) -> np.ndarray:
    return np.lib.stride_tricks.sliding_window_view(x, w)


def _trailing(values: FloatArray, w: int, offset: int, n: int, reduce: str) -> FloatArray:
    """Per row i (of n): ``reduce`` over values[i - offset - w + 1 .. i - offset]; NaN until defined."""
    out = np.full(n, np.nan)
    if len(values) >= w:
        win = _windows(values, w)
        red = win.mean(axis=1) if reduce == "mean" else win.std(axis=1)
        out[w - 1 + offset:] = red[: n - (w - 1 + offset)]
    return out


def feature_matrix(opens: FloatArray, highs: FloatArray, lows: FloatArray, closes: FloatArray,
                   volumes: FloatArray, times: np.ndarray) -> FloatArray:
    """(n, len(FEATURES)) float64; row i from candles <= i (see the module docstring)."""
    c = np.asarray(closes, dtype=np.float64)
    h, lo = np.asarray(highs, dtype=np.float64), np.asarray(lows, dtype=np.float64)
    v = np.asarray(volumes, dtype=np.float64)
    n = len(c)
    cols: list[FloatArray] = []
    for k in RETURN_WINDOWS:
        r = np.full(n, np.nan)
        if n > k:
            r[k:] = c[k:] / c[:-k] - 1.0
        cols.append(r)
    # change i (i >= 1) is candle i against candle i - 1: stored at index i - 1 of these arrays
    with np.errstate(divide="ignore", invalid="ignore"):
        logret = np.log(c[1:] / c[:-1]) if n > 1 else np.empty(0)
    for w in VOL_WINDOWS:
        cols.append(_trailing(logret, w, 1, n, "std"))
    d = c[1:] - c[:-1] if n > 1 else np.empty(0)
    gain = _trailing(np.maximum(d, 0.0), RSI_WINDOW, 1, n, "mean")
    loss = _trailing(np.maximum(-d, 0.0), RSI_WINDOW, 1, n, "mean")
    with np.errstate(divide="ignore", invalid="ignore"):
        total = gain + loss
        rsi = np.where(total > 0, 100.0 * gain / total, 50.0)
    rsi[np.isnan(total)] = np.nan
    cols.append(rsi)
    if n > 1:
        prev = c[:-1]
        tr = np.maximum(h[1:] - lo[1:], np.maximum(np.abs(h[1:] - prev), np.abs(lo[1:] - prev)))
    else:
        tr = np.empty(0)
    cols.append(_trailing(tr, ATR_WINDOW, 1, n, "mean") / c)
    mean_v = _trailing(v, VOLUME_WINDOW, 0, n, "mean")
    std_v = _trailing(v, VOLUME_WINDOW, 0, n, "std")
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(std_v > 0, (v - mean_v) / std_v, 0.0)
    z[np.isnan(std_v)] = np.nan
    cols.append(z)
    minute = (np.asarray(times, dtype=np.int64) % DAY_MS) / 60_000.0
    cols.append(np.sin(2 * np.pi * minute / 1440.0))
    cols.append(np.cos(2 * np.pi * minute / 1440.0))
    return np.column_stack(cols) if n else np.empty((0, len(FEATURES)))
