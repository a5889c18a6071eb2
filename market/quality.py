"""Candle quality you can see: the outlier rule and the gap counts of a candle series, as a backtest report
shows them per symbol (``backtest.data.data_info``) beside the rows the loader rejected.

**Outlier** (flagged and counted, still traded on: a real crash looks the same as a bad tick):
a candle whose largest excursion from the previous close,

    m_t = max(|ln(high_t / close_{t-1})|, |ln(low_t / close_{t-1})|),

exceeds ``outlier_k`` times the recent volatility

    sigma_t = max(1.4826 * median(|ln(close_i / close_{i-1})|, the ``outlier_window`` returns before t), 1e-4).

1.4826 * median(|r|) is the robust (MAD) estimate of a normal sigma, so one wild bar does not inflate
it; the 1 bp floor keeps a flat stretch from flagging the first ordinary move. Nothing is flagged
until ``outlier_window`` returns are known.

**Gap**: accepted candles that are not contiguous (``market.validate.Gap``); the report counts them, the
bars missing, and those longer than ``max_gap_bars`` (across which indicators should not run: restarting
the strategies' warm-up there is not done yet).
"""
from __future__ import annotations

import numpy as np
from pydantic import ConfigDict, Field

from core.types import INTERVAL_MS
from core.validation import StrictNumbers

MAD_TO_SIGMA = 1.4826
SIGMA_FLOOR = 1e-4


class QualityConfig(StrictNumbers):
    """``market.quality``: the outlier and gap rules (module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    outlier_window: int = Field(50, ge=10, le=5000, description="returns the recent volatility is measured on")
    outlier_k: float = Field(10.0, gt=1, le=1000, description="flag a candle moving more than k sigma")
    max_gap_bars: int | None = Field(5, ge=0, description="gaps of more than this many missing bars are counted "
                                                          "as long (null: none is)")


def outlier_mask(highs: np.ndarray, lows: np.ndarray, closes: np.ndarray, window: int, k: float) -> np.ndarray:
    """The outlier rule over whole series: True where candle t is flagged (module docstring)."""
    n = len(closes)
    out = np.zeros(n, dtype=bool)
    if n <= window + 1:
        return out
    c = np.asarray(closes, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        absr = np.abs(np.log(c[1:] / c[:-1]))  # absr[j] is the return of candle j + 1
        prev = c[:-1]
        move = np.maximum(np.abs(np.log(np.asarray(highs)[1:] / prev)), np.abs(np.log(np.asarray(lows)[1:] / prev)))
    # sigma for candle t uses the returns of candles t-window .. t-1: absr[t-1-window : t-1]
    med = np.median(np.lib.stride_tricks.sliding_window_view(absr, window), axis=1)  # med[s]: absr[s:s+window]
    sigma = np.maximum(MAD_TO_SIGMA * med[:-1], SIGMA_FLOOR)  # candle t = s + window + 1
    with np.errstate(invalid="ignore"):
        out[window + 1:] = move[window:] > k * sigma
    return out


def series_quality(times: np.ndarray, highs: np.ndarray, lows: np.ndarray, closes: np.ndarray, interval: str,
                   config: QualityConfig, rejected: dict[str, int] | None = None) -> dict[str, object]:
    """What a backtest report says about one symbol's candles: rows the loader rejected (by reason),
    gaps and missing bars, long gaps, outliers (count and the first few times)."""
    step = INTERVAL_MS[interval]
    missing = (np.diff(np.asarray(times, dtype=np.int64)) // step - 1) if len(times) > 1 else np.zeros(0, np.int64)
    gaps = missing[missing > 0]
    mask = outlier_mask(highs, lows, closes, config.outlier_window, config.outlier_k)
    limit = config.max_gap_bars
    return {
        "rejected": dict(rejected or {}),
        "rejected_total": int(sum((rejected or {}).values())),
        "gaps": int(len(gaps)),
        "missing_bars": int(gaps.sum()) if len(gaps) else 0,
        "largest_gap_bars": int(gaps.max()) if len(gaps) else 0,
        "long_gaps": int((gaps > limit).sum()) if limit is not None and len(gaps) else 0,
        "outliers": int(mask.sum()),
        "outlier_times": [int(t) for t in np.asarray(times)[mask][:20].tolist()],
        "rules": {"outlier_k": config.outlier_k, "outlier_window": config.outlier_window,
                  "max_gap_bars": limit},
    }
