"""Deterministic client order ids: ``tb`` + 8 hex of the bot name + the candle time in base 36 + a
purpose code + a sequence number (at most 36 characters, Binance's limit). The same bot, candle,
purpose and sequence always give the same id, so a retried order is recognised by the venue."""
from __future__ import annotations

import hashlib
from functools import lru_cache

from core.types import OrderPurpose

_P_ENTRY, _P_EXIT, _P_FLATTEN = OrderPurpose.ENTRY, OrderPurpose.EXIT, OrderPurpose.FLATTEN


@lru_cache(maxsize=1024)
def _bot_tag(bot: str) -> str:
    return hashlib.sha1(bot.encode()).hexdigest()[:8]  # cached: the backtester places many orders


def client_order_id(bot: str, time_ms: int, purpose: OrderPurpose, seq: int) -> str:
    """Deterministic id (<= 36 chars, Binance's limit): same bot, candle, purpose, seq -> same id."""
    return f"tb{_bot_tag(bot)}{_b36(time_ms)}{_PURPOSE_CODE[purpose]}{seq}"


def protective_id(bot: str, time_ms: int, seq: int) -> str:
    """A protective order's client id (an OCO's list id; its legs add 't' and 's'): <= 34 chars."""
    return f"tb{_bot_tag(bot)}{_b36(time_ms)}p{seq}"


_PURPOSE_CODE = {_P_ENTRY: "n", _P_EXIT: "x", _P_FLATTEN: "f"}


_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


_B36_PAIRS = [a + b for a in _B36 for b in _B36]  # two digits per divmod: half the loop turns


@lru_cache(maxsize=64)
def _b36_slow(n: int) -> str:
    if n < 36:
        return _B36[n]
    out = ""
    while n:
        n, r = divmod(n, 1296)
        out = _B36_PAIRS[r] + out
    return out.lstrip("0")


def _b36(n: int) -> str:
    """Base 36 of n >= 0. Epoch-ms values from 1972 to 2059 have eight digits: four from the pair table
    (a backtest's orders are minutes apart, so no cache would hit); others the general way."""
    if 78_364_164_096 <= n < 2_821_109_907_456:  # 36**7 <= n < 36**8
        p = _B36_PAIRS
        return f"{p[n // 2_176_782_336]}{p[n // 1_679_616 % 1296]}{p[n // 1296 % 1296]}{p[n % 1296]}"
    if n < 1_679_616:  # 36**4
        return _b36_slow(n)
    hi, lo = divmod(n, 1_679_616)
    a, b = divmod(lo, 1296)
    return _b36_slow(hi) + _B36_PAIRS[a] + _B36_PAIRS[b]
