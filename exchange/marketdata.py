"""A `market.feed.Feed` over the venue's kline WebSocket: closed candles, gap-filled, with a stale alarm.

One background thread runs an asyncio loop with python-binance's AsyncClient/BinanceSocketManager
(URLs from exchange.venues) on one combined kline stream for all symbols. Closed klines (k.x) go
to a queue that `next_batch()` drains one time step at a time.

No holes: whenever a message shows that bars up to some time must have closed (any kline update,
closed or not, after a reconnect or a lost message), the bars missing since the last delivered one
are fetched over REST first, so the sequence per symbol is contiguous. Duplicates (the WS
repeating what REST delivered) are dropped silently.

Stale alarm: no message for `stale_after_s` -> `stale` turns True, `on_stale(seconds)` is called
once per episode and a warning logged; the first message afterwards clears it. A stream stale for
`reconnect_after_s` is reopened (a silently dead TCP connection never errors by itself).
"""
from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


from core.types import INTERVAL_MS, Candle
from exchange.client import ExchangeClient
from exchange.rules import Market
from exchange.venues import VenueUrls, async_client_class, force_close, socket_manager_class
from market.validate import CandleValidator

log = logging.getLogger(__name__)


@dataclass(slots=True)
class FeedStats:
    messages: int = 0
    closed_from_ws: int = 0
    gap_filled: int = 0  # candles fetched over REST to close holes
    reconnects: int = 0  # stream errors/closures seen (python-binance reconnects, or we reopen)
    stale_alarms: int = 0
    duplicates: int = 0


class ExchangeFeed:
    """Feed protocol: symbols, interval, warmup(n), next_batch(stop), last_price(symbol); plus close()."""

    def __init__(self, urls: VenueUrls, symbols: Sequence[str], interval: str = "1m", market: Market = "spot",
                 rest: ExchangeClient | None = None, stale_after_s: float = 10.0, reconnect_after_s: float = 30.0,
                 on_stale: Callable[[float], None] | None = None, batch_grace_s: float = 0.3,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if interval not in INTERVAL_MS:
            raise ValueError(f"unknown interval {interval!r}")
        self.urls = urls
        self.symbols: tuple[str, ...] = tuple(symbols)
        self.interval: str = interval
        self.market: Market = market
        self.rest = rest or ExchangeClient(urls, market=market)  # market data needs no key
        self.stale_after_s = stale_after_s
        self.reconnect_after_s = reconnect_after_s
        self.on_stale = on_stale
        self.batch_grace_s = batch_grace_s
        self.validator = CandleValidator()
        self.stats = FeedStats()
        self.stale = False
        self._monotonic = monotonic
        self._step = INTERVAL_MS[interval]
        self._q: queue.Queue[Candle] = queue.Queue()
        self._held: list[Candle] = []
        self._last_open: dict[str, int] = {}  # last delivered closed bar per symbol
        self._last_price: dict[str, float] = {}
        self._last_msg = monotonic()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._warmup: dict[str, list[Candle]] | None = None
        self.error: BaseException | None = None

    # ---- Feed protocol -------------------------------------------------------------------------
    def warmup(self, n: int) -> dict[str, list[Candle]]:
        """The last n closed bars per symbol over REST (the venue's newest kline is still open),
        then the stream starts; live bars continue right after these."""
        if self._warmup is not None:
            return self._warmup
        out: dict[str, list[Candle]] = {}
        for sym in self.symbols:
            rows = self.rest.klines(sym, self.interval, limit=min(max(n, 0) + 1, 1000))[:-1][-n:] if n > 0 else []
            out[sym] = [c for c in rows if self._accept(c)]
            if not out[sym]:  # start the gap tracking at the open bar
                latest = self.rest.klines(sym, self.interval, limit=1)
                if latest:
                    self._last_open.setdefault(sym, latest[-1].open_time - self._step)
        self._warmup = out
        self.start()
        return out

    def backfill(self, symbol: str, after_open_ms: int) -> list[Candle]:
        """Every closed bar after ``after_open_ms`` up to the last closed one, over REST (paged by 1000):
        what the venue traded while the worker was down. The stream continues after the last of them."""
        out: list[Candle] = []
        start = after_open_ms + self._step
        while True:
            rows = self.rest.klines(symbol, self.interval, start_ms=start, limit=1000)
            # a row with a later row after it is closed; the last one may still be forming (by the
            # venue's clock: a simulated market may run ahead of ours)
            closed = rows[:-1] + [c for c in rows[-1:] if c.close_time < time.time() * 1000]
            out.extend(closed)
            if len(rows) < 1000 or not closed:
                break
            start = closed[-1].open_time + self._step
        if out:
            with self._lock:
                self._last_open[symbol] = max(self._last_open.get(symbol, 0), out[-1].open_time)
        return out

    def next_batch(self, stop: threading.Event) -> list[Candle] | None:
        """The next closed bar(s): the earliest open_time waiting, every symbol that has it
        (waiting up to batch_grace_s for the others). None when stopped or closed."""
        if self._thread is None:
            self.warmup(0)
        while not stop.is_set() and not self._closing.is_set():
            if not self._held:
                try:
                    self._held.append(self._q.get(timeout=0.2))
                except queue.Empty:
                    continue
            t = min(c.open_time for c in self._held)
            deadline = self._monotonic() + self.batch_grace_s
            while len({c.symbol for c in self._held if c.open_time == t}) < len(self.symbols):
                left = deadline - self._monotonic()
                if left <= 0 or stop.is_set():
                    break
                try:
                    self._held.append(self._q.get(timeout=min(left, 0.05)))
                except queue.Empty:
                    pass
                t = min(c.open_time for c in self._held)
            batch = sorted((c for c in self._held if c.open_time == t), key=lambda c: c.symbol)
            self._held = [c for c in self._held if c.open_time != t]
            return batch
        return None

    def last_price(self, symbol: str) -> float | None:
        return self._last_price.get(symbol)

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="exchange-feed", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def silent_for_s(self) -> float:
        return self._monotonic() - self._last_msg

    # ---- internals -------------------------------------------------------------------------------
    def _accept(self, c: Candle) -> bool:
        """Deliver-side bookkeeping: drop duplicates silently, validate, remember."""
        with self._lock:
            last = self._last_open.get(c.symbol)
            if last is not None and c.open_time <= last:
                self.stats.duplicates += 1
                return False
            if self.validator.check(c) is not None:
                return False
            self._last_open[c.symbol] = c.open_time
            self._last_price[c.symbol] = c.close
            return True

    def _emit(self, c: Candle) -> None:
        if self._accept(c):
            self._q.put(c)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main())
        except BaseException as e:  # noqa: BLE001 - surfaced through .error and the log
            self.error = e
            log.exception("market-data thread died")
        finally:
            loop.close()

    def _streams(self) -> list[str]:
        if self.market == "futures":
            return [f"{s.lower()}_perpetual@continuousKline_{self.interval}" for s in self.symbols]
        return [f"{s.lower()}@kline_{self.interval}" for s in self.symbols]

    async def _main(self) -> None:
        client = await async_client_class(self.urls).create()  # no key: public streams only
        try:
            # A deep queue: a burst (replay at speed, a slow consumer) must not kill the read loop.
            bsm = socket_manager_class(self.urls)(client, max_queue_size=10_000)
            watchdog = asyncio.create_task(self._watchdog())
            try:
                while not self._closing.is_set():
                    sock = (bsm.futures_multiplex_socket(self._streams()) if self.market == "futures"
                            else bsm.multiplex_socket(self._streams()))
                    try:
                        await self._consume(sock)
                    except Exception as e:  # noqa: BLE001 - reopen after any stream failure
                        self.stats.reconnects += 1
                        log.warning("kline stream failed (%s); reopening", e)
                        await asyncio.sleep(0.5)
            finally:
                watchdog.cancel()
        finally:
            await client.close_connection()

    async def _consume(self, sock: Any) -> None:
        async with sock:
            try:
                while not self._closing.is_set():
                    try:
                        msg = await asyncio.wait_for(sock.recv(), 0.5)
                    except asyncio.TimeoutError:
                        if self.silent_for_s > self.reconnect_after_s:
                            self.stats.reconnects += 1
                            log.warning("kline stream silent for %.0f s; reopening", self.silent_for_s)
                            self._last_msg = self._monotonic()
                            return
                        continue
                    await self._on_message(msg)
            finally:
                await force_close(sock)  # else python-binance's reader lingers up to 10 s

    async def _on_message(self, msg: dict[str, Any]) -> None:
        data = msg.get("data", msg) if isinstance(msg, dict) else {}
        if data.get("e") == "error":
            # python-binance reports a dropped connection here and reconnects by itself;
            # the next message triggers the REST gap-fill.
            self.stats.reconnects += 1
            log.info("kline stream interrupted (%s); gap-fill follows", data.get("type"))
            return
        k = data.get("k")
        if not isinstance(k, dict):
            return
        self._last_msg = self._monotonic()
        if self.stale:
            self.stale = False
            log.warning("market data flowing again")
        self.stats.messages += 1
        sym = data.get("s") or data.get("ps") or k.get("s")
        if sym not in self.symbols:
            return
        try:
            c = Candle(sym, int(k["t"]), float(k["o"]), float(k["h"]), float(k["l"]), float(k["c"]), float(k["v"]),
                       self.interval, self.market)
        except (KeyError, TypeError, ValueError):
            return
        self._last_price[sym] = c.close
        # Everything before this bar has closed: fill what we don't have.
        upto = c.open_time - (0 if k.get("x") else self._step)
        last = self._last_open.get(sym)
        if last is not None and last + self._step <= upto:
            await self._gap_fill(sym, last + self._step, upto)
        if k.get("x"):
            self.stats.closed_from_ws += 1
            self._emit(c)

    async def _gap_fill(self, sym: str, start: int, last_open: int) -> None:
        """Fetch bars [start, last_open] over REST (paged by 1000) and deliver them in order."""
        loop = asyncio.get_running_loop()
        end = last_open + self._step - 1
        while start <= last_open:
            s0 = start
            try:
                rows = await loop.run_in_executor(
                    None, lambda: self.rest.klines(sym, self.interval, start_ms=s0, end_ms=end, limit=1000))
            except Exception as e:  # noqa: BLE001 - the next message tries again
                log.warning("gap-fill %s %d..%d failed: %s", sym, s0, end, e)
                return
            rows = [c for c in rows if c.open_time <= last_open]
            if not rows:
                return
            for c in rows:
                if self._accept(c):
                    self.stats.gap_filled += 1
                    self._q.put(c)
            start = rows[-1].open_time + self._step

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            silent = self.silent_for_s
            if silent > self.stale_after_s and not self.stale:
                self.stale = True
                self.stats.stale_alarms += 1
                log.warning("market data stale: no kline message for %.1f s", silent)
                if self.on_stale is not None:
                    try:
                        self.on_stale(silent)
                    except Exception:  # noqa: BLE001 - an alarm handler must not kill the feed
                        log.exception("on_stale handler failed")
