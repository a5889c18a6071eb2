"""Resampling candles to a longer interval (1m -> 5m, 15m, 1h, 4h, 1d, ...).

Buckets are aligned to the UTC epoch (floor(open_time / interval)), which is how Binance
aligns its own klines, so aggregated bars match the exchange's bars of that interval.
"""
from __future__ import annotations

from collections.abc import Iterable

from core.types import INTERVAL_MS, Candle


def aggregate(candles: Iterable[Candle], to_interval: str, include_partial: bool = False) -> list[Candle]:
    """Aggregate validated candles (time-ordered per symbol) into `to_interval` bars.

    open = first, close = last, high = max, low = min, volume = sum. A bucket with missing
    inner bars (an exchange gap) is still emitted: it is closed in time. Only the trailing
    bucket of each symbol is dropped when it has not reached its end yet, unless
    include_partial=True. Output is in global time order, ties by symbol.
    """
    if to_interval not in INTERVAL_MS:
        raise ValueError(f"unknown interval {to_interval!r}")
    to_ms = INTERVAL_MS[to_interval]
    by_symbol: dict[str, list[Candle]] = {}
    for c in candles:
        by_symbol.setdefault(c.symbol, []).append(c)

    out: list[Candle] = []
    for symbol, series in by_symbol.items():
        out.extend(_aggregate_one(symbol, series, to_interval, to_ms, include_partial))
    out.sort(key=lambda c: (c.open_time, c.symbol))  # stable: keeps per-symbol order
    return out


def _aggregate_one(symbol: str, series: list[Candle], to_interval: str, to_ms: int,
                   include_partial: bool) -> list[Candle]:
    out: list[Candle] = []
    bucket = -1
    o = h = lo = c = v = 0.0
    last_end = 0  # open_time + interval of the last candle in the current bucket
    for x in series:
        from_ms = INTERVAL_MS[x.interval]
        if to_ms % from_ms:
            raise ValueError(f"cannot aggregate {x.interval} into {to_interval}")
        b = x.open_time - x.open_time % to_ms
        if b != bucket:
            if bucket >= 0:
                out.append(Candle(symbol, bucket, o, h, lo, c, v, to_interval))
            bucket, o, h, lo, c, v = b, x.open, x.high, x.low, x.close, x.volume
        else:
            h = max(h, x.high)
            lo = min(lo, x.low)
            c = x.close
            v += x.volume
        last_end = x.open_time + from_ms
    if bucket >= 0 and (include_partial or last_end >= bucket + to_ms):
        out.append(Candle(symbol, bucket, o, h, lo, c, v, to_interval))
    return out


class Resampler:
    """The streaming form of ``aggregate`` for one symbol: base candles in, each higher-timeframe
    candle out once it is closed — never a bucket still forming.

    A bucket [b, b + T) is closed as of a base candle when that candle's close reaches b + T: the
    base candle that ends the bucket closes it, and after a gap the first candle of a later bucket
    closes the one before (its missing inner bars are simply absent, as in ``aggregate``). The same
    object, fed the same candles, runs in the worker, the per-candle backtest and the fast path's
    pre-pass, so all three hand a strategy the same closed candles.
    """

    __slots__ = ("to_interval", "to_ms", "symbol", "market", "_bucket", "_o", "_h", "_l", "_c", "_v")

    def __init__(self, to_interval: str, symbol: str = "", market: str = "spot") -> None:
        if to_interval not in INTERVAL_MS:
            raise ValueError(f"unknown interval {to_interval!r}")
        self.to_interval = to_interval
        self.to_ms = INTERVAL_MS[to_interval]
        self.symbol, self.market = symbol, market
        self._bucket = -1
        self._o = self._h = self._l = self._c = self._v = 0.0

    def reset(self) -> None:
        """Forget the bucket being built (after a gap that restarts a strategy's warm-up)."""
        self._bucket = -1

    def add(self, open_time: int, base_ms: int, o: float, h: float, lo: float, c: float,
            v: float) -> tuple[Candle, ...]:
        """Feed one closed base candle; returns the higher-timeframe candles it closes, oldest first:
        none, the bucket it completes, and/or (after a gap) the bucket before it that ended early."""
        b = open_time - open_time % self.to_ms
        out: tuple[Candle, ...] = ()
        if b != self._bucket:
            if self._bucket >= 0:  # a candle of a later bucket: the one being built ended in a gap
                out = (Candle(self.symbol, self._bucket, self._o, self._h, self._l, self._c, self._v,
                              self.to_interval, self.market),)
            self._bucket, self._o, self._h, self._l, self._c, self._v = b, o, h, lo, c, v
        else:
            self._h = max(self._h, h)
            self._l = min(self._l, lo)
            self._c = c
            self._v += v
        if open_time + base_ms >= b + self.to_ms:  # this base candle ends its bucket
            self._bucket = -1
            return (*out, Candle(self.symbol, b, self._o, self._h, self._l, self._c, self._v, self.to_interval,
                                 self.market))
        return out
