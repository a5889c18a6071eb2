"""The Strategy contract and helpers shared by the built-in strategies.

A strategy is a pure function of the closed-candle history: ``evaluate(candles)`` receives
the closed candles, oldest first (the last one is the candle that just closed), and returns a
``core.types.Signal``. No state is kept between calls, so the same input always gives the
same signal, and a strategy only ever sees the candles it is handed (the backtester checks it
cannot peek ahead).

A strategy may declare **informative timeframes**: ``informative = {"1h": 30, "4h": 20}`` (interval ->
closed candles of it needed). The engine (``engine.informative``) then calls it as
``evaluate(candles, informative)`` where ``informative["1h"]`` holds the last 30 closed 1h candles
resampled from the base candles (never the one still forming), oldest first. Such a strategy runs
per candle (a backtest takes the bar path for it).

Built-in strategies also expose ``lookback``: the most recent candles they actually read.
Recursive indicators (EMA, Wilder RSI) are re-seeded at the start of that window, so the
signal depends only on the last ``lookback`` candles and the engine may keep a bounded
buffer of that size (``history_needed``). Passing more history is harmless.
"""
from __future__ import annotations

from itertools import islice
from typing import Protocol, Sequence, runtime_checkable

import numpy as np
from pydantic import ConfigDict, Field

from core.types import NO_SIGNAL, Candle, Side, Signal
from core.validation import StrictNumbers
from strategy.indicators import FloatArray

__all__ = [
    "MAX_WINDOW",
    "SIDE_BUY",
    "SIDE_NONE",
    "SIDE_SELL",
    "VectorStrategy",
    "exit_arrays",
    "is_vectorised",
    "ExitParams",
    "Strategy",
    "informative_of",
    "closes",
    "exit_prices",
    "fmt_price",
    "history_needed",
    "history_window",
    "tail",
]

# Upper bound for any indicator window: catches typos (20000 for 200) and keeps per-candle
# evaluation cheap.
MAX_WINDOW = 5_000


@runtime_checkable
class Strategy(Protocol):
    """What the engine calls once per closed candle."""

    name: str  # registry name, e.g. "sma_crossover"
    warmup: int  # closed candles needed before the strategy can signal

    def evaluate(self, candles: Sequence[Candle]) -> Signal:
        """Signal for the last candle of ``candles`` (closed history, oldest first)."""
        ...


# Codes of the vectorised signal arrays (``VectorStrategy.signals``).
SIDE_BUY, SIDE_SELL, SIDE_NONE = 1, -1, 0


@runtime_checkable
class VectorStrategy(Strategy, Protocol):
    """A strategy that can also compute all its signals at once (the backtester's fast path).

    ``signals(...)[i]`` must equal ``evaluate(candles[:i + 1])`` for every i (BUY -> +1,
    SELL -> -1, NONE -> 0), and ``exit_levels`` the signal's stop_loss / take_profit (NaN
    for None); tests/unit/test_backtest_signals.py proves it on random and real data.
    A strategy may set ``vectorised = False`` when its parameters have no exact vector form.
    """

    vectorised: bool

    def signals(self, opens: FloatArray, highs: FloatArray, lows: FloatArray, closes: FloatArray,
                volumes: FloatArray) -> np.ndarray:
        """int8 array of SIDE_BUY / SIDE_SELL / SIDE_NONE, one per candle."""
        ...

    def exit_levels(self, sides: np.ndarray, closes: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(stop_loss, take_profit) arrays for ``sides`` (NaN where None)."""
        ...


def is_vectorised(strategy: Strategy) -> bool:
    """True when ``strategy`` offers an exact vectorised ``signals`` (see VectorStrategy)."""
    return bool(getattr(strategy, "vectorised", False)) and callable(getattr(strategy, "signals", None))


def exit_arrays(sides: np.ndarray, closes: FloatArray, stop_loss_pct: float | None,
                take_profit_pct: float | None) -> tuple[FloatArray, FloatArray]:
    """``exit_prices`` for every candle at once, with the same float operations in the same
    order (so the values are bit-identical); NaN where the side is NONE or the pct unset."""
    sign = sides.astype(np.float64)
    c = np.asarray(closes, dtype=np.float64)
    none = sides == SIDE_NONE
    stop = np.full(len(c), np.nan) if stop_loss_pct is None else c * (1.0 - sign * stop_loss_pct / 100.0)
    take = np.full(len(c), np.nan) if take_profit_pct is None else c * (1.0 + sign * take_profit_pct / 100.0)
    stop[none] = np.nan
    take[none] = np.nan
    return stop, take


def informative_of(strategy: object) -> dict[str, int]:
    """The informative timeframes a strategy declares (interval -> closed candles needed); {} for none."""
    inf = getattr(strategy, "informative", None)
    return {str(k): int(v) for k, v in dict(inf).items()} if inf else {}


def history_needed(strategy: Strategy) -> int:
    """Candles the engine should keep for ``strategy``: its ``lookback`` if it declares one
    (built-ins do), else its ``warmup``."""
    return max(int(getattr(strategy, "lookback", 0) or 0), strategy.warmup)


def history_window(strategy: Strategy) -> int:
    """The closed candles a bot keeps and hands evaluate(): what the strategy needs, a small margin,
    at least 50. Every bot (signal, DCA start condition, backtest) uses this one window, so a
    strategy sees the same history, and gives the same signals, everywhere."""
    return max(history_needed(strategy) + 5, 50)


class ExitParams(StrictNumbers):
    """Optional protective exits, in percent of the signal candle's close."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # < 100: a BUY stop at -100 % would be a price of 0, a SELL take-profit too
    stop_loss_pct: float | None = Field(default=None, gt=0, lt=100, description="stop distance, % of close")
    take_profit_pct: float | None = Field(default=None, gt=0, lt=100, description="target distance, % of close")


def exit_prices(side: Side, close: float, stop_loss_pct: float | None,
                take_profit_pct: float | None) -> tuple[float | None, float | None]:
    """(stop_loss, take_profit) absolute prices for a signal at ``close``.

        BUY:  stop = close * (1 - sl/100),  take = close * (1 + tp/100)
        SELL: stop = close * (1 + sl/100),  take = close * (1 - tp/100)
    None for an unset pct, and both None for Side.NONE.
    """
    if side is Side.NONE:
        return None, None
    sign = 1.0 if side is Side.BUY else -1.0
    stop = None if stop_loss_pct is None else close * (1.0 - sign * stop_loss_pct / 100.0)
    take = None if take_profit_pct is None else close * (1.0 + sign * take_profit_pct / 100.0)
    return stop, take


def tail(candles: Sequence[Candle], k: int) -> Sequence[Candle]:
    """The last k candles (all of them if fewer). Works for lists, tuples and deques."""
    n = len(candles)
    if n <= k:
        return candles
    if isinstance(candles, (list, tuple)):
        return candles[n - k:]
    # deques do not slice; islice walks them once
    return list(islice(candles, n - k, None))


def closes(candles: Sequence[Candle]) -> FloatArray:
    """Close prices as a float64 array, oldest first."""
    return np.fromiter((c.close for c in candles), dtype=np.float64, count=len(candles))


def fmt_price(x: float) -> str:
    """Compact price for reason strings: 8 significant digits, no float noise (10.249999 -> 10.25)."""
    return f"{x:.8g}"


class NoStrategy:
    """No signal needed (a DCA bot whose deals start 'asap')."""

    name = "dca"
    warmup = 0

    def evaluate(self, candles: object) -> Signal:
        return NO_SIGNAL
