"""The default intrabar exit rule (ghost and paper bots, the ghost signal tracker): which
protective level a candle triggers and at what reference price."""
from __future__ import annotations

from typing import Callable

from core.types import Candle, OrderType

# (reason, fill reference price, order type) of a protective exit triggered inside a candle.
ExitHit = tuple[str, float, OrderType]
# (candle, long?, stop_loss, take_profit) -> the exit that candle triggers, or None.
ExitCheck = Callable[[Candle, bool, "float | None", "float | None"], "ExitHit | None"]


def touch_exit_check(c: Candle, long: bool, stop: float | None, take: float | None) -> ExitHit | None:
    """A touch triggers; the stop wins when both are inside one candle (the pessimistic order);
    a gap through the level fills at the open."""
    if stop is not None and ((long and c.low <= stop) or (not long and c.high >= stop)):
        return "stop_loss", (min(stop, c.open) if long else max(stop, c.open)), OrderType.MARKET
    if take is not None and ((long and c.high >= take) or (not long and c.low <= take)):
        return "take_profit", (max(take, c.open) if long else min(take, c.open)), OrderType.LIMIT
    return None
