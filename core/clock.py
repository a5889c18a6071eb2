"""Clocks: wall time for ghost/paper/live, a settable simulated clock for backtests."""
from __future__ import annotations

import time
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
