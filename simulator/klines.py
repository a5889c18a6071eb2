"""Candle history: bars from the price source merged into base candles, aggregated per request.

``KlineStore`` keeps one list of base candles (1m, or the source's step when that is longer)
per symbol, and answers ``/api/v3/klines`` with Binance's selection rules: ``startTime`` selects
klines opening at or after it, ``endTime`` those opening at or before it, ``limit`` caps the count
(from the start when ``startTime`` is given, otherwise the most recent ones). The still-open
candle is included, as on Binance.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

from simulator.filters import fmt8
from simulator.prices import Bar

MINUTE_MS = 60_000
INTERVALS_MS: dict[str, int] = {
    "1s": 1000, "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000,
    "12h": 43_200_000, "1d": 86_400_000, "3d": 259_200_000, "1w": 604_800_000,
}
WEEK_OFFSET_MS = 4 * 86_400_000  # epoch was a Thursday; Binance weeks open Monday 00:00 UTC
MAX_BASE_CANDLES = 200_000
AVG_TRADE_QUOTE = Decimal(500)  # synthetic trade count = quote volume / average trade size


@dataclass(slots=True)
class Kline:
    open_time: int
    close_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trades: int
    taker_buy_base: Decimal
    taker_buy_quote: Decimal

    def merge(self, other: "Kline") -> None:
        self.high = max(self.high, other.high)
        self.low = min(self.low, other.low)
        self.close = other.close
        self.close_time = max(self.close_time, other.close_time)
        self.volume += other.volume
        self.quote_volume += other.quote_volume
        self.trades += other.trades
        self.taker_buy_base += other.taker_buy_base
        self.taker_buy_quote += other.taker_buy_quote

    def copy(self) -> "Kline":
        return Kline(
            self.open_time, self.close_time, self.open, self.high, self.low, self.close, self.volume,
            self.quote_volume, self.trades, self.taker_buy_base, self.taker_buy_quote,
        )

    def to_json(self) -> list[object]:
        return [
            self.open_time, fmt8(self.open), fmt8(self.high), fmt8(self.low), fmt8(self.close),
            fmt8(self.volume), self.close_time, fmt8(self.quote_volume), self.trades,
            fmt8(self.taker_buy_base), fmt8(self.taker_buy_quote), "0",
        ]


def bucket(t: int, interval: str) -> tuple[int, int]:
    """(open_time, close_time) of the ``interval`` kline containing ``t``."""
    if interval == "1M":
        d = datetime.fromtimestamp(t / 1000, tz=timezone.utc)
        start = datetime(d.year, d.month, 1, tzinfo=timezone.utc)
        nxt = datetime(d.year + (d.month == 12), d.month % 12 + 1, 1, tzinfo=timezone.utc)
        return int(start.timestamp() * 1000), int(nxt.timestamp() * 1000) - 1
    ms = INTERVALS_MS[interval]
    offset = WEEK_OFFSET_MS if interval == "1w" else 0
    start = (t - offset) // ms * ms + offset
    return start, start + ms - 1


def valid_interval(interval: str) -> bool:
    return interval in INTERVALS_MS or interval == "1M"


class KlineStore:
    def __init__(self, base_ms: int = MINUTE_MS) -> None:
        self.base_ms = base_ms
        self._candles: dict[str, list[Kline]] = {}
        self._opens: dict[str, list[int]] = {}

    def add_bar(self, bar: Bar) -> None:
        start = bar.open_time - bar.open_time % self.base_ms
        mid = (bar.open + bar.close) / 2
        up = bar.close >= bar.open
        buy_share = Decimal("0.55") if up else Decimal("0.45")
        quote = bar.volume * mid
        trades = 1 + int(quote / AVG_TRADE_QUOTE) if bar.volume > 0 else 0
        k = Kline(
            start, start + self.base_ms - 1, bar.open, bar.high, bar.low, bar.close, bar.volume,
            quote, trades, bar.volume * buy_share, bar.volume * buy_share * mid,
        )
        lst = self._candles.setdefault(bar.symbol, [])
        opens = self._opens.setdefault(bar.symbol, [])
        if lst and lst[-1].open_time == start:
            lst[-1].merge(k)
            return
        if lst and start < lst[-1].open_time:
            return  # out-of-order bar: ignore (sources only move forward)
        lst.append(k)
        opens.append(start)
        if len(lst) > MAX_BASE_CANDLES:
            del lst[: len(lst) - MAX_BASE_CANDLES]
            del opens[: len(opens) - MAX_BASE_CANDLES]

    def supports(self, interval: str) -> bool:
        """Intervals we can serve: Binance's, no finer than the base candles."""
        if interval == "1M":
            return True
        ms = INTERVALS_MS.get(interval)
        return ms is not None and ms >= self.base_ms and ms % self.base_ms == 0

    def has(self, symbol: str) -> bool:
        return symbol in self._candles

    def last_close(self, symbol: str) -> Decimal | None:
        lst = self._candles.get(symbol)
        return lst[-1].close if lst else None

    def klines(
        self,
        symbol: str,
        interval: str,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = 500,
    ) -> list[Kline]:
        base = self._candles.get(symbol, [])
        opens = self._opens.get(symbol, [])
        if not base:
            return []
        if not self.supports(interval):
            return []
        ims = INTERVALS_MS.get(interval, 0)
        # restrict the base slice first
        lo = 0
        if start_time is not None:
            lo = bisect.bisect_left(opens, bucket(start_time, interval)[0])
        hi = len(base)
        if end_time is not None:
            hi = bisect.bisect_right(opens, end_time)
        if start_time is None:
            # only the most recent `limit` aggregated klines are needed: go back far enough
            if interval == "1M":
                span = 31 * 86_400_000
            else:
                span = ims
            need_from = (opens[hi - 1] if hi else 0) - span * (limit + 1)
            lo = max(lo, bisect.bisect_left(opens, need_from))
        out: list[Kline] = []
        for k in base[lo:hi]:
            b_open, b_close = bucket(k.open_time, interval)
            if out and out[-1].open_time == b_open:
                out[-1].merge(k)
                out[-1].close_time = b_close
            else:
                agg = k.copy()
                agg.open_time, agg.close_time = b_open, b_close
                out.append(agg)
        if start_time is not None:
            out = [k for k in out if k.open_time >= start_time]
        if end_time is not None:
            out = [k for k in out if k.open_time <= end_time]
        if start_time is not None:
            return out[:limit]
        return out[-limit:]

    def avg_price(self, symbol: str, minutes: int = 5) -> Decimal | None:
        """Volume-weighted average price over the last ``minutes`` base candles (Binance avgPrice)."""
        base = self._candles.get(symbol)
        if not base:
            return None
        n = max(1, minutes * MINUTE_MS // self.base_ms)
        window = base[-n:]
        vol = sum((k.volume for k in window), Decimal(0))
        if vol == 0:
            return window[-1].close
        return sum((k.quote_volume for k in window), Decimal(0)) / vol
