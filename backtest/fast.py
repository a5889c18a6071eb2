"""The fast path: the same Bot order code, visited only on event candles.

For a strategy with an exact vectorised ``signals()`` (proven equal to evaluate() on every
closed prefix, tests/unit/test_backtest_signals.py), nothing can happen on a candle that has no
signal unless a position is open and its stop, take-profit or time horizon triggers there, or (a USD-M
bot with funding, ``executors.funding``) it closes on a funding time. So:

1. compute every signal at once (numpy);
2. walk the events: the next signal, or, while a position is open, the first candle where
   ``FillModel.trigger_mask`` (the vector form of the exit check) or the horizon fires, found
   with a numpy search over the stretch up to the next signal, or the next funding candle;
3. on each event call ``Bot.on_event`` (exits, risk check, executor, portfolio: the very code
   ghost/paper run), telling it how many quiet candles it skipped;
4. between events quote and quantity are constant, so the equity curve is
   quote + quantity * close, filled in with numpy.

tests/unit/test_backtest_fast.py checks trades and equity equal the per-candle path's.

Exits that move candle by candle and a signal policy (confirmation, temperature, regime sizing) add
visits: ``backtest.fast_visits`` says which candles they need (every candle of an open position with a
moving exit plan, every candle of a live signal run, evaluated with the strategy's ``evaluate``) and
keeps the candle history they read (tests/unit/test_backtest_fast_platform.py).

The vectorised signals carry confidence 0.0 and the plain walk keeps no candle history: a bot whose
sizing reads either (``scale_by_confidence``, ``kind: atr``) evaluates its signal candles with the
strategy's reference ``evaluate`` on the bar path's history (``backtest.fast_visits`` again).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from backtest.fast_visits import PlatformVisits
from core.types import NO_SIGNAL, Candle, Side, Signal
from executors.funding import FUNDING_EVERY_MS

if TYPE_CHECKING:
    from backtest.data import SymbolData
    from backtest.fills import BacktestExecutor, FillModel
    from engine.bot import Bot

_SIDES = {1: Side.BUY, -1: Side.SELL}
_REASON = {1: "vectorised BUY", -1: "vectorised SELL"}
_PLAIN = {k: Signal(v, 0.0, _REASON[k]) for k, v in _SIDES.items()}


def vector_signals(bot: "Bot", data: "SymbolData") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sides int8, stop_loss, take_profit) arrays of the bot's strategy over ``data``."""
    strat = bot.strategy
    sides = strat.signals(data.opens, data.highs, data.lows, data.closes, data.volumes)  # type: ignore[attr-defined]
    hlc = getattr(strat, "exit_levels_hlc", None)  # levels that need the highs and lows too (ATR-sized)
    stops, takes = (hlc(sides, data.highs, data.lows, data.closes) if hlc is not None
                    else strat.exit_levels(sides, data.closes))  # type: ignore[attr-defined]
    return sides, stops, takes


def run_fast(bot: "Bot", data: "SymbolData", model: "FillModel") -> np.ndarray:
    """Run ``bot`` over ``data`` visiting only event candles; returns equity per candle."""
    exe: BacktestExecutor = bot.executor  # type: ignore[assignment]
    sides, stops, takes = vector_signals(bot, data)
    n = len(data)
    sig = np.flatnonzero(sides)
    sig_idx = sig.tolist()
    sides_l = sides[sig].tolist()
    # The signal candles, built in one go from columns gathered with numpy (a per-candle
    # Candle(...) from numpy scalars costs several times more); exit-only candles are rare.
    sym, iv = data.symbol, data.interval
    if data._candles is not None:
        sig_candles = [data._candles[i] for i in sig_idx]
    else:
        sig_candles = [Candle(sym, t, o, h, lo, c, v, iv) for t, o, h, lo, c, v in zip(
            data.times[sig].tolist(), data.opens[sig].tolist(), data.highs[sig].tolist(),
            data.lows[sig].tolist(), data.closes[sig].tolist(), data.volumes[sig].tolist())]
    stops_l, takes_l = stops[sig].tolist(), takes[sig].tolist()
    highs, lows = data.highs, data.lows
    max_hold = bot.max_hold_candles
    positions, symbol, pf = bot.portfolio.positions, bot.symbol, bot.portfolio
    on_event, at, trigger_mask = bot.on_event, exe.at, model.trigger_mask
    settle = bot.control_sim.settle  # type: ignore[attr-defined]

    watch = MonitorWatch(bot, data) if _watches_equity(bot) else None
    plat = PlatformVisits.for_bot(bot, data)  # exits / signal policy: the candles they need (fast_visits)
    funding = funding_candles(data, bot.interval_ms) if bot.funding_model is not None else None

    visits: list[int] = []
    quotes: list[float] = []
    qtys: list[float] = []
    last = -1  # last visited candle
    p = 0  # next signal, index into sig_idx
    n_sig = len(sig_idx)
    while True:
        nxt = sig_idx[p] if p < n_sig else n
        pos = positions.get(symbol) or bot.position
        j = nxt
        if plat is not None and last + 1 < n and plat.every_candle(pos, sides_l[p] if p < n_sig else 0):
            j = last + 1
        elif pos.quantity != 0.0 and last + 1 < n:
            # First candle after `last` where an exit fires, up to the next signal (inclusive:
            # exits are checked before the signal on the same candle).
            hi = min(nxt, n - 1)
            if max_hold:
                hi = min(hi, last + max(1, max_hold - bot.hold_candles))
            if funding is not None:  # the position settles funding on the next funding candle
                f = int(np.searchsorted(funding, last + 1))
                if f < len(funding):
                    hi = min(hi, int(funding[f]))
            if pos.stop_loss is not None or pos.take_profit is not None:
                mask = trigger_mask(pos.quantity > 0, pos.stop_loss, pos.take_profit,
                                    highs[last + 1:hi + 1], lows[last + 1:hi + 1])
                k = int(mask.argmax())
                j = last + 1 + k if mask[k] else hi
            else:
                j = hi
        if watch is not None and last + 1 < n:
            # The monitor's equity limits (loss, drawdown) can fire on a quiet candle: make the
            # first candle where one could fire an event, and replay the quiet candles that move
            # the monitor's state (day/week opens, the high-water candle) before the event.
            j = watch.before_event(last, min(j, n - 1) if j < n else n - 1, pf.quote,
                                   (positions.get(symbol) or bot.position).quantity, j < n)
        if j >= n:
            break
        if j == nxt:
            c = sig_candles[p]
            side = sides_l[p]
            stop, take = stops_l[p], takes_l[p]
            if stop != stop and take != take:  # both NaN: no protective exits, reuse one object
                s = _PLAIN[side]
            else:
                s = Signal(_SIDES[side], 0.0, _REASON[side], None if math.isnan(stop) else stop,
                           None if math.isnan(take) else take)
            p += 1
        else:
            c = data.candle(j)
            s = NO_SIGNAL
        at(c, data, j)
        if plat is None:
            on_event(c, s, j - last - 1)
        else:
            plat.before_visit(j, j == nxt)
            on_event(c, s, j - last - 1, plat.evaluates(j == nxt))
        if bot._pending:  # a breach: the control flattens / tightens before the state is read
            settle(bot)
        visits.append(j)
        quotes.append(pf.quote)
        qtys.append((positions.get(symbol) or bot.position).quantity)
        last = j
    return equity_curve(n, data.closes, visits, quotes, qtys, bot.portfolio.starting_balance)


DAY_MS = 86_400_000


def funding_candles(data: "SymbolData", interval_ms: int) -> np.ndarray:
    """Indices of the candles a funding time falls on (``executors.funding``): the first candle whose close
    reaches a funding time after the previous candle's close (a gap in the data moves it to the next one)."""
    k = (data.times + interval_ms) // FUNDING_EVERY_MS
    crossed = np.zeros(len(k), dtype=bool)
    crossed[1:] = k[1:] > k[:-1]
    return np.flatnonzero(crossed)


def _watches_equity(bot: "Bot") -> bool:
    from backtest.build import EQUITY_LIMITS

    mon = bot.monitor
    return mon is not None and any(getattr(mon.limits, k) is not None for k in EQUITY_LIMITS)


class MonitorWatch:
    """Keeps the fast path's risk monitor exactly where the per-candle path's would be.

    The per-candle path calls ``RiskMonitor.observe(close time, equity)`` on every candle. Between
    two events equity is ``quote + qty * close`` (constant when flat), so for the quiet candles
    (last, j) this class

    * finds, vectorised, every candle where a daily/weekly loss or drawdown breach *could* fire
      (the monitor's own comparisons, ignoring "already alerted": a superset), and moves the
      next event there when it comes before ``j``;
    * replays into the monitor the quiet candles that change its state: the first candle of each
      new UTC day and ISO week (their opening equity) and the highest-equity candle (the
      high-water mark). No breach can fire on them (they are not candidates), so the monitor ends
      in the state candle-by-candle observation would leave.

    tests/unit/test_backtest_monitor.py checks fast == bar with these limits on.
    """

    def __init__(self, bot: "Bot", data: "SymbolData") -> None:
        assert bot.monitor is not None
        self.bot, self.mon, self.lim = bot, bot.monitor, bot.monitor.limits
        self.close_times = data.times + bot.interval_ms  # the bot's 'now' on each candle
        self.closes = data.closes
        self.days = self.close_times // DAY_MS
        self.weeks = (self.days + 3) // 7  # Monday-based: 1970-01-01 was a Thursday (ISO weeks)

    def before_event(self, last: int, j: int, quote: float, qty: float, j_is_event: bool) -> int:
        """Quiet candles are last+1 .. j-1 (j itself too when it is no event); returns the event."""
        a = last + 1
        b = j if j_is_event else j + 1  # exclusive end of the quiet stretch
        if b <= a:
            return j if j_is_event else j + 1
        s, lim = self.mon.s, self.lim
        eq = quote + qty * self.closes[a:b]
        days, weeks = self.days[a:b], self.weeks[a:b]
        prev_day = self.days[last] if last >= 0 and s.day else -1
        prev_week = self.weeks[last] if last >= 0 and s.week else -1
        new_day = np.empty(b - a, dtype=bool)
        new_day[0] = days[0] != prev_day
        new_day[1:] = days[1:] != days[:-1]
        new_week = np.empty(b - a, dtype=bool)
        new_week[0] = weeks[0] != prev_week
        new_week[1:] = weeks[1:] != weeks[:-1]
        cand = np.zeros(b - a, dtype=bool)
        if qty != 0.0:
            ar = np.arange(b - a)
            if lim.daily_loss_value is not None or lim.daily_loss_pct is not None:
                cand |= _loss_hit(eq, _opens(eq, new_day, ar, s.day_open), lim.daily_loss_value, lim.daily_loss_pct)
            if lim.weekly_loss_value is not None or lim.weekly_loss_pct is not None:
                cand |= _loss_hit(eq, _opens(eq, new_week, ar, s.week_open), lim.weekly_loss_value,
                                  lim.weekly_loss_pct)
            if lim.max_drawdown_pct is not None:
                hw = np.maximum(np.maximum.accumulate(eq), s.high_water)
                with np.errstate(divide="ignore", invalid="ignore"):
                    cand |= (hw > 0) & (100.0 * (hw - eq) / hw >= lim.max_drawdown_pct)
        k = int(cand.argmax()) if cand.any() else b - a
        # replay the state-moving quiet candles before the event (all of them are < a + k)
        keys = np.flatnonzero(new_day[:k] | new_week[:k]).tolist()
        if k and qty != 0.0:
            keys.append(int(eq[:k].argmax()))
        for i in sorted(set(keys)):
            self.bot.queue_breaches(self.mon.observe(int(self.close_times[a + i]), float(eq[i])))
        if k < b - a:
            return a + k
        return j if j_is_event else j + 1


def _opens(eq: np.ndarray, new: np.ndarray, ar: np.ndarray, current_open: float) -> np.ndarray:
    """Each candle's period opening equity: eq at the period's first candle, else the open the
    monitor already holds (the stretch starts inside its period)."""
    idx = np.maximum.accumulate(np.where(new, ar, -1))
    return np.where(idx >= 0, eq[np.maximum(idx, 0)], current_open)


def _loss_hit(eq: np.ndarray, opens: np.ndarray, value: float | None, pct: float | None) -> np.ndarray:
    """risk.monitor._hit, vectorised."""
    loss = opens - eq
    out = np.zeros(len(eq), dtype=bool)
    if value is not None:
        out |= loss >= value
    if pct is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            out |= (opens > 0) & (100.0 * loss / opens >= pct)
    return out


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
