"""The one candle-feed interface every mode uses, and its offline implementations.

`Feed` is what the engine consumes: warm-up history, then closed candles one time step at a
time. `SyntheticFeed` paces a `SyntheticMarket` in (sped-up) real time for ghost/paper demos;
`ReplayFeed` replays stored candles for backtests. Every emitted candle passes a
`CandleValidator` first. Nothing here touches Redis, HTTP or the UI.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from core.clock import Clock, WallClock
from core.types import INTERVAL_MS, Candle, candle_key, split_key
from market.replay import iter_merged
from market.synthetic import SyntheticMarket
from market.validate import CandleValidator

# If the consumer falls this many periods behind, resynchronise instead of bursting out
# the backlog (a paused debugger or a slow tick must not produce a flood of candles).
_MAX_BEHIND_PERIODS = 10


@runtime_checkable
class Feed(Protocol):
    symbols: tuple[str, ...]
    interval: str

    def warmup(self, n: int) -> dict[str, list[Candle]]:
        """Closed history (up to n candles per symbol) before the first live candle."""
        ...

    def next_batch(self, stop: threading.Event) -> list[Candle] | None:
        """Block until the next closed candle(s): one time step, all symbols.
        None when the feed is exhausted or `stop` is set."""
        ...

    def last_price(self, symbol: str) -> float | None: ...


class _Pacer:
    """Fixed-rate schedule on a monotonic clock; sleeps on the stop event so stop is prompt."""

    def __init__(self, period_s: float | None, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.period_s = period_s
        self._monotonic = monotonic
        self._due: float | None = None

    def wait(self, stop: threading.Event) -> bool:
        """Wait for the next slot; False if stop was set meanwhile."""
        if not self.period_s:
            return not stop.is_set()
        now = self._monotonic()
        if self._due is None or now - self._due > _MAX_BEHIND_PERIODS * self.period_s:
            self._due = now
        self._due += self.period_s  # a candle is emitted when its (scaled) bar has closed
        delay = self._due - now
        if delay > 0:
            stop.wait(delay)
        return not stop.is_set()


class SyntheticFeed:
    """Live-like feed from a SyntheticMarket: one bar per symbol every interval/speed seconds.

    Time line: with `resume` (last stored candle per symbol, after a worker restart) the
    first live bar opens one interval after the latest resume candle and prices continue
    from their closes; else at `start_open_time`; else at the current wall-clock bar, with
    warm-up history just before it. Bars are emitted faster than real time (speed=60: one
    1m bar per second), so their open_times run ahead of the wall clock; that is intended.
    """

    def __init__(
        self,
        market: SyntheticMarket,
        speed: float = 60.0,
        start_open_time: int | None = None,
        resume: Mapping[str, Candle] | None = None,
        clock: Clock | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.market = market
        self.symbols: tuple[str, ...] = market.symbols
        self.interval: str = market.interval
        self.speed = speed
        self.validator = CandleValidator()
        self._step = INTERVAL_MS[self.interval]
        self._last: dict[str, Candle] = {}
        self._resume: dict[str, Candle] = dict(resume or {})
        for sym, c in self._resume.items():
            if sym not in self.symbols or c.symbol != sym:
                raise ValueError(f"resume candle for {sym!r} does not match market symbols {self.symbols}")
            if c.interval != self.interval:
                raise ValueError(f"resume candle interval {c.interval} != feed interval {self.interval}")
            market.resume(sym, c.close)
            # The validator then rejects anything at or before the stored bar.
            self.validator.seed(sym, self.interval, c.open_time)
            self._last[sym] = c
        if self._resume:
            self._next_open = max(c.open_time for c in self._resume.values()) + self._step
        elif start_open_time is not None:
            self._next_open = start_open_time - start_open_time % self._step
        else:
            now = (clock or WallClock()).now_ms()
            self._next_open = now - now % self._step
        self._pacer = _Pacer(self._step / 1000.0 / speed, monotonic)
        self._started = False
        self._warmup: dict[str, list[Candle]] | None = None

    @property
    def next_open_time(self) -> int:
        """open_time of the next live bar."""
        return self._next_open

    def warmup(self, n: int) -> dict[str, list[Candle]]:
        """n synthetic bars per symbol ending right before the first live bar.

        After a resume these end exactly at the resumed closes; a worker that kept its own
        stored history should prefer that. Repeated calls return the same history.
        """
        if self._warmup is not None:
            return self._warmup
        if self._started:
            raise RuntimeError("warmup() must be called before the first next_batch()")
        end = self._next_open - self._step
        end_close = {s: c.close for s, c in self._resume.items()} or None
        hist = self.market.history(max(n, 0), end, end_close=end_close)
        for sym, series in hist.items():
            if series:
                self._last[sym] = series[-1]
                self.validator.seed(sym, self.interval, series[-1].open_time)
        self._warmup = hist
        return hist

    def next_batch(self, stop: threading.Event) -> list[Candle] | None:
        self._started = True
        if not self._pacer.wait(stop):
            return None
        batch = self.market.step(self._next_open)
        self._next_open += self._step
        accepted: list[Candle] = []
        for c in batch:
            if self.validator.check(c) is None:
                accepted.append(c)
                self._last[c.symbol] = c
        return accepted

    def last_price(self, symbol: str) -> float | None:
        c = self._last.get(symbol)
        if c is not None:
            return c.close
        return self.market.last_close(symbol) if symbol in self.symbols else None


class ReplayFeed:
    """Replays stored candles in global time order (ties by symbol), validated on the way.

    speed=None replays as fast as the consumer pulls (backtests); otherwise one time step
    every interval/speed wall seconds.
    """

    def __init__(
        self,
        candles: Mapping[str, Sequence[Candle]] | Sequence[Candle],
        speed: float | None = None,
        interval: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed is not None and not speed > 0:
            raise ValueError(f"speed must be > 0 or None, got {speed}")
        if isinstance(candles, Mapping):
            symbols = list(candles)
            series = [list(s) for s in candles.values()]
        else:
            by_symbol: dict[str, list[Candle]] = {}
            for c in candles:
                by_symbol.setdefault(c.symbol, []).append(c)
            symbols = list(by_symbol)
            series = list(by_symbol.values())
        # Per-symbol order is kept as given, so out-of-order data reaches the validator.
        self._candles: list[Candle] = list(iter_merged(series))
        intervals = {c.interval for c in self._candles}
        if len(intervals) > 1:
            raise ValueError(f"ReplayFeed needs one interval, got {sorted(intervals)}")
        self.interval: str = intervals.pop() if intervals else (interval or "1m")
        if interval is not None and interval != self.interval:
            raise ValueError(f"candles are {self.interval}, not {interval}")
        self.symbols: tuple[str, ...] = tuple(symbols)
        self.speed = speed
        self.validator = CandleValidator()
        self._pos = 0
        self._last: dict[str, Candle] = {}
        self._pacer = _Pacer(None if speed is None else INTERVAL_MS[self.interval] / 1000.0 / speed, monotonic)
        self._started = False
        self._warmup: dict[str, list[Candle]] | None = None

    @property
    def remaining(self) -> int:
        """Candles not yet consumed (before validation)."""
        return len(self._candles) - self._pos

    def warmup(self, n: int) -> dict[str, list[Candle]]:
        """The first stretch of the data, up to the time when every symbol has n bars;
        the last n valid bars per symbol are returned and replay continues after it."""
        if self._warmup is not None:
            return self._warmup
        if self._started:
            raise RuntimeError("warmup() must be called before the first next_batch()")
        out: dict[str, list[Candle]] = {s: [] for s in self.symbols}
        if n > 0 and self._candles:
            seen: dict[str, int] = {}
            nth: dict[str, int] = {}
            for c in self._candles:
                k = seen.get(c.symbol, 0) + 1
                seen[c.symbol] = k
                if k == n:
                    nth[c.symbol] = c.open_time
            last_by_symbol: dict[str, int] = {}
            for c in self._candles:
                last_by_symbol[c.symbol] = c.open_time
            # Symbols with fewer than n bars contribute all of theirs.
            cut = max(nth.get(s, last_by_symbol[s]) for s in last_by_symbol)
            while self._pos < len(self._candles) and self._candles[self._pos].open_time <= cut:
                c = self._candles[self._pos]
                self._pos += 1
                if self.validator.check(c) is None:
                    out.setdefault(c.symbol, []).append(c)
                    self._last[c.symbol] = c
            out = {s: v[-n:] for s, v in out.items()}
        self._warmup = out
        return out

    def next_batch(self, stop: threading.Event) -> list[Candle] | None:
        self._started = True
        while self._pos < len(self._candles):
            if not self._pacer.wait(stop):
                return None
            t = self._candles[self._pos].open_time
            accepted: list[Candle] = []
            while self._pos < len(self._candles) and self._candles[self._pos].open_time == t:
                c = self._candles[self._pos]
                self._pos += 1
                if self.validator.check(c) is None:
                    accepted.append(c)
                    self._last[c.symbol] = c
            if accepted:
                return accepted
        return None

    def last_price(self, symbol: str) -> float | None:
        c = self._last.get(symbol)
        return c.close if c is not None else None


class MergedFeed:
    """Several feeds as one (the venue's spot klines and its USD-M klines for futures bots): warm-up and
    batches keyed by each candle's series key (``Candle.key``), each child read on its own thread."""

    def __init__(self, feeds: Sequence[Feed]) -> None:
        self.feeds = list(feeds)
        self.interval = self.feeds[0].interval
        self.symbols: tuple[str, ...] = tuple(candle_key(s, getattr(f, "market", "spot"))
                                              for f in self.feeds for s in f.symbols)
        self._q: "queue.Queue[list[Candle] | None]" = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._done = 0

    @property
    def stale(self) -> bool:
        return any(getattr(f, "stale", False) for f in self.feeds)

    def warmup(self, n: int) -> dict[str, list[Candle]]:
        out: dict[str, list[Candle]] = {}
        for f in self.feeds:
            for rows in f.warmup(n).values():
                for c in rows:
                    out.setdefault(c.key, []).append(c)
        return out

    def backfill(self, key: str, after_open_ms: int) -> list[Candle]:
        symbol, market = split_key(key)
        for f in self.feeds:
            if getattr(f, "market", "spot") == market and symbol in f.symbols and hasattr(f, "backfill"):
                return f.backfill(symbol, after_open_ms)  # type: ignore[no-any-return]
        return []

    def next_batch(self, stop: threading.Event) -> list[Candle] | None:
        if not self._threads:
            for f in self.feeds:
                t = threading.Thread(target=self._pump, args=(f,), name="feed", daemon=True)
                t.start()
                self._threads.append(t)
        while not stop.is_set():
            try:
                batch = self._q.get(timeout=0.2)
            except queue.Empty:
                continue
            if batch is None:
                self._done += 1
                if self._done == len(self.feeds):
                    return None
                continue
            return batch
        return None

    def _pump(self, feed: Feed) -> None:
        while not self._stop.is_set():
            batch = feed.next_batch(self._stop)
            self._q.put(batch)
            if batch is None:
                return

    def last_price(self, symbol: str) -> float | None:
        for f in self.feeds:
            p = f.last_price(symbol)
            if p is not None:
                return p
        return None

    def close(self) -> None:
        self._stop.set()
        for f in self.feeds:
            closer = getattr(f, "close", None)
            if callable(closer):
                closer()
