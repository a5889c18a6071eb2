"""What a signal bot does with its strategy's signals before acting on them: confirmation and temperature
(``strategy.signal_settings.SignalPolicyConfig``, the bot's ``signals:`` section).

``SignalPolicy.observe`` is called once per evaluation (each closed candle) with the strategy's signal and
returns the signal to act on:

* A *run* starts on a fresh BUY or SELL and lasts while each following evaluation is a fresh signal of the
  same side or a no-signal whose ``bias`` is that side; anything else ends it. The run's first signal acts
  once the run has lasted ``confirm_candles`` evaluations (its stop / take-profit moved to the current close
  at the same relative distance); a later fresh signal of the same run acts when it comes (as today). With
  ``confirm_candles: 1`` every fresh signal acts at once and nothing else does: today's behaviour.
* The acted signal gets a ``temperature`` (formula in ``TemperatureConfig``); ``size_scale`` gives the band's
  share of the sized entry. While the position is open, ``tighten`` recomputes the temperature with the run's
  current length (0 once it ended: the signal cooled) and moves the stop closer, to
  ``stop_floor + (1 - stop_floor) * T`` of the entry's stop distance, never farther.

The worker's Bot and the backtester's bar path call the same object on the same candles, so a backtest and a
paper run take the same trades. The backtest's fast path visits every candle of a live run and calls it there
too (``backtest.fast_visits``).
"""
from __future__ import annotations

import dataclasses
from collections import deque
from typing import Sequence

from core.types import Candle, Position, Side, Signal
from strategy.signal_settings import SignalPolicyConfig

__all__ = ["SignalPolicy"]

_NONE = Side.NONE
REGIME_CHANGES_KEPT = 50  # regime changes a bot shows (its snapshot's regime_history)


class SignalPolicy:
    """One bot's confirmation and temperature state (module docstring)."""

    __slots__ = ("config", "plain", "run_side", "run_len", "run_signal", "run_close", "fired", "entry", "regime",
                 "regimes")

    def __init__(self, config: SignalPolicyConfig | None = None) -> None:
        self.config = config or SignalPolicyConfig()
        self.plain = self.config.plain
        self.run_side: Side = _NONE
        self.run_len = 0
        self.run_signal: Signal | None = None
        self.run_close = 0.0
        self.fired = False
        # the open position's entry: (side, entry close, initial stop distance, confidence)
        self.entry: tuple[Side, float, float | None, float, str] | None = None  # + regime
        self.regime = ""  # the market regime of the latest evaluation (regime_switch strategies)
        self.regimes: deque[tuple[int, str]] = deque(maxlen=REGIME_CHANGES_KEPT)  # (candle open time, new regime)

    def observe(self, sig: Signal, candle: Candle, trade_pnls: Sequence[float]) -> Signal:
        """The signal to act on for this evaluation of closed ``candle`` (``NO_SIGNAL``-like when none)."""
        if sig.regime != self.regime and sig.regime:
            self.regime = sig.regime
            self.regimes.append((candle.open_time, sig.regime))
        if self.plain:
            return sig
        close = candle.close
        side = sig.side
        if side is not _NONE:
            if side is self.run_side:
                self.run_len += 1
            else:
                self.run_side, self.run_len, self.run_signal, self.run_close, self.fired = side, 1, sig, close, False
        elif self.run_side is not _NONE and sig.bias is self.run_side:
            self.run_len += 1
        else:
            self.run_side, self.run_len, self.run_signal, self.fired = _NONE, 0, None, False
            return sig
        n = self.config.confirm_candles
        if self.run_len < n or (side is _NONE and self.fired):
            return Signal.none(f"{self.run_side.value} held {self.run_len}/{n}" if not self.fired else sig.reason,
                               bias=sig.bias)
        first = not self.fired
        self.fired = True
        act = sig if side is not _NONE else self._moved(self.run_signal, self.run_close, close)  # type: ignore[arg-type]
        if first and n > 1:
            act = dataclasses.replace(act, reason=f"{act.reason} (held {self.run_len} candles)")
        if self.config.temperature is not None:
            act = dataclasses.replace(act, temperature=self.temperature(act.confidence, self.run_len, trade_pnls,
                                                                        act.regime))
        return act

    @staticmethod
    def _moved(sig: Signal, then: float, now: float) -> Signal:
        """``sig``'s levels moved from its own close to ``now``, at the same relative distance."""
        if then <= 0:
            return sig
        k = now / then
        return dataclasses.replace(sig, stop_loss=None if sig.stop_loss is None else sig.stop_loss * k,
                                   take_profit=None if sig.take_profit is None else sig.take_profit * k)

    def temperature(self, confidence: float, held: int, trade_pnls: Sequence[float], regime: str = "") -> float:
        t = self.config.temperature
        assert t is not None
        recent = trade_pnls[-t.accuracy_trades:]
        accuracy = sum(1 for p in recent if p > 0) / len(recent) if recent else 0.5
        held_score = min(1.0, held / t.hold_full)
        w = t.confidence_weight + t.held_weight + t.accuracy_weight
        raw = (t.confidence_weight * min(1.0, max(0.0, confidence)) + t.held_weight * held_score
               + t.accuracy_weight * accuracy) / w
        return round(min(1.0, max(0.0, raw)) * t.regime_factor.get(regime, 1.0), 6)

    def size_scale(self, sig: Signal) -> float:
        """The share of the sized entry the signal's temperature band and its regime allow (1: all of it)."""
        if self.plain:
            return 1.0
        t = self.config.temperature
        scale = self.config.regime_size.get(sig.regime, 100.0) / 100.0
        if t is None or sig.temperature is None:
            return scale
        return scale * next(pct for lo, pct in t.size_bands if sig.temperature >= lo) / 100.0

    def opened(self, sig: Signal, close: float, pos: Position) -> None:
        """An entry on ``sig`` filled: remember it for the stop tightening, the temperature on the position."""
        pos.temperature, pos.regime = sig.temperature, sig.regime
        if self.config.temperature is None:
            return  # nothing to cool or tighten
        dist = None if pos.stop_loss is None else abs(pos.avg_entry - pos.stop_loss)
        self.entry = (sig.side, pos.avg_entry, dist, sig.confidence, sig.regime)

    def tighten(self, pos: Position | None, trade_pnls: Sequence[float]) -> None:
        """After each evaluation, before the bot acts: cool the open position's temperature with the run's
        length now and tighten its stop with it."""
        t = self.config.temperature
        if t is None or self.entry is None:
            return
        if pos is None or not pos.is_open:
            self.entry = None
            return
        side, entry, dist, confidence, regime = self.entry
        held = self.run_len if self.run_side is side else 0
        temp = self.temperature(confidence, held, trade_pnls, regime)
        pos.temperature = temp
        if t.stop_floor is None or dist is None or pos.stop_loss is None:
            return
        d = dist * (t.stop_floor + (1.0 - t.stop_floor) * temp)
        stop = entry - d if side is Side.BUY else entry + d
        if (side is Side.BUY and stop > pos.stop_loss) or (side is Side.SELL and stop < pos.stop_loss):
            pos.stop_loss = stop
