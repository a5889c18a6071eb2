"""SyntheticMarket: determinism, continuity, and realistic statistical properties."""
from __future__ import annotations

import numpy as np
import pytest

from core.types import Candle
from market.synthetic import DEFAULT_SYMBOLS, SyntheticMarket
from market.validate import validate_series

M = 60_000
T0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC


@pytest.fixture(scope="module")
def long_history() -> dict[str, list[Candle]]:
    # ~14 days of 1m bars, shared by the statistical tests.
    return SyntheticMarket(seed=11).history(20_000, T0 + 19_999 * M)


def _log_returns(series: list[Candle]) -> np.ndarray:
    return np.diff(np.log([c.close for c in series]))


def test_same_seed_same_candles_and_other_seed_differs() -> None:
    a, b, c = SyntheticMarket(seed=42), SyntheticMarket(seed=42), SyntheticMarket(seed=43)
    steps_a = [a.step(T0 + i * M) for i in range(200)]
    steps_b = [b.step(T0 + i * M) for i in range(200)]
    steps_c = [c.step(T0 + i * M) for i in range(200)]
    assert steps_a == steps_b
    assert steps_a != steps_c


def test_history_equals_repeated_steps() -> None:
    a, b = SyntheticMarket(seed=5), SyntheticMarket(seed=5)
    hist = a.history(300, T0 + 299 * M)
    steps = [b.step(T0 + i * M) for i in range(300)]
    for j, sym in enumerate(a.symbols):
        assert hist[sym] == [row[j] for row in steps]
    # And both continue identically afterwards.
    assert a.step(T0 + 300 * M) == b.step(T0 + 300 * M)


def test_default_symbols_levels_and_candle_shape() -> None:
    m = SyntheticMarket(seed=1)
    assert m.symbols == ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT")
    batch = m.step(T0)
    assert [c.symbol for c in batch] == list(m.symbols)
    for c in batch:
        assert c.open_time == T0 and c.interval == "1m"
        assert c.open == DEFAULT_SYMBOLS[c.symbol]
        assert abs(c.close / c.open - 1) < 0.05


def test_ohlc_consistent_positive_on_tick_and_continuous(long_history: dict[str, list[Candle]]) -> None:
    for sym, series in long_history.items():
        report = validate_series(series)
        assert report.accepted == len(series) == 20_000, (sym, report.rejected)
        assert not report.gaps
        for prev, cur in zip(series, series[1:]):
            assert cur.open == prev.close
        for c in series[::97]:
            assert c.low > 0 and c.volume > 0
            for px in (c.open, c.high, c.low, c.close):
                assert round(px, 2) == px  # 0.01 tick


def test_volatility_clustering_and_levels(long_history: dict[str, list[Candle]]) -> None:
    for sym, series in long_history.items():
        r = _log_returns(series)
        a = np.abs(r)
        autocorr = np.corrcoef(a[:-1], a[1:])[0, 1]
        assert autocorr > 0.05, (sym, autocorr)
        assert 0.0004 < r.std() < 0.003, (sym, r.std())
    btc = _log_returns(long_history["BTCUSDT"])
    assert 0.0005 < np.median(np.abs(btc)) / 0.6745 < 0.0015  # robust per-minute vol ~0.05-0.15%


def test_cross_symbol_correlation(long_history: dict[str, list[Candle]]) -> None:
    btc = _log_returns(long_history["BTCUSDT"])
    for sym in ("ETHUSDT", "BNBUSDT", "SOLUSDT"):
        corr = np.corrcoef(btc, _log_returns(long_history[sym]))[0, 1]
        assert 0.45 < corr < 0.9, (sym, corr)


def test_volume_rises_with_abs_return(long_history: dict[str, list[Candle]]) -> None:
    for sym, series in long_history.items():
        a = np.abs(_log_returns(series))
        vol = np.array([c.volume for c in series[1:]])
        assert np.corrcoef(a, vol)[0, 1] > 0.3, sym


@pytest.mark.parametrize("seed", range(5))
def test_price_level_stays_within_an_order_of_magnitude_over_a_day(seed: int) -> None:
    hist = SyntheticMarket(seed=seed).history(1440, T0 + 1439 * M)
    for sym, series in hist.items():
        start = DEFAULT_SYMBOLS[sym]
        assert start / 10 < min(c.low for c in series)
        assert max(c.high for c in series) < start * 10


def test_resume_continues_from_given_close() -> None:
    m = SyntheticMarket(seed=3)
    m.step(T0)
    m.resume("BTCUSDT", 70_123.45)
    batch = m.step(T0 + M)
    assert batch[0].symbol == "BTCUSDT" and batch[0].open == 70_123.45
    assert m.last_close("BTCUSDT") == batch[0].close
    with pytest.raises(KeyError):
        m.resume("DOGEUSDT", 0.1)
    with pytest.raises(ValueError):
        m.resume("BTCUSDT", -1.0)


def test_history_anchored_to_end_close_then_continues() -> None:
    m = SyntheticMarket(seed=9)
    hist = m.history(100, T0 + 99 * M, end_close={"ETHUSDT": 2_500.0})
    eth = hist["ETHUSDT"]
    assert eth[-1].close == 2_500.0 and eth[-1].open_time == T0 + 99 * M
    assert all(cur.open == prev.close for prev, cur in zip(eth, eth[1:]))
    assert validate_series(eth).accepted == 100
    nxt = {c.symbol: c for c in m.step(T0 + 100 * M)}
    assert nxt["ETHUSDT"].open == 2_500.0
    assert nxt["BTCUSDT"].open == hist["BTCUSDT"][-1].close


def test_custom_symbols_and_interval() -> None:
    m = SyntheticMarket({"XRPUSDT": 0.6, "BTCUSDT": 60_000.0}, seed=2, interval="5m")
    hist = m.history(50, T0 + 49 * 300_000)
    assert set(hist) == {"XRPUSDT", "BTCUSDT"}
    xrp = hist["XRPUSDT"]
    assert all(c.interval == "5m" for c in xrp)
    assert validate_series(xrp).accepted == 50
    assert 0.06 < xrp[-1].close < 6


def test_bad_arguments() -> None:
    m = SyntheticMarket(seed=0)
    with pytest.raises(ValueError):
        m.step(T0 + 1)  # not aligned
    with pytest.raises(ValueError):
        SyntheticMarket({"BTCUSDT": 0.0}, seed=0)
    with pytest.raises(ValueError):
        SyntheticMarket(seed=0, interval="7m")
    assert m.history(0, T0) == {s: [] for s in m.symbols}
