"""The fast path: the same Bot order code, visited only on event candles.

For a strategy with an exact vectorised ``signals()`` (proven equal to evaluate() on every
closed prefix, tests/unit/test_backtest_signals.py), nothing can happen on a candle that has no
signal unless a position is open and its stop, take-profit or time horizon triggers there. So:

1. compute every signal at once (numpy);
2. walk the events: the next signal, or, while a position is open, the first candle where
   ``FillModel.trigger_mask`` (the vector form of the exit check) or the horizon fires, found
   with a numpy search over the stretch up to the next signal;
3. on each event call ``Bot.on_event`` (exits, risk check, executor, portfolio: the very code
   ghost/paper run), telling it how many quiet candles it skipped;
4. between events quote and quantity are constant, so the equity curve is
   quote + quantity * close, filled in with numpy.

tests/unit/test_backtest_fast.py checks trades and equity equal the per-candle path's.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from core.types import NO_SIGNAL, Side, Signal

if TYPE_CHECKING:
    from backtest.engine import SymbolData
    from backtest.fills import BacktestExecutor, FillModel
    from engine.bot import Bot

_SIDES = {1: Side.BUY, -1: Side.SELL}
_REASON = {1: "vectorised BUY", -1: "vectorised SELL"}
_PLAIN = {k: Signal(v, 0.0, _REASON[k]) for k, v in _SIDES.items()}


def vector_signals(bot: "Bot", data: "SymbolData") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sides int8, stop_loss, take_profit) arrays of the bot's strategy over ``data``."""
    strat = bot.strategy
    sides = strat.signals(data.opens, data.highs, data.lows, data.closes, data.volumes)  # type: ignore[attr-defined]
    stops, takes = strat.exit_levels(sides, data.closes)  # type: ignore[attr-defined]
    return sides, stops, takes


def run_fast(bot: "Bot", data: "SymbolData", model: "FillModel") -> np.ndarray:
    """Run ``bot`` over ``data`` visiting only event candles; returns equity per candle."""
    exe: BacktestExecutor = bot.executor  # type: ignore[assignment]
    sides, stops, takes = vector_signals(bot, data)
    n = len(data)
    sig_idx = np.flatnonzero(sides).tolist()
    sides_l = sides.tolist()
    highs, lows = data.highs, data.lows
    max_hold = bot.max_hold_candles

    visits: list[int] = []
    quotes: list[float] = []
    qtys: list[float] = []
    last = -1  # last visited candle
    p = 0  # next signal, index into sig_idx
    n_sig = len(sig_idx)
    while True:
        nxt = sig_idx[p] if p < n_sig else n
        pos = bot.position
        j = nxt
        if pos.is_open and last + 1 < n:
            # First candle after `last` where an exit fires, up to the next signal (inclusive:
            # exits are checked before the signal on the same candle).
            hi = min(nxt, n - 1)
            if max_hold:
                hi = min(hi, last + max(1, max_hold - bot.hold_candles))
            if pos.stop_loss is not None or pos.take_profit is not None:
                mask = model.trigger_mask(pos.quantity > 0, pos.stop_loss, pos.take_profit,
                                          highs[last + 1:hi + 1], lows[last + 1:hi + 1])
                k = int(mask.argmax())
                j = last + 1 + k if mask[k] else hi
            else:
                j = hi
        if j >= n:
            break
        c = data.candle(j)
        exe.at(c, data, j)
        if j == nxt:
            side = sides_l[j]
            stop, take = stops[j], takes[j]
            if stop != stop and take != take:  # both NaN: no protective exits, reuse one object
                sig = _PLAIN[side]
            else:
                sig = Signal(_SIDES[side], 0.0, _REASON[side], None if math.isnan(stop) else float(stop),
                             None if math.isnan(take) else float(take))
            p += 1
        else:
            sig = NO_SIGNAL
        bot.on_event(c, sig, skipped=j - last - 1)
        visits.append(j)
        quotes.append(bot.portfolio.quote)
        qtys.append(bot.position.quantity)
        last = j
    return equity_curve(n, data.closes, visits, quotes, qtys, bot.portfolio.starting_balance)


def equity_curve(n: int, closes: np.ndarray, visits: list[int], quotes: list[float], qtys: list[float],
                 start: float) -> np.ndarray:
    """Equity per candle from the (quote, quantity) state after each visited candle: the state
    holds until the next visit, so equity = quote + quantity * close (the per-candle formula)."""
    if not visits:
        return np.full(n, start, dtype=np.float64)
    which = np.full(n, -1, dtype=np.int64)
    which[np.asarray(visits, dtype=np.int64)] = np.arange(len(visits))
    which = np.maximum.accumulate(which)
    q = np.append(np.asarray(quotes, dtype=np.float64), start)[which]  # index -1 -> start
    x = np.append(np.asarray(qtys, dtype=np.float64), 0.0)[which]
    return q + x * closes
