"""The short-window means and deviations summed in Python (strategy.indicators.exact_mean, exact_pstd,
sma_last) are numpy's, bit for bit: evaluate() uses them and stays bit-equal to the vectorised fast
path and to the incremental steppers, which are proved against it elsewhere. So are the recursive
smoothings (EMA, Wilder RSI/ATR) against their former numpy forms."""
from __future__ import annotations

import itertools
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from strategy.indicators import PAIRWISE_BLOCK, _smoothed, _smoothed_last, exact_mean, exact_pstd, sma_last

finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)
prices = st.floats(min_value=1e-8, max_value=1e7, allow_nan=False, allow_infinity=False)


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))


@settings(max_examples=600, deadline=None)
@given(st.lists(st.one_of(finite, prices), min_size=1, max_size=PAIRWISE_BLOCK))
def test_the_python_sums_are_numpys(values: list[float]) -> None:
    arr = np.array(values)
    assert same(exact_mean(values), float(np.mean(arr)))
    assert same(exact_mean(arr), float(np.mean(arr)))
    assert same(exact_pstd(values), float(np.std(arr)))
    assert same(exact_pstd(arr), float(np.std(arr)))


@settings(max_examples=300, deadline=None)
@given(st.lists(prices, min_size=1, max_size=300), st.integers(min_value=1, max_value=200))
def test_sma_last_is_numpys_mean_of_the_window(values: list[float], n: int) -> None:
    arr = np.array(values)
    want = float(arr[-n:].mean()) if len(values) >= n else None
    for x in (values, tuple(values), arr, arr[::-1][::-1]):
        got = sma_last(x, n)
        assert (got is None and want is None) or (got is not None and want is not None and same(got, want))


def test_every_length_of_a_block_on_a_price_walk() -> None:
    rng = np.random.default_rng(7)
    walk = 30_000.0 * np.exp(np.cumsum(rng.normal(0, 0.002, 5_000)))
    for n in range(1, PAIRWISE_BLOCK + 1):
        for end in range(n, len(walk), 97):
            w = walk[end - n:end]
            assert exact_mean(w) == float(w.mean()) and exact_pstd(w) == float(np.std(w)), (n, end)


def test_what_numpy_sums_itself() -> None:
    """Longer windows, other dtypes and ragged input go to numpy unchanged."""
    long = np.linspace(1.0, 2.0, PAIRWISE_BLOCK + 1) ** 1.5
    assert exact_mean(long) == float(long.mean()) and exact_pstd(long) == float(np.std(long))
    f32 = np.array([0.1, 0.2, 0.3], dtype=np.float32)
    assert exact_mean(f32) == float(np.mean(np.asarray(f32, dtype=np.float64)))
    assert exact_mean([1, 2, 4]) == float(np.mean([1.0, 2.0, 4.0]))
    assert math.isnan(exact_mean([]))


def _smoothed_before(x: np.ndarray, n: int, alpha: float) -> np.ndarray:
    """``_smoothed`` as it was: numpy's mean as the seed, the recursion through itertools.accumulate."""
    out = np.full(x.shape, np.nan)
    if len(x) < n:
        return out
    k = 1.0 - alpha
    values = itertools.accumulate(x[n:].tolist(), lambda prev, v: k * prev + alpha * v, initial=float(x[:n].mean()))
    out[n - 1:] = np.fromiter(values, dtype=np.float64, count=len(x) - n + 1)
    return out


def _smoothed_last_before(x: np.ndarray, n: int, alpha: float) -> float | None:
    if len(x) < n:
        return None
    seed, rest = float(x[:n].mean()), x[n:]
    m, k = len(rest), 1.0 - alpha
    if m == 0:
        return seed
    weights = np.power(k, np.arange(m - 1, -1, -1, dtype=np.float64))
    return float(k**m * seed + alpha * float(np.dot(weights, rest)))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(prices, st.just(0.0)), min_size=1, max_size=300), st.integers(min_value=1, max_value=160),
       st.sampled_from([2 / 6, 2 / 21, 1 / 14, 1 / 150]))
def test_the_recursive_smoothing_is_its_former_numpy_form(values: list[float], n: int, alpha: float) -> None:
    x = np.array(values)
    got, want = _smoothed(x, n, alpha), _smoothed_before(x, n, alpha)
    assert got.tobytes() == want.tobytes()
    for _ in range(2):  # the second call reads the cached weights
        a, b = _smoothed_last(x, n, alpha), _smoothed_last_before(x, n, alpha)
        assert (a is None and b is None) or (a is not None and b is not None and same(a, b))
