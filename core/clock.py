"""Clocks: wall time for ghost/paper/live, a settable simulated clock for backtests."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from functools import lru_cache
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...


class WallClock:
    def now_ms(self) -> int:
        return int(time.time() * 1000)


class SimClock:
    """Advanced by the replay loop; never reads the wall clock."""

    def __init__(self, start_ms: int = 0) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def advance_to(self, t_ms: int) -> None:
        if t_ms < self._now:
            raise ValueError(f"simulated clock cannot go back: {t_ms} < {self._now}")
        self._now = t_ms


DAY_MS = 86_400_000


def utc_day(now_ms: int) -> str:
    """The UTC date of ``now_ms`` as YYYY-MM-DD (read on every mark: cached per day)."""
    return _day_of(now_ms // DAY_MS)


def iso_week(now_ms: int) -> str:
    """The ISO week of ``now_ms`` (UTC) as YYYY-Www (cached per day)."""
    return _week_of(now_ms // DAY_MS)


@lru_cache(maxsize=64)
def _day_of(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400, tz=timezone.utc).strftime("%Y-%m-%d")


@lru_cache(maxsize=64)
def _week_of(day: int) -> str:
    y, w, _ = datetime.fromtimestamp(day * 86_400, tz=timezone.utc).isocalendar()
    return f"{y}-W{w:02d}"
