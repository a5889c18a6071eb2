"""Strategies see only closed candles; a strategy that peeks ahead is caught."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from backtest.build import build_backtest_bot
from backtest.data import SymbolData
from backtest.engine import detect_lookahead, run_bots, signals_by_evaluate
from backtest.fills import FillModel
from backtest_support import app, random_data
from core.types import Candle, Side, Signal
from strategy.registry import build_strategy


class Recorder:
    """Records what evaluate() is handed and tries to read one candle past the end."""

    name = "recorder"
    warmup = 1
    lookback = 10

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []
        self.peeks_failed = 0

    def evaluate(self, candles: Sequence[Candle]) -> Signal:
        self.seen.append((candles[-1].open_time, len(candles)))
        try:
            candles[len(candles)]  # the future is not in the sequence
        except IndexError:
            self.peeks_failed += 1
        return Signal.none()


def test_engine_hands_only_the_closed_prefix():
    data = random_data(300)
    rec = Recorder()
    cfg = app([{"name": "r", "strategy": "sma_crossover"}])
    bot = build_backtest_bot(cfg.bots[0], cfg, FillModel(), "1m", strategy=rec)  # type: ignore[arg-type]
    run_bots([(bot, {})], {"BTCUSDT": data}, FillModel(), path="bar")
    assert [t for t, _ in rec.seen] == data.times.tolist()  # each call: the candle that just closed is last
    assert rec.peeks_failed == len(data)


class Peeker:
    """A leaky strategy: it holds the full data and reads the NEXT candle's close."""

    name = "peeker"
    warmup = 2

    def __init__(self, full: list[Candle]) -> None:
        self.by_time = {c.open_time: i for i, c in enumerate(full)}
        self.full = full

    def evaluate(self, candles: Sequence[Candle]) -> Signal:
        i = self.by_time[candles[-1].open_time]
        if i + 1 < len(self.full) and self.full[i + 1].close > candles[-1].close:
            return Signal(Side.BUY, 1.0, "knows the future")
        return Signal.none()


def test_detector_catches_a_peeking_strategy():
    data = random_data(400, seed=5)
    full = data.candles()

    def peeking(d: SymbolData) -> np.ndarray:
        # the leak: the strategy was built with the full data, whatever it is run on
        return signals_by_evaluate(_Truncating(Peeker(full), len(d)), d.candles())

    assert detect_lookahead(peeking, data, range(50, 400, 10))


class _Truncating:
    """Runs a leaky strategy as if the world ended at n candles (what a backtest on data
    truncated at t means for a strategy that reads a global)."""

    def __init__(self, inner: Peeker, n: int) -> None:
        inner.full = inner.full[:n]
        self.inner, self.warmup, self.name = inner, inner.warmup, inner.name

    def evaluate(self, candles: Sequence[Candle]) -> Signal:
        return self.inner.evaluate(candles)


def test_detector_passes_the_built_in_strategies():
    data = random_data(600, seed=9)
    for name, params in (("sma_crossover", {"fast": 3, "slow": 8}), ("momentum", {"window": 5, "threshold_pct": 0.2}),
                         ("rsi_reversion", {"period": 5})):
        strat = build_strategy(name, params)

        def by_evaluate(d: SymbolData) -> np.ndarray:
            return signals_by_evaluate(strat, d.candles(), 60)

        assert detect_lookahead(by_evaluate, data, [120, 333, 599]) == []
        if hasattr(strat, "signals") and getattr(strat, "vectorised", False):
            def vec(d: SymbolData) -> np.ndarray:
                return strat.signals(d.opens, d.highs, d.lows, d.closes, d.volumes)  # type: ignore[attr-defined]

            assert detect_lookahead(vec, data, [120, 333, 599]) == []


def test_detector_catches_a_vectorised_peek():
    data = random_data(500, seed=4)

    def centred(d: SymbolData) -> np.ndarray:  # a classic bug: a centred window reads the future
        c = d.closes
        m = np.convolve(c, np.ones(5) / 5, mode="same")
        return np.where(c > m, 1, 0).astype(np.int8)

    assert detect_lookahead(centred, data, [100, 250, 400])
