"""Typed exchange errors: every failure of a venue call becomes Retryable, Final or Ambiguous.

The distinction drives money safety:
  * RetryableError  - nothing happened at the venue (rate limited, overloaded *before* execution,
                      connection refused). A read may be repeated after a pause; an order may not
                      be resent automatically by the adapter (the executor decides, and it doesn't).
  * FinalError      - the venue understood and refused (filters, balance, bad key, unknown order).
                      Repeating changes nothing.
  * AmbiguousError  - the request may or may not have been executed (timeout after sending, 5xx
                      "status unknown", connection dropped mid-answer, garbage answer). For a
                      state-changing call the only safe move is to ask the venue what happened.

For a read-only call an ambiguous transport failure is just retryable (nothing can have changed),
so `classify(exc, mutating=False)` maps those to RetryableError.
"""
from __future__ import annotations

from typing import Any

import requests
from binance.exceptions import BinanceAPIException, BinanceRequestException


class ExchangeError(Exception):
    """Base of every adapter error. `code` is Binance's error code (0 when none)."""

    def __init__(self, message: str, code: int = 0, status: int = 0, retry_after_s: float | None = None,
                 cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.retry_after_s = retry_after_s
        self.cause = cause

    def __str__(self) -> str:
        parts = [self.message]
        if self.code:
            parts.append(f"code {self.code}")
        if self.status:
            parts.append(f"HTTP {self.status}")
        return f"{type(self).__name__}: " + ", ".join(parts)


class RetryableError(ExchangeError):
    """Not executed; the same request may succeed later."""


class RateLimitedError(RetryableError):
    """429 (-1003) or an order-count limit (-1015): back off for retry_after_s."""


class BannedError(RateLimitedError):
    """418: the IP is banned until retry_after_s from now."""


class FinalError(ExchangeError):
    """The venue refused; repeating the request changes nothing."""


class AuthError(FinalError):
    """Bad key, bad signature, no permission (-2014, -2015, -1022, -2008)."""


class NotFoundError(FinalError):
    """Unknown order (-2013 on query, -2011 on cancel)."""


class FilterError(FinalError):
    """The order breaks a symbol filter; raised locally before sending, or -1013 from the venue."""


class WouldTriggerError(FinalError):
    """Nothing was placed: the price is already through the order's level -- a stop would trigger
    at once (spot -2010 "Order would trigger immediately.", USD-M -2021), a LIMIT_MAKER would take
    (-2010 "Order would immediately match and take."), or an OCO's prices are not take-profit >
    last > stop (-2010 "The relationship of the prices for the orders is not correct.")."""


class DuplicateOrderError(FinalError):
    """A client id already in use by an open order / order list / algo order (spot -2010
    "Duplicate order sent.", USD-M -4116): after an ambiguous placement it means "it is there"."""


class InsufficientBalanceError(FinalError):
    """Not enough funds (spot -2010 "Account has insufficient balance for requested action.",
    USD-M -2019 "Margin is insufficient.")."""


class AmbiguousError(ExchangeError):
    """The outcome is unknown: resolve by querying, never by sending again."""


# Codes that mean "nothing was executed, try later" even on a 4xx/5xx.
_RETRYABLE_CODES = {-1003, -1008, -1015, -1021, -1001}
# -1006 unexpected response, -1007 timeout waiting for backend: execution status unknown.
_AMBIGUOUS_CODES = {-1006, -1007}
_AUTH_CODES = {-2014, -2015, -1022, -2008, -1002}
_NOT_FOUND_CODES = {-2011, -2013}
# -2010 NEW_ORDER_REJECTED carries its reason in the message (errors.md "Messages for -2010")
_WOULD_TRIGGER_MSGS = ("order would trigger immediately", "would immediately match and take",
                       "relationship of the prices for the orders is not correct")


def _retry_after(headers: Any) -> float | None:
    try:
        value = headers.get("Retry-After") if headers is not None else None
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def from_api_exception(exc: BinanceAPIException, mutating: bool) -> ExchangeError:
    status = int(getattr(exc, "status_code", 0) or 0)
    code = int(getattr(exc, "code", 0) or 0)
    msg = str(getattr(exc, "message", "") or exc)
    headers = getattr(getattr(exc, "response", None), "headers", None)
    kw: dict[str, Any] = {"code": code, "status": status, "cause": exc}
    if status == 418:
        return BannedError(msg, retry_after_s=_retry_after(headers), **kw)
    if status == 429 or code in (-1003, -1015):
        return RateLimitedError(msg, retry_after_s=_retry_after(headers), **kw)
    if code in _AMBIGUOUS_CODES or status >= 500:
        # Binance: "5XX ... the execution status is UNKNOWN and could have been a success".
        # Even -1008 "overloaded" on an order is checked by query rather than trusted.
        return AmbiguousError(msg, **kw) if mutating else RetryableError(msg, **kw)
    if code in _RETRYABLE_CODES:
        return RetryableError(msg, **kw)
    if code in _AUTH_CODES or status in (401, 403):
        return AuthError(msg, **kw)
    if code in _NOT_FOUND_CODES:
        return NotFoundError(msg, **kw)
    if code == -1013:
        return FilterError(msg, **kw)
    low = msg.lower()
    if code == -2021 or (code == -2010 and any(m in low for m in _WOULD_TRIGGER_MSGS)):
        return WouldTriggerError(msg, **kw)
    if code == -4116 or (code == -2010 and "duplicate order" in low):
        return DuplicateOrderError(msg, **kw)
    if code == -2019 or (code == -2010 and "insufficient balance" in low):
        return InsufficientBalanceError(msg, **kw)
    return FinalError(msg, **kw)


def classify(exc: BaseException, mutating: bool) -> ExchangeError:
    """Map any exception from a python-binance call to a typed ExchangeError.

    `mutating` says whether the call changes venue state (order placement or cancel): only then is
    an unknown outcome Ambiguous rather than Retryable.
    """
    if isinstance(exc, ExchangeError):
        return exc
    if isinstance(exc, BinanceAPIException):
        return from_api_exception(exc, mutating)
    ambiguous = AmbiguousError if mutating else RetryableError
    if isinstance(exc, BinanceRequestException):  # 2xx/4xx with a body that is not JSON
        return ambiguous(f"unparseable answer: {exc}", cause=exc)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return RetryableError("connect timeout (request not sent)", cause=exc)
    if isinstance(exc, requests.exceptions.Timeout):  # ReadTimeout: sent, no answer in time
        return ambiguous(f"timeout waiting for the answer: {exc}", cause=exc)
    if isinstance(exc, requests.exceptions.ConnectionError):
        if _never_connected(exc):
            return RetryableError(f"venue unreachable (request not sent): {exc}", cause=exc)
        return ambiguous(f"connection dropped: {exc}", cause=exc)
    if isinstance(exc, (TimeoutError, ConnectionError, OSError)):
        return ambiguous(f"{type(exc).__name__}: {exc}", cause=exc)
    return ambiguous(f"unexpected {type(exc).__name__}: {exc}", cause=exc)


def _never_connected(exc: BaseException) -> bool:
    """True when the TCP connection was never made (so the request cannot have been executed)."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        name = type(e).__name__
        if name in ("NewConnectionError", "ConnectionRefusedError", "NameResolutionError", "gaierror"):
            return True
        nxt = getattr(e, "reason", None)
        if not isinstance(nxt, BaseException):
            nxt = e.args[0] if e.args and isinstance(e.args[0], BaseException) else None
        e = nxt or e.__cause__ or e.__context__
    return False
