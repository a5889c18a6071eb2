"""Indicators against hand-computed values, and last-value helpers against the array versions."""
from __future__ import annotations

import math

import numpy as np
import pytest

from strategy.indicators import (
    atr,
    atr_last,
    ema,
    ema_last,
    roc,
    roc_last,
    rsi,
    rsi_last,
    sma,
    sma_last,
    true_range,
)

NAN = math.nan


def assert_series(actual: np.ndarray, expected: list[float]) -> None:
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        if math.isnan(e):
            assert math.isnan(a)
        else:
            assert a == pytest.approx(e, rel=1e-9, abs=1e-9)


def test_sma_hand_values() -> None:
    # (1+2+3)/3 = 2, (2+3+4)/3 = 3, (3+4+5)/3 = 4
    assert_series(sma([1, 2, 3, 4, 5], 3), [NAN, NAN, 2, 3, 4])
    assert sma_last([1, 2, 3, 4, 5], 3) == pytest.approx(4.0)
    assert sma_last([1, 2], 3) is None
    assert_series(sma([1, 2], 3), [NAN, NAN])


def test_ema_hand_values() -> None:
    # n = 3 -> alpha = 2/(3+1) = 0.5; seed = SMA(2, 4, 6) = 4 at index 2
    # idx3: 0.5*8 + 0.5*4 = 6;  idx4: 0.5*4 + 0.5*6 = 5
    assert_series(ema([2, 4, 6, 8, 4], 3), [NAN, NAN, 4, 6, 5])
    assert ema_last([2, 4, 6, 8, 4], 3) == pytest.approx(5.0)
    assert ema_last([2, 4, 6], 3) == pytest.approx(4.0)  # just the seed
    assert ema_last([2, 4], 3) is None
    # n = 1 -> alpha = 1: the EMA is the series itself
    assert_series(ema([3, 1, 2], 1), [3, 1, 2])


RSI_CLOSES = [10, 11, 12, 11, 10, 9, 8, 9, 10, 11, 10]


def test_rsi_wilder_hand_values() -> None:
    # period 3; every |delta| is 1 so G + L stays 1 and RSI = 100 * G.
    # deltas: +1 +1 -1 | -1 -1 -1 +1 +1 +1 -1
    # seed (idx3): G = (1+1+0)/3 = 2/3 -> 66.667
    # then G_t = (2*G_{t-1} + gain_t)/3:
    #   idx4 4/9=44.444  idx5 8/27=29.630  idx6 16/81=19.753  idx7 (32/81+1)/3=113/243=46.502
    #   idx8 469/729=64.335  idx9 1667/2187=76.223  idx10 3334/6561=50.815
    expected = [NAN, NAN, NAN, 200 / 3, 400 / 9, 800 / 27, 1600 / 81,
                11300 / 243, 46900 / 729, 166700 / 2187, 333400 / 6561]
    assert_series(rsi(RSI_CLOSES, 3), expected)
    assert rsi_last(RSI_CLOSES, 3) == pytest.approx(333400 / 6561)
    assert rsi_last(RSI_CLOSES[:3], 3) is None  # needs period + 1 closes


def test_rsi_edge_cases() -> None:
    assert rsi_last([5, 5, 5, 5, 5], 3) == 50.0  # flat: G = L = 0 -> neutral
    assert rsi_last([1, 2, 3, 4, 5], 3) == 100.0  # no losses
    assert rsi_last([5, 4, 3, 2, 1], 3) == 0.0  # no gains
    assert_series(rsi([5, 5, 5, 5], 3), [NAN, NAN, NAN, 50.0])


def test_atr_wilder_hand_values() -> None:
    high = [10, 12, 11, 13]
    low = [8, 9, 9, 10]
    close = [9, 11, 9.5, 12]
    # TR0 = 10-8 = 2 (no previous close)
    # TR1 = max(12-9, |12-9|, |9-9|)     = 3
    # TR2 = max(11-9, |11-11|, |9-11|)   = 2
    # TR3 = max(13-10, |13-9.5|, |10-9.5|) = 3.5
    assert_series(true_range(high, low, close), [2, 3, 2, 3.5])
    # period 2: ATR2 = mean(TR1, TR2) = 2.5;  ATR3 = (2.5*1 + 3.5)/2 = 3.0
    assert_series(atr(high, low, close, 2), [NAN, NAN, 2.5, 3.0])
    assert atr_last(high, low, close, 2) == pytest.approx(3.0)
    assert atr_last(high[:2], low[:2], close[:2], 2) is None


def test_roc_hand_values() -> None:
    # n=1: 110/100-1 = +10 %, 99/110-1 = -10 %, 121/99-1 = +22.22 %
    assert_series(roc([100, 110, 99, 121], 1), [NAN, 10.0, -10.0, 100 * (121 / 99 - 1)])
    # n=2: 99/100-1 = -1 %, 121/110-1 = +10 %
    assert_series(roc([100, 110, 99, 121], 2), [NAN, NAN, -1.0, 10.0])
    assert roc_last([100, 110, 99, 121], 2) == pytest.approx(10.0)
    assert roc_last([100, 110], 2) is None
    assert roc_last([0, 1, 2], 2) is None  # base 0: undefined, not a ZeroDivisionError


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_invalid_window_rejected(bad: object) -> None:
    with pytest.raises(ValueError):
        sma([1, 2, 3], bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        rsi_last([1, 2, 3], bad)  # type: ignore[arg-type]


def test_last_helpers_match_arrays() -> None:
    rng = np.random.default_rng(7)
    x = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 300)))
    high, low = x * 1.01, x * 0.99
    for k in (5, 16, 17, 60, 300):
        xs = x[:k]
        for n in (2, 5, 14):
            for last_fn, arr_fn in ((sma_last, sma), (ema_last, ema), (roc_last, roc)):
                got, want = last_fn(xs, n), arr_fn(xs, n)[-1]
                assert (got is None) == math.isnan(want)
                if got is not None:
                    assert got == pytest.approx(want, rel=1e-10)
            got, want = rsi_last(xs, n), rsi(xs, n)[-1]
            assert (got is None) == math.isnan(want)
            if got is not None:
                assert got == pytest.approx(want, rel=1e-9)
            got, want = atr_last(high[:k], low[:k], xs, n), atr(high[:k], low[:k], xs, n)[-1]
            assert (got is None) == math.isnan(want)
            if got is not None:
                assert got == pytest.approx(want, rel=1e-9)


def test_ema_on_a_tail_converges_to_full_history() -> None:
    # the seed weighs (1 - 2/(n+1))**(5n) ~ e^-10 after five spans: a tail is enough
    rng = np.random.default_rng(1)
    x = 100 + np.cumsum(rng.normal(0, 1, 2000))
    n = 30
    assert ema_last(x[-6 * n:], n) == pytest.approx(ema(x, n)[-1], rel=1e-4)
