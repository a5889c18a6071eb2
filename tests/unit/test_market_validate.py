"""CandleValidator: every rejection reason, gaps, per-symbol state, scalar == vectorised."""
from __future__ import annotations

import math

import numpy as np
import pytest

from core.types import Candle
from market import validate as V
from market.validate import CandleValidator, Gap, validate_series

M = 60_000


def mk(t: int, o: float = 100.0, h: float = 101.0, lo: float = 99.0, c: float = 100.5, v: float = 1.0,
       sym: str = "BTCUSDT", interval: str = "1m") -> Candle:
    return Candle(sym, t, o, h, lo, c, v, interval)


@pytest.mark.parametrize(
    ("candle", "reason"),
    [
        (mk(0, c=math.nan), V.NON_FINITE),
        (mk(0, h=math.inf), V.NON_FINITE),
        (mk(0, v=math.nan), V.NON_FINITE),
        (mk(0, o=-1.0, lo=-2.0), V.NON_POSITIVE),
        (mk(0, o=0.0, lo=0.0), V.NON_POSITIVE),
        (mk(0, v=-0.1), V.NEGATIVE_VOLUME),
        (mk(0, h=100.2), V.HIGH_INCONSISTENT),  # close 100.5 above high
        (mk(0, lo=100.2), V.LOW_INCONSISTENT),  # open 100 below low
        (mk(30_000), V.MISALIGNED),
        (mk(3_600_000 + M, interval="1h"), V.MISALIGNED),
        (mk(0, interval="7m"), V.UNKNOWN_INTERVAL),
        (Candle("BTCUSDT", 1.5, 1.0, 1.0, 1.0, 1.0, 1.0), V.BAD_OPEN_TIME),  # type: ignore[arg-type]
        (mk(-M), V.BAD_OPEN_TIME),
        (Candle("BTCUSDT", 0, "1", 1.0, 1.0, 1.0, 1.0), V.NON_FINITE),  # type: ignore[arg-type]
    ],
)
def test_each_content_rejection_reason(candle: Candle, reason: str) -> None:
    v = CandleValidator()
    rej = v.check(candle)
    assert rej is not None and rej.reason == reason
    assert v.rejected == {reason: 1}
    assert v.accepted == 0


def test_garbage_object_never_raises() -> None:
    v = CandleValidator()
    rej = v.check(None)  # type: ignore[arg-type]
    assert rej is not None and rej.reason == V.MALFORMED and rej.open_time is None
    assert v.rejected[V.MALFORMED] == 1


def test_duplicate_backwards_and_state_not_advanced_by_rejects() -> None:
    v = CandleValidator()
    assert v.check(mk(0)) is None
    assert v.check(mk(M)) is None
    assert v.check(mk(M)).reason == V.DUPLICATE  # type: ignore[union-attr]
    assert v.check(mk(0)).reason == V.BACKWARDS  # type: ignore[union-attr]
    # A bad candle at a new time must not move the state: the good one at that time is accepted.
    assert v.check(mk(2 * M, c=math.nan)).reason == V.NON_FINITE  # type: ignore[union-attr]
    assert v.check(mk(2 * M)) is None
    assert v.accepted == 3
    assert v.rejected == {V.DUPLICATE: 1, V.BACKWARDS: 1, V.NON_FINITE: 1}
    assert v.gaps == []


def test_gaps_are_accepted_and_recorded() -> None:
    v = CandleValidator()
    for t in (0, M, 4 * M, 5 * M, 7 * M):
        assert v.check(mk(t)) is None
    assert v.accepted == 5
    assert v.gaps == [Gap("BTCUSDT", M, 4 * M, 2), Gap("BTCUSDT", 5 * M, 7 * M, 1)]
    assert not v.rejected


def test_state_is_per_symbol_and_interval() -> None:
    v = CandleValidator()
    assert v.check(mk(M, sym="BTCUSDT")) is None
    assert v.check(mk(0, sym="ETHUSDT")) is None  # older than BTC's, but another symbol
    assert v.check(mk(0, interval="1h")) is None  # another interval of the same symbol
    assert v.check(mk(M, sym="ETHUSDT")) is None
    assert v.accepted == 4 and not v.rejected and not v.gaps


def test_seed_catches_duplicates_across_restart() -> None:
    v = CandleValidator()
    v.seed("BTCUSDT", "1m", 10 * M)
    assert v.check(mk(10 * M)).reason == V.DUPLICATE  # type: ignore[union-attr]
    assert v.check(mk(11 * M)) is None
    assert v.last_open_time("BTCUSDT", "1m") == 11 * M


def test_validate_series_report() -> None:
    series = [mk(0), mk(M), mk(M), mk(3 * M, c=math.nan), mk(4 * M), mk(2 * M), mk(5 * M, v=-1)]
    r = validate_series(series)
    assert [c.open_time for c in r.candles] == [0, M, 4 * M]
    assert r.total == 7 and r.accepted == 3 and r.rejected_total == 4
    assert r.rejected == {V.DUPLICATE: 1, V.NON_FINITE: 1, V.BACKWARDS: 1, V.NEGATIVE_VOLUME: 1}
    assert [(x.open_time, x.reason) for x in r.rejections] == [
        (M, V.DUPLICATE), (3 * M, V.NON_FINITE), (2 * M, V.BACKWARDS), (5 * M, V.NEGATIVE_VOLUME)
    ]
    assert r.gaps == [Gap("BTCUSDT", M, 4 * M, 2)] and r.missing_bars == 2


def test_vectorised_path_agrees_with_scalar_path() -> None:
    rng = np.random.default_rng(3)
    n = 3000
    t = np.cumsum(rng.choice([M, M, M, 2 * M, 0, -M, 30_000], size=n)) + 100 * M
    o = rng.uniform(90, 110, n)
    c = rng.uniform(90, 110, n)
    h = np.maximum(o, c) + rng.uniform(-1, 2, n)
    lo = np.minimum(o, c) - rng.uniform(-1, 2, n)
    v = rng.uniform(-0.2, 5, n)
    for arr in (o, h, lo, c, v):
        arr[rng.integers(0, n, 30)] = np.nan
    o[rng.integers(0, n, 20)] = -1.0
    time_ok = rng.random(n) > 0.01

    scalar = CandleValidator()
    expected = []
    for i in range(n):
        cand = Candle("X", int(t[i]) if time_ok[i] else 1.5, o[i], h[i], lo[i], c[i], v[i])  # type: ignore[arg-type]
        rej = scalar.check(cand)
        expected.append("" if rej is None else rej.reason)

    vec = CandleValidator()
    accepted, reasons, gaps = vec.check_arrays("X", "1m", t, o, h, lo, c, v, time_ok=time_ok)
    assert list(reasons) == expected
    assert accepted.tolist() == [r == "" for r in expected]
    assert vec.rejected == scalar.rejected
    assert vec.accepted == scalar.accepted
    assert vec.gaps == scalar.gaps == gaps
    assert vec.last_open_time("X", "1m") == scalar.last_open_time("X", "1m")

    # State carries over between calls: two halves give the same result as one call.
    halves = CandleValidator()
    k = n // 2
    a1, r1, _ = halves.check_arrays("X", "1m", t[:k], o[:k], h[:k], lo[:k], c[:k], v[:k], time_ok=time_ok[:k])
    a2, r2, _ = halves.check_arrays("X", "1m", t[k:], o[k:], h[k:], lo[k:], c[k:], v[k:], time_ok=time_ok[k:])
    assert list(r1) + list(r2) == expected
    assert halves.gaps == scalar.gaps and halves.rejected == scalar.rejected
