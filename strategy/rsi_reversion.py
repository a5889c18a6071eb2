"""RSI mean-reversion strategy (Wilder RSI).

BUY when RSI crosses back above ``oversold`` (RSI_{t-1} <= oversold < RSI_t), SELL when it
crosses back below ``overbought`` (RSI_{t-1} >= overbought > RSI_t), NONE otherwise. Waiting
for the cross *back* avoids buying into a falling knife while RSI is still sinking.

Confidence measures how deep the excursion was, over the ``period`` RSI values before the
signal candle:

    BUY:  min(1, (oversold - min RSI) / oversold)
    SELL: min(1, (max RSI - overbought) / (100 - overbought))

so RSI dipping to 0 (or peaking at 100) is full confidence and a barely-touched level is ~0.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from core.types import Candle, Side, Signal
from strategy.base import MAX_WINDOW, ExitParams, closes, exit_prices, tail
from strategy.incremental import RsiStepper, Stepper
from strategy.indicators import rsi

__all__ = ["RSI_SEED_PERIODS", "RsiReversionParams", "RsiReversionStrategy"]

# RSI is recomputed over the last (warmup + RSI_SEED_PERIODS * period) candles; Wilder's seed
# then weighs about exp(-RSI_SEED_PERIODS) ~ 5e-5: negligible, and bounded cost.
RSI_SEED_PERIODS = 10


class RsiReversionParams(ExitParams):
    """Parameters of the RSI mean-reversion strategy."""

    period: int = Field(default=14, ge=2, le=MAX_WINDOW, description="RSI period (candles)")
    oversold: float = Field(default=30.0, gt=0, lt=100, description="BUY on crossing back above this")
    overbought: float = Field(default=70.0, gt=0, lt=100, description="SELL on crossing back below this")

    @field_validator("overbought")
    @classmethod
    def _overbought_above_oversold(cls, overbought: float, info: ValidationInfo) -> float:
        oversold = info.data.get("oversold")  # absent when oversold itself failed validation
        if oversold is not None and overbought <= oversold:
            raise ValueError(f"overbought ({overbought:g}) must be greater than oversold ({oversold:g})")
        return overbought


class RsiReversionStrategy:
    """RSI crossing back out of oversold / overbought; see the module docstring."""

    name = "rsi_reversion"

    def __init__(self, params: RsiReversionParams) -> None:
        self.params = params
        # RSI is defined from close index `period`; we need it on the previous candle too
        self.warmup = params.period + 2
        self.lookback = self.warmup + RSI_SEED_PERIODS * params.period

    def __repr__(self) -> str:
        return f"RsiReversionStrategy({self.params!r})"

    def evaluate(self, candles: Sequence[Candle]) -> Signal:
        n = len(candles)
        if n < self.warmup:
            return Signal.none(f"warming up: {n}/{self.warmup} candles")
        p = self.params
        r = rsi(closes(tail(candles, self.lookback)), p.period)
        now, prev = float(r[-1]), float(r[-2])
        window = r[-1 - p.period:-1]  # the `period` RSI values before the signal candle
        label = f"RSI({p.period})"

        if prev <= p.oversold < now:
            low = float(np.nanmin(window))
            side = Side.BUY
            confidence = (p.oversold - low) / p.oversold
            reason = f"{label} {now:.1f} crossed back above oversold {p.oversold:g} (low {low:.1f})"
        elif prev >= p.overbought > now:
            high = float(np.nanmax(window))
            side = Side.SELL
            confidence = (high - p.overbought) / (100.0 - p.overbought)
            reason = f"{label} {now:.1f} crossed back below overbought {p.overbought:g} (high {high:.1f})"
        else:
            # a reversal holds while RSI is back inside the bands on its side of 50 (what confirmation counts)
            bias = Side.BUY if p.oversold < now < 50 else Side.SELL if 50 < now < p.overbought else Side.NONE
            return Signal.none(f"no reversal: {label} {now:.1f} (bands {p.oversold:g}/{p.overbought:g})", bias)

        stop, take = exit_prices(side, float(candles[-1].close), p.stop_loss_pct, p.take_profit_pct)
        return Signal(
            side=side,
            confidence=min(1.0, max(0.0, confidence)),
            reason=reason,
            stop_loss=stop,
            take_profit=take,
        )

    def stepper(self) -> Stepper:
        """Opt-in running state (strategy.incremental): evaluate()'s answers in O(1) per candle."""
        return RsiStepper(self)
