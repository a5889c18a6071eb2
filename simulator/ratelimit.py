"""Rate limits: request weight per IP per minute, order counts per account, 429s and 418 bans.

Windows are fixed and aligned like Binance's (the 1-minute weight window resets on the minute).
A request that would exceed the weight limit gets 429 (-1003) with ``Retry-After`` = seconds to the
window's end and is not counted; an IP that keeps sending after ``ban_after`` 429s in one window is
banned (418, -1003 "IP banned until ...") for ``ban_seconds``. New orders beyond the 10 s or 1 day
order limits get 429 (-1015).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from simulator import errors

MINUTE_MS = 60_000
TEN_S_MS = 10_000
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Limits:
    weight_per_minute: int = 6000
    orders_per_10s: int = 100
    orders_per_day: int = 200_000
    raw_requests_per_5m: int = 61_000
    futures_weight_per_minute: int = 2400
    futures_orders_per_10s: int = 300
    futures_orders_per_minute: int = 1200
    ban_after: int = 5
    ban_seconds: int = 120

    def weight_limit(self, scope: str) -> int:
        return self.futures_weight_per_minute if scope == "fapi" else self.weight_per_minute

    def exchange_info(self) -> list[dict[str, object]]:
        return [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": self.weight_per_minute},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": self.orders_per_10s},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": self.orders_per_day},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": self.raw_requests_per_5m},
        ]

    def futures_exchange_info(self) -> list[dict[str, object]]:
        return [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": self.futures_weight_per_minute},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": self.futures_orders_per_minute},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": self.futures_orders_per_10s},
        ]


@dataclass(slots=True)
class _IpState:
    window: int = -1
    used: int = 0
    violations: int = 0
    banned_until: int = 0


@dataclass(slots=True)
class _Window:
    """A fixed window counter: ``count`` events in window number ``index`` of ``size_ms``."""

    size_ms: int
    index: int = -1
    count: int = 0

    def current(self, now_ms: int) -> int:
        return self.count if self.index == now_ms // self.size_ms else 0

    def retry_after_s(self, now_ms: int) -> int:
        return _ceil_s((now_ms // self.size_ms + 1) * self.size_ms - now_ms)

    def add(self, now_ms: int, n: int = 1) -> int:
        if self.index != now_ms // self.size_ms:
            self.index, self.count = now_ms // self.size_ms, 0
        self.count += n
        return self.count


@dataclass
class RateLimiter:
    """Weight per (scope, IP) -- scope "api" (spot) or "fapi" (USD-M) -- and order counts per scope."""

    limits: Limits = field(default_factory=Limits)
    _ips: dict[tuple[str, str], _IpState] = field(default_factory=dict)
    _orders: dict[str, tuple[_Window, _Window]] = field(default_factory=dict)

    def _state(self, ip: str, now_ms: int, scope: str) -> _IpState:
        st = self._ips.setdefault((scope, ip), _IpState())
        window = now_ms // MINUTE_MS
        if st.window != window:
            st.window, st.used, st.violations = window, 0, 0
        return st

    def used(self, ip: str, now_ms: int, scope: str = "api") -> int:
        return self._state(ip, now_ms, scope).used

    def charge(self, ip: str, weight: int, now_ms: int, scope: str = "api") -> int:
        """Count ``weight`` for ``ip``; return the minute's used weight or raise 429/418."""
        st = self._state(ip, now_ms, scope)
        if st.banned_until > now_ms:
            raise errors.ip_banned(st.banned_until, _ceil_s(st.banned_until - now_ms))
        limit = self.limits.weight_limit(scope)
        if st.used + weight > limit:
            st.violations += 1
            if st.violations > self.limits.ban_after:
                st.banned_until = now_ms + self.limits.ban_seconds * 1000
                raise errors.ip_banned(st.banned_until, self.limits.ban_seconds)
            retry = _ceil_s((st.window + 1) * MINUTE_MS - now_ms)
            raise errors.too_much_weight(limit, retry)
        st.used += weight
        return st.used

    def burst(self, ip: str, weight: int, now_ms: int, scope: str = "api") -> None:
        """Fault injection: pretend ``weight`` was already used this minute."""
        self._state(ip, now_ms, scope).used += weight

    def _order_windows(self, scope: str) -> tuple[_Window, _Window]:
        if scope not in self._orders:
            long_ms = MINUTE_MS if scope == "fapi" else DAY_MS
            self._orders[scope] = (_Window(TEN_S_MS), _Window(long_ms))
        return self._orders[scope]

    def charge_order(self, now_ms: int, scope: str = "api", n: int = 1) -> tuple[int, int]:
        """Count ``n`` new orders (an OCO is 2); return (count in the 10 s window, count in the long window:
        1 day spot / 1 minute futures) or raise -1015."""
        short, long_ = self._order_windows(scope)
        if scope == "fapi":
            lim_s, lim_l, name_l = self.limits.futures_orders_per_10s, self.limits.futures_orders_per_minute, "1 MINUTE"
        else:
            lim_s, lim_l, name_l = self.limits.orders_per_10s, self.limits.orders_per_day, "1 DAY"
        if short.current(now_ms) + n > lim_s:
            raise errors.too_many_orders(lim_s, "10 SECOND", short.retry_after_s(now_ms))
        if long_.current(now_ms) + n > lim_l:
            raise errors.too_many_orders(lim_l, name_l, long_.retry_after_s(now_ms))
        return short.add(now_ms, n), long_.add(now_ms, n)

    def reset(self) -> None:
        self._ips.clear()
        self._orders.clear()


def _ceil_s(ms: int) -> int:
    return max(1, -(-ms // 1000))
