"""What the strategy-platform features need of the fast path (``backtest.fast``): which candles it must
visit one by one, which protective levels a quiet stretch is searched with, and the candle history.

The fast path skips a candle only when the bar path would do nothing there. Three features break the
plain rule "nothing happens without a signal or a stop / take-profit / horizon / funding hit":

* **exits that move candle by candle** (``exits:`` trailing stop, move-to-breakeven, scale-out targets;
  ``engine.exits``): ``PositionExits.check`` moves the stop after every candle of an open position and
  takes targets the position's own levels do not show, so every candle is visited while such a position
  is open (the bar path's own ``Bot.on_event`` -> ``_open_bar`` code); flat stretches are still skipped.
  A position whose plan cannot move (ATR stop / take-profit only) keeps the quiet-stretch skip: its levels
  are the position's stop and take-profit (exits are for one-entry bots, so no tranche re-anchors them).
* **a signal policy** (``signals:`` confirmation, temperature, regime sizing; ``engine.signal_policy``):
  ``observe`` counts every evaluation of a run (a fresh signal or a no-signal whose ``bias`` is the run's
  side) and ``tighten`` cools the open position with that count. The vectorised signals carry neither
  bias nor confidence, so every visited candle runs the strategy's reference ``evaluate`` on the bar
  path's history window and the policy (``Bot.on_event(evaluate=True)``), and every candle is visited
  while a run is alive (``run_side`` set) and its length can still matter (``_run_counts``). With no
  run a no-signal candle changes nothing: ``observe`` keeps the policy reset, and ``tighten`` (held = 0,
  the closed trades unchanged between visits) gives the temperature and stop the last visit gave.
* **sizing that reads the signal or the candles** (``sizing.scale_by_confidence``; ``sizing.kind: atr``):
  the vectorised signals carry no confidence, so each *signal* candle runs the strategy's reference
  ``evaluate`` (``Bot.on_event(evaluate=True)``; its side equals the vectorised one, proven on every
  closed prefix) and the entry is sized on its confidence; ATR sizing reads the history at the signal
  candle. Entries happen on signal candles only, so no other candle is visited for them.
* **candle history** (ATR exits: ``stop_atr``, ``take_atr``, ``trailing_atr``; ATR sizing; and the
  evaluations above): before a visit ``bot.history`` is made to hold exactly the closed candles the bar
  path's deque holds there (the last ``history_window`` candles up to the visited one).

tests/unit/test_backtest_fast_platform.py checks trades, signals and equity equal the bar path's.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from core.types import Position, Side

if TYPE_CHECKING:
    from backtest.data import SymbolData
    from engine.bot import Bot

_NONE = Side.NONE
_SIDE_INT = {Side.BUY: 1, Side.SELL: -1}


class PlatformVisits:
    """One bot's needs on the fast path (module docstring); None from ``for_bot`` when it has none."""

    __slots__ = ("bot", "data", "moving_exits", "evaluate", "evaluate_signals", "keep_history", "hist_end")

    def __init__(self, bot: "Bot", data: "SymbolData") -> None:
        cfg = bot.exits.config
        self.bot, self.data = bot, data
        self.moving_exits = cfg is not None and (cfg.trailing_pct is not None or cfg.trailing_atr is not None
                                                 or cfg.breakeven_at_r is not None or bool(cfg.targets))
        self.evaluate = not bot.policy.plain  # every visited candle runs evaluate() and the policy
        # only the signal candles run evaluate(): the entry's size reads the signal's confidence
        self.evaluate_signals = bot.sizing.scale_by_confidence
        self.keep_history = (self.evaluate or self.evaluate_signals or bot.sizing.kind == "atr"
                             or (cfg is not None and cfg.needs_atr))
        self.hist_end = 0  # bot.history holds the candles before this index (when keep_history)

    @classmethod
    def for_bot(cls, bot: "Bot", data: "SymbolData") -> "PlatformVisits | None":
        visits = cls(bot, data)
        return visits if bot.exits.config is not None or visits.keep_history else None

    def evaluates(self, signal: bool) -> bool:
        """Does the visit run the strategy's ``evaluate`` (every visit under a policy; else a signal candle
        when the sizing reads the signal's confidence)?"""
        return self.evaluate or (signal and self.evaluate_signals)

    def every_candle(self, pos: Position, next_side: int) -> bool:
        """Must the candle after the last visited one be visited (no quiet stretch may be skipped)?
        ``next_side``: the next vectorised signal's side (1 BUY, -1 SELL, 0 none left)."""
        if self.evaluate and self._run_counts(next_side):
            return True
        return self.moving_exits and pos.quantity != 0.0 and self.bot.exits.active(pos)

    def _run_counts(self, next_side: int) -> bool:
        """Can the live run's length still change what the bot does? Not once the run has acted, when no
        temperature reads its length (none configured, or no open entry to cool) and the next fresh signal is
        not of its side: that signal starts a new run whatever happened to this one (and till then no
        no-signal candle can act), so the evaluations in between need not be counted."""
        pol = self.bot.policy
        side = pol.run_side
        if side is _NONE:
            return False
        if not pol.fired or (pol.config.temperature is not None and pol.entry is not None):
            return True
        return next_side == _SIDE_INT[side]

    def before_visit(self, j: int, signal: bool) -> None:
        """Make ``bot.history`` the bar path's deque at candle ``j`` (candles up to ``j``, at most its maxlen)
        when the visit reads it: every visit that evaluates, else (the exits' ATR, read at an entry) only a
        signal candle, the only kind an entry happens on without a policy."""
        if not (self.evaluate or (signal and self.keep_history)):
            return
        h = self.bot.history
        m = h.maxlen or 0
        start = self.hist_end
        if j + 1 - start >= m or start > j + 1:
            h.clear()
            start = max(0, j + 1 - m)
        candle = self.data.candle
        for i in range(start, j + 1):
            h.append(candle(i))
        self.hist_end = j + 1
