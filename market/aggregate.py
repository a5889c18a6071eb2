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
