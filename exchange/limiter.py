"""Weight-aware rate limiting and retry policy for venue calls.

Binance counts request weight per IP in fixed one-minute windows and reports the running total
in `X-MBX-USED-WEIGHT-1M` on every answer. Going over earns a 429 (with `Retry-After`), and
insisting earns a 418 ban. So the limiter:
  * tracks the used weight from the headers (plus what it has sent since the last header),
  * above `slow_at` of the limit spreads the remaining budget over the rest of the minute,
  * never sends a request that would exceed the limit: it waits for the next window instead,
  * after a 429/418 blocks every call until `Retry-After` has passed.

`call_with_retry` repeats only calls marked safe (reads, queries); order placement is never
repeated here (an ambiguous placement is resolved by query in executors/live.py).
Clock and sleep are injectable so tests need no real time.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, TypeVar

from exchange.errors import BannedError, ExchangeError, RateLimitedError, RetryableError, classify

log = logging.getLogger(__name__)
T = TypeVar("T")
WINDOW_S = 60.0


@dataclass
class RateLimiter:
    """Request-weight budget of one IP on one venue API (spot 6000/min, USD-M 2400/min)."""

    limit: int = 6000
    slow_at: float = 0.8  # fraction of the limit where pacing starts
    clock: Callable[[], float] = time.time  # wall clock: Binance windows are aligned to the minute
    sleep: Callable[[float], None] = time.sleep
    used: int = 0  # weight used in the current window (last header + local additions)
    window: int = -1  # index of the minute the `used` value belongs to
    blocked_until: float = 0.0
    # A longer wait (a ban, the rest of a minute's window) is not waited out: the caller may hold the
    # worker's trading lock, and a kill switch must never queue behind a sleep. It raises instead.
    max_wait_s: float = 2.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _roll(self, now: float) -> None:
        w = int(now // WINDOW_S)
        if w != self.window:
            self.window, self.used = w, 0

    def delay_for(self, weight: int, now: float | None = None) -> float:
        """Seconds to wait before sending a request of this weight (0 = go now)."""
        now = self.clock() if now is None else now
        if now < self.blocked_until:
            return self.blocked_until - now
        self._roll(now)
        to_reset = (self.window + 1) * WINDOW_S - now
        if self.used + weight > self.limit:
            return to_reset + 0.05  # next window
        soft = self.limit * self.slow_at
        if self.used + weight > soft:
            # Spread what is left evenly over the rest of the window.
            remaining = max(self.limit - self.used, 1)
            return min(to_reset, to_reset * weight / remaining)
        return 0.0

    def acquire(self, weight: int = 1) -> float:
        """Wait as needed, then count `weight` as used. Returns the time waited."""
        total = 0.0
        while True:
            with self._lock:
                d = self.delay_for(weight)
                if d <= 0:
                    self.used += weight
                    return total
                if d > self.max_wait_s:
                    raise RateLimitedError(f"the venue's rate limit allows the next request in {d:.0f} s; not "
                                           "waiting for it", retry_after_s=d)
            log.debug("rate limiter: waiting %.2f s (used %d of %d)", d, self.used, self.limit)
            self.sleep(d)
            total += d
            # After a pacing wait, go: re-checking would wait again on the same estimate.
            with self._lock:
                now = self.clock()
                self._roll(now)
                if now >= self.blocked_until and self.used + weight <= self.limit:
                    self.used += weight
                    return total

    def update(self, headers: Mapping[str, Any] | None) -> None:
        """Take the venue's count from an answer's headers (the truth beats our estimate)."""
        if not headers:
            return
        raw = headers.get("X-MBX-USED-WEIGHT-1M") or headers.get("x-mbx-used-weight-1m")
        if raw is None:
            return
        try:
            used = int(raw)
        except (TypeError, ValueError):
            return
        with self._lock:
            self._roll(self.clock())
            self.used = used

    def penalise(self, retry_after_s: float | None) -> None:
        """After a 429/418: block everything until Retry-After (or the next window)."""
        with self._lock:
            now = self.clock()
            self._roll(now)
            wait = retry_after_s if retry_after_s is not None else (self.window + 1) * WINDOW_S - now
            self.blocked_until = max(self.blocked_until, now + max(wait, 0.0))
            self.used = max(self.used, self.limit)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_delay_s: float = 0.25
    max_delay_s: float = 8.0
    jitter: float = 0.2

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        d = min(self.max_delay_s, self.base_delay_s * (2 ** attempt))
        r = (rng or random).random()
        return d * (1 + self.jitter * (2 * r - 1))


def call_with_retry(fn: Callable[[], T], *, safe: bool, mutating: bool = False,
                    limiter: RateLimiter | None = None, weight: int = 1,
                    headers: Callable[[], Mapping[str, Any] | None] | None = None,
                    policy: RetryPolicy = RetryPolicy(), sleep: Callable[[float], None] | None = None,
                    rng: random.Random | None = None) -> T:
    """Run one venue call under the limiter, mapping failures to typed errors.

    Retries with exponential backoff only when `safe` (repeating cannot change venue state) and
    the error is Retryable. `headers()` returns the last answer's headers (python-binance keeps
    them on `client.response`), fed back to the limiter after every attempt.
    """
    sleep = sleep or (limiter.sleep if limiter else time.sleep)
    attempt = 0
    while True:
        if limiter is not None:
            limiter.acquire(weight)
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - every failure gets a type
            err = classify(exc, mutating)
            resp_headers = getattr(getattr(err.cause, "response", None), "headers", None)
            if limiter is not None:
                limiter.update(resp_headers)
                if isinstance(err, RateLimitedError):
                    limiter.penalise(err.retry_after_s)
            attempt += 1
            retry = safe and isinstance(err, RetryableError) and not isinstance(err, BannedError)
            if not retry or attempt >= policy.attempts:  # a ban lasts minutes: report, don't wait
                raise err from exc
            # A rate limit waits in the limiter (blocked_until); other errors back off here.
            if not isinstance(err, RateLimitedError):
                d = policy.delay(attempt - 1, rng)
                log.info("retrying after %s in %.2f s (attempt %d)", err, d, attempt + 1)
                sleep(d)
            continue
        if limiter is not None and headers is not None:
            limiter.update(headers())
        return result


__all__ = ["RateLimiter", "RetryPolicy", "call_with_retry", "ExchangeError"]
