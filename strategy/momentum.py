"""Momentum strategy with long and short signals, on the rate of change (ROC).

    ROC_t = 100 * (close_t / close_{t-window} - 1)          (percent)

BUY on the candle where ROC crosses above +threshold_pct (ROC_{t-1} <= +threshold < ROC_t),
SELL on the candle where it crosses below -threshold_pct (ROC_{t-1} >= -threshold > ROC_t),
NONE otherwise, so a long trend signals once, not on every candle.

Confidence = min(1, |ROC| / (2 * threshold_pct)): a signal fires with at least 0.5 (|ROC| just
past the threshold) and reaches 1.0 when |ROC| is twice the threshold.
"""
from __future__ import annotations

from typing import Sequence

from pydantic import Field

import numpy as np

from core.types import Candle, Side, Signal
from strategy.base import MAX_WINDOW, SIDE_BUY, SIDE_SELL, ExitParams, closes, exit_arrays, exit_prices, tail
from strategy.incremental import MomentumStepper, Stepper
from strategy.indicators import FloatArray, roc, roc_last

__all__ = ["MomentumParams", "MomentumStrategy"]


class MomentumParams(ExitParams):
    """Parameters of the ROC momentum strategy."""

    window: int = Field(default=20, ge=2, le=MAX_WINDOW, description="ROC look-back (candles)")
    # < 100: ROC can never fall below -100 %, so a larger threshold could never SELL
    threshold_pct: float = Field(default=2.0, gt=0, lt=100, description="|ROC| trigger, percent")


class MomentumStrategy:
    """ROC threshold crossings, both directions; see the module docstring."""

    name = "momentum"
    vectorised = True  # ROC is elementwise: the vector form is exact

    def __init__(self, params: MomentumParams) -> None:
        self.params = params
        # ROC on the last and the previous candle: window + 2 closes
        self.warmup = params.window + 2
        self.lookback = self.warmup

    def __repr__(self) -> str:
        return f"MomentumStrategy({self.params!r})"

    def evaluate(self, candles: Sequence[Candle]) -> Signal:
        n = len(candles)
        if n < self.warmup:
            return Signal.none(f"warming up: {n}/{self.warmup} candles")
        p = self.params
        c = closes(tail(candles, self.lookback))
        now, prev = roc_last(c, p.window), roc_last(c[:-1], p.window)
        if now is None or prev is None:
            return Signal.none("ROC undefined (non-positive close)")

        thr, label = p.threshold_pct, f"ROC({p.window})"
        if prev <= thr < now:
            side, verb, level = Side.BUY, "crossed above", f"+{thr:g}%"
        elif prev >= -thr > now:
            side, verb, level = Side.SELL, "crossed below", f"-{thr:g}%"
        else:
            bias = Side.BUY if now > thr else Side.SELL if now < -thr else Side.NONE  # what confirmation counts
            return Signal.none(f"no threshold cross: {label} {now:+.2f}% (threshold ±{thr:g}%)", bias)

        stop, take = exit_prices(side, float(c[-1]), p.stop_loss_pct, p.take_profit_pct)
        return Signal(
            side=side,
            confidence=min(1.0, abs(now) / (2.0 * thr)),
            reason=f"{label} {now:+.2f}% {verb} {level}",
            stop_loss=stop,
            take_profit=take,
        )

    def stepper(self) -> Stepper:
        """Opt-in running state (strategy.incremental): evaluate()'s answers in O(1) per candle."""
        return MomentumStepper(self)

    def signals(self, opens: FloatArray, highs: FloatArray, lows: FloatArray, closes: FloatArray,
                volumes: FloatArray) -> np.ndarray:
        """evaluate() on every closed prefix at once: +1 BUY, -1 SELL, 0 NONE."""
        c = np.asarray(closes, dtype=np.float64)
        out = np.zeros(len(c), dtype=np.int8)
        if len(c) < self.warmup:
            return out
        r = roc(c, self.params.window)
        prev, now = r[:-1], r[1:]
        thr = self.params.threshold_pct
        with np.errstate(invalid="ignore"):  # undefined ROC (NaN) never signals, as in evaluate()
            buy = (prev <= thr) & (thr < now)
            sell = (prev >= -thr) & (-thr > now)
        out[1:][buy] = SIDE_BUY
        out[1:][sell] = SIDE_SELL
        out[: self.warmup - 1] = 0
        return out

    def exit_levels(self, sides: np.ndarray, closes: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(stop_loss, take_profit) of each signal, as evaluate() would set them."""
        return exit_arrays(sides, closes, self.params.stop_loss_pct, self.params.take_profit_pct)
