"""Trading-state precedence: a bot obeys the most restrictive of global, mode and bot states."""
from __future__ import annotations

from core.types import TradingState

_RANK = {
    TradingState.ACTIVE: 0,
    TradingState.REDUCE_ONLY: 1,
    TradingState.PAUSED: 2,
    TradingState.FLATTEN: 3,
    TradingState.HALTED: 4,
}


def most_restrictive(*states: TradingState) -> TradingState:
    return max(states, key=_RANK.__getitem__, default=TradingState.ACTIVE)


def is_more_restrictive(a: TradingState, b: TradingState) -> bool:
    return _RANK[a] > _RANK[b]
