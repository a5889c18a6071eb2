"""Technical indicators: SMA, EMA, Wilder RSI, Wilder ATR and rate of change.

Two flavours of every indicator:

* array functions (``sma``, ``ema``, ``rsi``, ``atr``, ``roc``) take a whole series and return a
  float64 array of the same length, ``NaN`` where the indicator is not yet defined;
* "last value" helpers (``sma_last``, ``ema_last``, ``rsi_last``, ``atr_last``, ``roc_last``)
  return only the value at the last element (``None`` when there is not enough data).
  They are vectorised (no Python loop) so a strategy can call them on a short tail of the
  history on every closed candle; a short window (``PAIRWISE_BLOCK`` values or fewer) is summed in
  Python instead, operation for operation as numpy sums it (``exact_mean``), because numpy's fixed
  cost per call (several µs) dominates on a handful of values.

Recursive indicators (EMA, Wilder RSI/ATR) are seeded with the simple mean of their first
``n`` inputs, the TA-Lib convention. Their value therefore depends on where the input array
starts; the seed's weight decays as ``(1 - alpha)**k`` after ``k`` further inputs, so a tail of a
few multiples of ``n`` gives practically the same value as the full history.

Only numpy and the standard library are used.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "atr",
    "atr_last",
    "ema",
    "ema_alpha",
    "exact_mean",
    "exact_pstd",
    "ema_last",
    "roc",
    "roc_last",
    "rsi",
    "rsi_last",
    "sma",
    "sma_last",
    "true_range",
]

FloatArray = NDArray[np.float64]


def _as_array(values: ArrayLike) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D series, got shape {arr.shape}")
    return arr


# numpy sums a float64 array of up to this many values in one unrolled block (pairwise_sum in
# numpy/_core/src/umath/loops_utils.h.src); longer ones are split in halves recursively.
PAIRWISE_BLOCK = 128


def _pairwise_sum(a: list[float]) -> float:
    """numpy's ``add.reduce`` of a contiguous float64 array of at most PAIRWISE_BLOCK values, in the
    same order of operations, hence bit-identical: fewer than 8 values are added in turn from 0.0;
    otherwise 8 running sums over strides of 8, combined as ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)),
    then the remainder in turn (tests/unit/test_exact_mean.py holds it to numpy)."""
    n = len(a)
    if n < 8:
        res = 0.0
        for x in a:
            res += x
        return res
    r0, r1, r2, r3, r4, r5, r6, r7 = a[:8]
    end = n - n % 8
    for i in range(8, end, 8):
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for i in range(end, n):
        res += a[i]
    return res


def _floats(values: ArrayLike) -> list[float] | None:
    """``values`` as a list of Python floats when the Python sums apply (a 1-D float64 array, or a list or
    tuple of floats, of at most PAIRWISE_BLOCK values); None: use numpy."""
    if isinstance(values, np.ndarray):
        if values.dtype != np.float64 or values.ndim != 1 or len(values) > PAIRWISE_BLOCK:
            return None
        return values.tolist()  # type: ignore[no-any-return]
    if isinstance(values, (list, tuple)) and len(values) <= PAIRWISE_BLOCK \
            and all(type(v) is float for v in values):
        return list(values)
    return None


def exact_mean(values: ArrayLike) -> float:
    """``float(np.mean(values))``, bit for bit: summed in Python for a short float64 window (see
    PAIRWISE_BLOCK), by numpy otherwise. NaN for an empty series, as numpy (without its warning)."""
    a = _floats(values)
    if a is None:
        return float(_as_array(values).mean())
    return _pairwise_sum(a) / len(a) if a else float("nan")


def exact_pstd(values: ArrayLike) -> float:
    """``float(np.std(values))`` (population, ddof=0), bit for bit: numpy's own steps (mean, deviations
    squared, their mean, square root) in Python for a short float64 window, by numpy otherwise."""
    a = _floats(values)
    if a is None or not a:
        return float(np.std(_as_array(values)))
    n = len(a)
    m = _pairwise_sum(a) / n
    return math.sqrt(_pairwise_sum([(x - m) * (x - m) for x in a]) / n)


def _check_window(n: int, name: str = "n") -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{name} must be an integer >= 1 (got {n!r})")


def _smoothed(x: FloatArray, n: int, alpha: float) -> FloatArray:
    """y[n-1] = mean(x[0:n]);  y[i] = (1 - alpha) * y[i-1] + alpha * x[i]  for i >= n.

    NaN before index n-1. The recursion runs on Python floats (the same IEEE operations as on numpy
    scalars, ~0.1 µs a step; an ``itertools.accumulate`` with a lambda was three times that), the
    seed is ``exact_mean``: both bit-identical to the numpy forms they replace.
    """
    out = np.full(x.shape, np.nan)
    if len(x) < n:
        return out
    k = 1.0 - alpha
    y = exact_mean(x[:n])
    ys = [y]
    append = ys.append
    for v in x[n:].tolist():
        y = k * y + alpha * v
        append(y)
    out[n - 1:] = ys
    return out


@lru_cache(maxsize=256)
def _decay_weights(k: float, m: int) -> FloatArray:
    """k**(m-1), ..., k**1, k**0 (read-only: shared by every call with the same k and m)."""
    w = np.power(k, np.arange(m - 1, -1, -1, dtype=np.float64))
    w.flags.writeable = False
    return w


def _smoothed_last(x: FloatArray, n: int, alpha: float) -> float | None:
    """Last value of ``_smoothed`` in closed form (vectorised):

        y_last = (1-alpha)**m * seed + alpha * sum_{j=0}^{m-1} (1-alpha)**(m-1-j) * x[n+j]

    with seed = mean(x[0:n]) and m = len(x) - n. None when len(x) < n.
    """
    if len(x) < n:
        return None
    seed = exact_mean(x[:n])
    rest = x[n:]
    m = len(rest)
    if m == 0:
        return seed
    k = 1.0 - alpha
    # weights underflow harmlessly to 0 for very old inputs
    return float(k**m * seed + alpha * float(np.dot(_decay_weights(k, m), rest)))


# --------------------------------------------------------------------------- SMA


def sma(values: ArrayLike, n: int) -> FloatArray:
    """Simple moving average.

        SMA_t = (x_{t-n+1} + ... + x_t) / n        defined for t >= n-1 (NaN before)
    """
    _check_window(n)
    x = _as_array(values)
    out = np.full(x.shape, np.nan)
    if len(x) >= n:
        # sliding-window mean, not a cumsum difference: no precision loss on long series
        out[n - 1:] = np.lib.stride_tricks.sliding_window_view(x, n).mean(axis=1)
    return out


def sma_last(values: ArrayLike, n: int) -> float | None:
    """SMA at the last element: mean of the last n values. None when fewer than n values."""
    _check_window(n)
    if isinstance(values, (np.ndarray, list, tuple)) and n <= PAIRWISE_BLOCK:
        if len(values) < n:
            return None
        return exact_mean(values[-n:])
    x = _as_array(values)
    if len(x) < n:
        return None
    return float(x[-n:].mean())


# --------------------------------------------------------------------------- EMA


def ema_alpha(n: int) -> float:
    """EMA smoothing factor for span n: alpha = 2 / (n + 1)."""
    _check_window(n)
    return 2.0 / (n + 1)


def ema(values: ArrayLike, n: int) -> FloatArray:
    """Exponential moving average with span n (alpha = 2/(n+1)), SMA-seeded.

        EMA_{n-1} = SMA of x_0..x_{n-1}
        EMA_t     = alpha * x_t + (1 - alpha) * EMA_{t-1}        for t >= n
    NaN before index n-1.
    """
    _check_window(n)
    return _smoothed(_as_array(values), n, ema_alpha(n))


def ema_last(values: ArrayLike, n: int) -> float | None:
    """EMA (as ``ema``) at the last element, computed in closed form; None when len < n.

    The value depends on where ``values`` starts (seed); pass the same-length tail each time
    for reproducible results.
    """
    _check_window(n)
    return _smoothed_last(_as_array(values), n, ema_alpha(n))


# --------------------------------------------------------------------------- RSI


def _rsi_from_averages(avg_gain: FloatArray | float, avg_loss: FloatArray | float) -> FloatArray:
    # RSI = 100 - 100/(1+RS) = 100 * G / (G + L): no division by zero when L == 0 (RSI 100);
    # G == L == 0 (flat prices) is defined as 50, the neutral value.
    g = np.asarray(avg_gain, dtype=np.float64)
    total = g + np.asarray(avg_loss, dtype=np.float64)
    safe = np.where(total > 0, total, 1.0)
    out = np.where(total > 0, 100.0 * g / safe, 50.0)
    return np.where(np.isnan(total), np.nan, out)


def rsi(closes: ArrayLike, period: int = 14) -> FloatArray:
    """Relative Strength Index with Wilder's smoothing.

        d_t  = c_t - c_{t-1};   gain_t = max(d_t, 0);   loss_t = max(-d_t, 0)
        G_p  = mean(gain_1..gain_p),   L_p = mean(loss_1..loss_p)           (seed)
        G_t  = (G_{t-1} * (p-1) + gain_t) / p,   L_t likewise               (t > p)
        RSI_t = 100 - 100 / (1 + G_t/L_t) = 100 * G_t / (G_t + L_t)
    RSI is 100 when L_t = 0 < G_t and 50 when G_t = L_t = 0 (flat). Defined from index
    ``period`` (it needs period+1 closes); NaN before.
    """
    _check_window(period, "period")
    c = _as_array(closes)
    out = np.full(c.shape, np.nan)
    if len(c) < period + 1:
        return out
    d = np.diff(c)
    alpha = 1.0 / period
    g = _smoothed(np.maximum(d, 0.0), period, alpha)
    loss = _smoothed(np.maximum(-d, 0.0), period, alpha)
    out[1:] = _rsi_from_averages(g, loss)  # diff index j belongs to close index j+1
    return out


def rsi_last(closes: ArrayLike, period: int = 14) -> float | None:
    """RSI (as ``rsi``) at the last close, in closed form; None with fewer than period+1 closes."""
    _check_window(period, "period")
    c = _as_array(closes)
    if len(c) < period + 1:
        return None
    d = np.diff(c)
    alpha = 1.0 / period
    g = _smoothed_last(np.maximum(d, 0.0), period, alpha)
    loss = _smoothed_last(np.maximum(-d, 0.0), period, alpha)
    assert g is not None and loss is not None  # len(d) >= period
    return float(_rsi_from_averages(g, loss))


# --------------------------------------------------------------------------- ATR


def true_range(high: ArrayLike, low: ArrayLike, close: ArrayLike) -> FloatArray:
    """True range; TR_0 = h_0 - l_0 (no previous close), then

        TR_t = max(h_t - l_t, |h_t - c_{t-1}|, |l_t - c_{t-1}|)
    """
    h, lo, c = _as_array(high), _as_array(low), _as_array(close)
    if not (len(h) == len(lo) == len(c)):
        raise ValueError("high, low and close must have the same length")
    tr = h - lo
    if len(c) > 1:
        prev = c[:-1]
        tr[1:] = np.maximum.reduce([h[1:] - lo[1:], np.abs(h[1:] - prev), np.abs(lo[1:] - prev)])
    return tr


def atr(high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int = 14) -> FloatArray:
    """Average True Range with Wilder's smoothing (TA-Lib convention).

        ATR_p = mean(TR_1..TR_p)                        (TR_0 is skipped: it has no previous close)
        ATR_t = (ATR_{t-1} * (p-1) + TR_t) / p          for t > p
    Defined from index ``period`` (needs period+1 candles); NaN before.
    """
    _check_window(period, "period")
    tr = true_range(high, low, close)
    out = np.full(tr.shape, np.nan)
    if len(tr) >= period + 1:
        out[1:] = _smoothed(tr[1:], period, 1.0 / period)
    return out


def atr_last(high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int = 14) -> float | None:
    """ATR (as ``atr``) at the last candle, in closed form; None with fewer than period+1 candles."""
    _check_window(period, "period")
    tr = true_range(high, low, close)
    if len(tr) < period + 1:
        return None
    return _smoothed_last(tr[1:], period, 1.0 / period)


# --------------------------------------------------------------------------- ROC


def roc(values: ArrayLike, n: int) -> FloatArray:
    """Rate of change over n periods, in percent.

        ROC_t = 100 * (x_t / x_{t-n} - 1)          defined for t >= n (NaN before)
    NaN where x_{t-n} <= 0 (a price can't be; avoids division by zero).
    """
    _check_window(n)
    x = _as_array(values)
    out = np.full(x.shape, np.nan)
    if len(x) > n:
        base = x[:-n]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[n:] = np.where(base > 0, 100.0 * (x[n:] / np.where(base > 0, base, 1.0) - 1.0), np.nan)
    return out


def roc_last(values: ArrayLike, n: int) -> float | None:
    """ROC (as ``roc``) at the last element; None with fewer than n+1 values or base <= 0."""
    _check_window(n)
    x = _as_array(values)
    if len(x) < n + 1 or not x[-1 - n] > 0:
        return None
    return float(100.0 * (x[-1] / x[-1 - n] - 1.0))
