"""The one place a Redis client is made (as arq's ``create_pool``): every process — worker, dashboard,
backtest child, launcher, CLI — connects here, with one decode policy.

Replies are decoded to ``str``; a byte that is not UTF-8 (a hostile or broken writer) becomes U+FFFD
instead of raising inside the client, so one bad stream entry can never stall a reader. Readers that
must refuse such input (the command reader) look for U+FFFD (``NOT_UTF8``).
"""
from __future__ import annotations

import time

import redis

NOT_UTF8 = "\ufffd"  # what an undecodable byte becomes


def connect(url: str, *, timeout_s: float = 5.0, decode: bool = True) -> redis.Redis:
    """A client for ``url`` (``redis://host:port/db``): str replies, a socket timeout, health checks.
    ``decode=False``: bytes replies, for binary payloads (DUMP/RESTORE in ``state.redis_dump``)."""
    return redis.Redis.from_url(url, decode_responses=decode, encoding_errors="replace", socket_timeout=timeout_s,
                                socket_connect_timeout=timeout_s, health_check_interval=30)


def wait_for_redis(r: redis.Redis, timeout_s: float = 10.0) -> None:
    """Block until ``r`` answers PING; re-raise the last connection error after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            r.ping()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
