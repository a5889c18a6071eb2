"""Where the simulator's prices come from.

``PriceSource`` is the protocol the server drives: ``history()`` once (1m bars before the start,
so klines have a past), then ``next_bars()`` once per step of ``step_ms`` market time. A ``Bar``
is one stretch of trading for one symbol (open/high/low/close/volume); the matching engine fills
resting orders that the bar's range trades through.

Two sources live here:
* ``RandomWalkSource``: seeded geometric random walk with realistic BTC/ETH/BNB/SOL levels,
  1-second bars (intrabar high/low from sub-steps).
* ``CandleMarketSource``: adapter for any object with ``step(open_time) -> list[Candle]`` (e.g.
  the project's ``market.synthetic.SyntheticMarket``); one bar per candle. Nothing is imported
  from ``market`` here, so any duck-typed market fits.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol, Sequence

MINUTE_MS = 60_000

DEFAULT_LEVELS: dict[str, float] = {
    "BTCUSDT": 67_000.0,
    "ETHUSDT": 3_400.0,
    "BNBUSDT": 600.0,
    "SOLUSDT": 160.0,
}
# annualised volatility and mean base volume per minute, roughly like the real markets
DEFAULT_VOL: dict[str, float] = {"BTCUSDT": 0.55, "ETHUSDT": 0.70, "BNBUSDT": 0.60, "SOLUSDT": 0.95}
DEFAULT_VOLUME_PER_MIN: dict[str, float] = {
    "BTCUSDT": 20.0, "ETHUSDT": 300.0, "BNBUSDT": 250.0, "SOLUSDT": 3_000.0,
}
YEAR_MS = 365 * 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class Bar:
    """Trading in one symbol from ``open_time`` to ``close_time`` (inclusive, ms, market time)."""

    symbol: str
    open_time: int
    close_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


class PriceSource(Protocol):
    step_ms: int

    def symbols(self) -> list[str]: ...

    def start_ms(self) -> int:
        """Market time at which ``next_bars`` begins."""
        ...

    def history(self) -> list[Bar]:
        """Bars before ``start_ms`` (any resolution that divides 1m or is 1m), oldest first."""
        ...

    def next_bars(self) -> list[Bar]:
        """The next ``step_ms`` of trading, one bar per symbol."""
        ...


def _q(value: float, tick: Decimal) -> Decimal:
    return (Decimal(repr(value)) / tick).quantize(Decimal(1), rounding=ROUND_HALF_UP) * tick


class RandomWalkSource:
    """Seeded geometric random walk. Deterministic for a given (seed, start_ms, symbols)."""

    def __init__(
        self,
        seed: int = 1,
        start_ms: int = 0,
        symbols: Sequence[str] = tuple(DEFAULT_LEVELS),
        levels: dict[str, float] | None = None,
        step_ms: int = 1000,
        history_minutes: int = 1500,
        tick: dict[str, Decimal] | None = None,
        substeps: int = 4,
    ) -> None:
        self.step_ms = step_ms
        self._rng = random.Random(seed)
        self._symbols = list(symbols)
        lv = {**DEFAULT_LEVELS, **(levels or {})}
        self._log = {s: math.log(lv.get(s, 100.0)) for s in self._symbols}
        self._tick = {s: (tick or {}).get(s, Decimal("0.01")) for s in self._symbols}
        self._history_minutes = history_minutes
        self._substeps = max(1, substeps)
        # history starts here; live bars start at start_ms (minute aligned)
        self._start = start_ms - start_ms % MINUTE_MS
        self._hist_start = self._start - history_minutes * MINUTE_MS
        self._t = self._start
        self._hist: list[Bar] | None = None

    def symbols(self) -> list[str]:
        return list(self._symbols)

    def start_ms(self) -> int:
        return self._start

    def _sigma(self, symbol: str, dt_ms: int) -> float:
        return DEFAULT_VOL.get(symbol, 0.8) * math.sqrt(dt_ms / YEAR_MS)

    def _bar(self, symbol: str, open_time: int, dt_ms: int) -> Bar:
        tick = self._tick[symbol]
        sigma = self._sigma(symbol, dt_ms / self._substeps)
        start = self._log[symbol]
        path = [start]
        x = start
        for _ in range(self._substeps):
            x += self._rng.gauss(0.0, sigma) - 0.5 * sigma * sigma
            path.append(x)
        self._log[symbol] = x
        prices = [_q(math.exp(v), tick) for v in path]
        per_ms = DEFAULT_VOLUME_PER_MIN.get(symbol, 1000.0) / MINUTE_MS
        volume = Decimal(repr(round(self._rng.expovariate(1.0) * per_ms * dt_ms, 5)))
        return Bar(symbol, open_time, open_time + dt_ms - 1, prices[0], max(prices), min(prices), prices[-1], volume)

    def history(self) -> list[Bar]:
        if self._hist is None:
            out: list[Bar] = []
            for i in range(self._history_minutes):
                t = self._hist_start + i * MINUTE_MS
                for s in self._symbols:
                    out.append(self._bar(s, t, MINUTE_MS))
            self._hist = out
        return list(self._hist)

    def next_bars(self) -> list[Bar]:
        if self._hist is None:
            self.history()
        t = self._t
        self._t += self.step_ms
        return [self._bar(s, t, self.step_ms) for s in self._symbols]


class CandleMarketSource:
    """Adapter: any ``market`` with ``step(open_time) -> list[Candle]`` becomes a PriceSource.

    Candles are duck-typed (``symbol, open_time, open, high, low, close, volume`` and optionally
    ``interval``). ``warmup`` candles per symbol are produced before ``start_ms`` as history.
    """

    def __init__(
        self,
        market: Any,
        start_ms: int,
        interval_ms: int = MINUTE_MS,
        warmup: int = 1500,
        tick: dict[str, Decimal] | None = None,
    ) -> None:
        if not callable(getattr(market, "step", None)):
            raise TypeError("market must have a step(open_time) -> list[Candle] method")
        self._market = market
        self.step_ms = interval_ms
        self._start = start_ms - start_ms % interval_ms
        self._t = self._start - warmup * interval_ms
        self._warmup = warmup
        self._tick = tick or {}
        self._hist: list[Bar] | None = None
        self._symbols: list[str] = []
        self._pending: list[Bar] | None = None

    def _convert(self, candles: list[Any]) -> list[Bar]:
        out = []
        for c in candles:
            tick = self._tick.get(c.symbol, Decimal("0.01"))
            o, h, lo, cl = (_q(float(v), tick) for v in (c.open, c.high, c.low, c.close))
            out.append(
                Bar(
                    c.symbol, int(c.open_time), int(c.open_time) + self.step_ms - 1,
                    o, max(o, h, lo, cl), min(o, h, lo, cl), cl,
                    Decimal(repr(float(c.volume))),
                )
            )
            if c.symbol not in self._symbols:
                self._symbols.append(c.symbol)
        return out

    def _step(self) -> list[Bar]:
        bars = self._convert(list(self._market.step(self._t)))
        self._t += self.step_ms
        return bars

    def history(self) -> list[Bar]:
        if self._hist is None:
            out: list[Bar] = []
            for _ in range(self._warmup):
                out.extend(self._step())
            self._hist = out
        return list(self._hist)

    def symbols(self) -> list[str]:
        if self._hist is None:
            self.history()
        if not self._symbols:  # no warmup: peek at one step
            self._pending = self._step()
        return list(self._symbols)

    def start_ms(self) -> int:
        return self._start

    def next_bars(self) -> list[Bar]:
        if self._hist is None:
            self.history()
        pending = self._pending
        if pending is not None:
            self._pending = None
            return pending
        return self._step()
