"""Mapping python-binance / requests failures to Retryable, Final, Ambiguous (exchange/errors.py)."""
from __future__ import annotations

import json

import pytest
import requests
from binance.exceptions import BinanceAPIException, BinanceRequestException
from urllib3.exceptions import NewConnectionError, ProtocolError

from exchange.errors import (
    AmbiguousError,
    AuthError,
    BannedError,
    FilterError,
    FinalError,
    NotFoundError,
    RateLimitedError,
    RetryableError,
    classify,
)


def api(status: int, code: int, msg: str = "x", headers: dict[str, str] | None = None) -> BinanceAPIException:
    resp = requests.Response()
    resp.status_code = status
    resp.headers.update(headers or {})
    text = json.dumps({"code": code, "msg": msg})
    resp._content = text.encode()
    return BinanceAPIException(resp, status, text)


@pytest.mark.parametrize("status,code,mutating,kind", [
    (400, -1013, True, FilterError),
    (400, -2010, True, FinalError),
    (400, -2022, True, FinalError),
    (400, -1121, False, FinalError),
    (401, -2015, False, AuthError),
    (401, -2014, True, AuthError),
    (400, -1022, False, AuthError),
    (400, -2013, False, NotFoundError),
    (400, -2011, True, NotFoundError),
    (400, -1021, True, RetryableError),  # timestamp outside recvWindow: not executed
    (503, -1007, True, AmbiguousError),  # "execution status unknown"
    (503, -1007, False, RetryableError),  # a read can simply be repeated
    (503, -1008, True, AmbiguousError),  # any 5xx on an order: ask, don't trust
    (503, -1008, False, RetryableError),
    (500, -1006, True, AmbiguousError),
])
def test_binance_codes(status: int, code: int, mutating: bool, kind: type) -> None:
    err = classify(api(status, code), mutating)
    assert type(err) is kind and err.code == code and err.status == status


def test_rate_limits_carry_retry_after() -> None:
    e = classify(api(429, -1003, headers={"Retry-After": "17"}), False)
    assert isinstance(e, RateLimitedError) and isinstance(e, RetryableError) and e.retry_after_s == 17
    b = classify(api(418, -1003, headers={"Retry-After": "120"}), True)
    assert isinstance(b, BannedError) and b.retry_after_s == 120
    assert isinstance(classify(api(400, -1015), True), RateLimitedError)  # too many new orders


def test_transport_failures() -> None:
    refused = requests.exceptions.ConnectionError(NewConnectionError(None, "refused"))  # type: ignore[arg-type]
    assert type(classify(refused, True)) is RetryableError  # never reached the venue
    dropped = requests.exceptions.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError()))
    assert type(classify(dropped, True)) is AmbiguousError
    assert type(classify(dropped, False)) is RetryableError
    assert type(classify(requests.exceptions.ReadTimeout("slow"), True)) is AmbiguousError
    assert type(classify(requests.exceptions.ConnectTimeout("slow"), True)) is RetryableError
    garbage = BinanceRequestException("Invalid Response: <html>")
    assert type(classify(garbage, True)) is AmbiguousError
    assert type(classify(TimeoutError(), True)) is AmbiguousError


def test_str_has_code_and_status_not_secrets() -> None:
    e = classify(api(401, -2015, "Invalid API-key, IP, or permissions for action."), False)
    assert str(e) == "AuthError: Invalid API-key, IP, or permissions for action., code -2015, HTTP 401"
    assert classify(e, True) is e
