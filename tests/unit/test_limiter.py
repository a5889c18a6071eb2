"""Weight-aware rate limiter and retry policy, on a fake clock (no real sleeping, no timed asserts)."""
from __future__ import annotations

import json
import random

import pytest
import requests
from binance.exceptions import BinanceAPIException

from exchange.errors import AmbiguousError, BannedError, FinalError, RetryableError
from exchange.limiter import RateLimiter, RetryPolicy, call_with_retry


class FakeClock:
    def __init__(self, t: float = 1_000_040.0) -> None:  # 20 s into a minute window (1_000_020 = 60 * 16667)
        self.t = t
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


def limiter(clock: FakeClock, limit: int = 1000, max_wait_s: float = 120.0) -> RateLimiter:
    return RateLimiter(limit=limit, slow_at=0.8, clock=clock, sleep=clock.sleep, max_wait_s=max_wait_s)


def api(status: int, code: int, headers: dict[str, str] | None = None) -> BinanceAPIException:
    resp = requests.Response()
    resp.status_code = status
    resp.headers.update(headers or {})
    text = json.dumps({"code": code, "msg": "m"})
    resp._content = text.encode()
    return BinanceAPIException(resp, status, text)


def test_no_wait_below_the_soft_limit_and_counts_weight() -> None:
    c = FakeClock()
    lim = limiter(c)
    for _ in range(10):
        assert lim.acquire(20) == 0
    assert lim.used == 200 and c.slept == []


def test_headers_are_the_truth_and_pacing_starts_near_the_limit() -> None:
    c = FakeClock()
    lim = limiter(c)
    lim.update({"X-MBX-USED-WEIGHT-1M": "850"})  # above 80 %: spread the rest over the window
    waited = lim.acquire(10)
    # 40 s left in the window, 150 weight left: 10 weight -> 40 * 10 / 150 s
    assert waited == pytest.approx(40 * 10 / 150)
    assert lim.used == 860


def test_never_exceeds_the_limit_waits_for_the_next_window() -> None:
    c = FakeClock()
    lim = limiter(c)
    lim.update({"X-MBX-USED-WEIGHT-1M": "995"})
    lim.acquire(10)
    assert c.slept and sum(c.slept) >= 40  # to the end of the minute
    assert int(c.t // 60) == int(1_000_040 // 60) + 1 and lim.used == 10


def test_retry_after_blocks_every_call() -> None:
    c = FakeClock()
    lim = limiter(c)
    lim.penalise(7)
    assert lim.delay_for(1) == pytest.approx(7)
    lim.acquire(1)
    assert sum(c.slept) >= 7


def test_safe_calls_retry_with_backoff_then_succeed() -> None:
    c = FakeClock()
    lim = limiter(c)
    calls = iter([api(503, -1008), requests.exceptions.ReadTimeout(), "ok"])

    def fn() -> str:
        x = next(calls)
        if isinstance(x, BaseException):
            raise x
        return x

    assert call_with_retry(fn, safe=True, limiter=lim, policy=RetryPolicy(attempts=4, base_delay_s=0.5, jitter=0),
                           sleep=c.sleep) == "ok"
    assert c.slept == [0.5, 1.0]  # exponential backoff


def test_rate_limited_read_waits_retry_after_in_the_limiter() -> None:
    c = FakeClock()
    lim = limiter(c)
    calls = iter([api(429, -1003, {"Retry-After": "12", "X-MBX-USED-WEIGHT-1M": "1001"}), "ok"])

    def fn() -> str:
        x = next(calls)
        if isinstance(x, BaseException):
            raise x
        return x

    assert call_with_retry(fn, safe=True, limiter=lim, sleep=c.sleep) == "ok"
    assert sum(c.slept) >= 12


def test_order_placement_is_never_retried() -> None:
    c = FakeClock()
    n = 0

    def place() -> None:
        nonlocal n
        n += 1
        raise api(503, -1008)

    with pytest.raises(AmbiguousError):
        call_with_retry(place, safe=False, mutating=True, limiter=limiter(c), sleep=c.sleep)
    assert n == 1 and c.slept == []

    def throttled() -> None:
        nonlocal n
        n += 1
        raise api(429, -1003, {"Retry-After": "3"})

    n = 0
    with pytest.raises(RetryableError):
        call_with_retry(throttled, safe=False, mutating=True, limiter=limiter(c), sleep=c.sleep)
    assert n == 1


def test_final_errors_and_bans_are_not_retried() -> None:
    c = FakeClock()
    for exc, kind in ((api(400, -1121), FinalError), (api(418, -1003, {"Retry-After": "120"}), BannedError)):
        n = 0

        def fn(e: BaseException = exc) -> None:
            nonlocal n
            n += 1
            raise e

        with pytest.raises(kind):
            call_with_retry(fn, safe=True, limiter=limiter(c), sleep=c.sleep)
        assert n == 1


def test_gives_up_after_the_attempts() -> None:
    c = FakeClock()
    n = 0

    def fn() -> None:
        nonlocal n
        n += 1
        raise requests.exceptions.ReadTimeout()

    with pytest.raises(RetryableError):
        call_with_retry(fn, safe=True, policy=RetryPolicy(attempts=3), sleep=c.sleep, rng=random.Random(1))
    assert n == 3 and len(c.slept) == 2


def test_a_long_wait_is_refused_at_once_not_slept_through() -> None:
    """A ban or the rest of a minute's window would hold the worker's trading lock (and a kill switch
    behind it): beyond max_wait_s the limiter raises a typed error instead of sleeping."""
    from exchange.errors import RateLimitedError

    c = FakeClock()
    lim = limiter(c, max_wait_s=2.0)
    lim.penalise(30)
    with pytest.raises(RateLimitedError, match="next request in 30 s") as info:
        lim.acquire(1)
    assert info.value.retry_after_s == pytest.approx(30) and not c.slept
