"""Informative timeframes as the engine runs them: a strategy that declares ``informative = {"1h": 30}``
(``strategy.base``) is wrapped so that the bots keep calling ``evaluate(candles)`` and the strategy gets
``evaluate(candles, informative)`` with only *closed* higher-timeframe candles, resampled from the base
candles by ``market.aggregate.Resampler``.

One wrapper serves the worker (ghost, paper, live), the per-candle backtest and the DCA bot's start
condition (``engine.assembly`` wraps every strategy it builds), so all of them hand the strategy the
same higher-timeframe candles. Per symbol it feeds the resampler each base candle once, in order, and
keeps the last ``n`` closed candles of each interval. A bucket that began before the first base candle
it saw is dropped (it would be partial). The wrapper's ``warmup``/``lookback`` cover ``n + 1`` whole
buckets, so the bot's bounded history always holds them: after a restart the wrapper rebuilds exactly
what it had from the history the bot warms up with.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Sequence

from core.types import INTERVAL_MS, Candle, Signal
from market.aggregate import Resampler
from strategy.base import Strategy, history_needed, informative_of

__all__ = ["WithInformative", "with_informative"]


@dataclass(slots=True)
class _SymbolState:
    resamplers: dict[str, Resampler]
    closed: dict[str, deque[Candle]]
    first: int = -1  # open time of the first base candle fed
    last: int = -1  # open time of the last base candle fed
    base_ms: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class WithInformative:
    """``strategy`` with its informative timeframes resampled from the base candles (module docstring)."""

    vectorised = False  # the per-candle form only: the fast backtest path runs it on the bar path

    def __init__(self, strategy: Strategy, base_interval: str) -> None:
        self.inner = strategy
        self.name = strategy.name
        self.needs = informative_of(strategy)
        base_ms = INTERVAL_MS[base_interval]
        self.base_ms = base_ms
        for iv in self.needs:
            if iv not in INTERVAL_MS:
                raise ValueError(f"strategy {strategy.name}: informative: unknown interval {iv!r}")
            if INTERVAL_MS[iv] <= base_ms or INTERVAL_MS[iv] % base_ms:
                raise ValueError(f"strategy {strategy.name}: informative interval {iv} must be a whole multiple "
                                 f"of the bots' interval {base_interval}")
        # n closed candles of an interval need n + 1 of its buckets of base candles (the first may be partial)
        span = max((n + 1) * INTERVAL_MS[iv] // base_ms for iv, n in self.needs.items())
        self.warmup = max(strategy.warmup, span)
        self.lookback = max(history_needed(strategy), span)
        self._state: dict[str, _SymbolState] = {}

    def __repr__(self) -> str:
        return f"WithInformative({self.inner!r}, {self.needs})"

    def closed(self, candles: Sequence[Candle]) -> dict[str, tuple[Candle, ...]]:
        """Feed the base candles not yet seen (they are the history's newest) and return, per informative
        interval, the closed higher-timeframe candles so far (at most the number declared), oldest first."""
        last = candles[-1]
        st = self._state.get(last.key)
        if st is None or last.open_time < st.last:  # new symbol, or a history that went back: start over
            st = self._state[last.key] = _SymbolState(
                {iv: Resampler(iv, last.symbol, last.market) for iv in self.needs},
                {iv: deque(maxlen=n) for iv, n in self.needs.items()})
        k = len(candles)
        while k > 0 and candles[k - 1].open_time > st.last:
            k -= 1
        for i in range(k, len(candles)):
            c = candles[i]
            if st.first < 0:
                st.first = c.open_time
            for iv, res in st.resamplers.items():
                for h in res.add(c.open_time, self.base_ms, c.open, c.high, c.low, c.close, c.volume):
                    if h.open_time >= st.first:
                        st.closed[iv].append(h)
            st.last = c.open_time
        return {iv: tuple(d) for iv, d in st.closed.items()}

    def evaluate(self, candles: Sequence[Candle]) -> Signal:
        inf = self.closed(candles)
        short = [f"{iv} {len(v)}/{self.needs[iv]}" for iv, v in inf.items() if len(v) < self.needs[iv]]
        if short:
            return Signal.none(f"warming up informative candles: {', '.join(short)}")
        return self.inner.evaluate(candles, inf)  # type: ignore[call-arg]


def with_informative(strategy: Strategy, base_interval: str) -> Strategy:
    """``strategy`` as the engine runs it: wrapped when it declares informative timeframes, else itself."""
    if isinstance(strategy, WithInformative) or not informative_of(strategy):
        return strategy
    return WithInformative(strategy, base_interval)
