"""Momentum with the ATR-risk template: a fast/slow moving-average cross, its stop one risk unit away and
its take-profit two (the seeds' "TP at 2 x risk, SL at 1 x risk"), confidence from momentum.

    risk       = risk_atr * ATR_t,   ATR_t = mean(TR over the last atr_period candles)
    BUY  when SMA(fast) crosses above SMA(slow):  stop = close - risk,  take = close + reward_risk * risk
    SELL when it crosses below:                   stop = close + risk,  take = close - reward_risk * risk
    confidence = min(1, max(0, d * (close_t - close_{t-momentum}) / (2 * ATR_t)))   (d = +1 BUY, -1 SELL)

so a cross backed by a move of two ATRs over ``momentum`` candles in its direction is full confidence, and a
cross against the recent move is 0. ATR here is the *simple* mean of the true range (not Wilder's recursive
one), so the vectorised form is exact and backtests take the fast path. The cross rule is the crossovers'
(previous fast <= slow, now fast > slow); ``bias`` is the side the averages favour (confirmation).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from core.types import Candle, Side, Signal
from core.validation import StrictNumbers
from strategy.base import MAX_WINDOW, SIDE_BUY, SIDE_SELL, fmt_price, tail
from strategy.indicators import FloatArray, sma, sma_last, true_range

__all__ = ["MomentumAtrParams", "MomentumAtrStrategy"]


class MomentumAtrParams(StrictNumbers):
    """Parameters of ``momentum_atr``."""

    fast: int = Field(10, ge=2, le=MAX_WINDOW, description="fast SMA window (candles)")
    slow: int = Field(30, ge=3, le=MAX_WINDOW, description="slow SMA window (candles)")
    atr_period: int = Field(14, ge=2, le=MAX_WINDOW, description="candles the ATR averages")
    risk_atr: float = Field(1.0, gt=0, le=50, description="one risk unit, in ATRs (the stop distance)")
    reward_risk: float = Field(2.0, gt=0, le=50, description="take-profit distance in risk units")
    momentum: int = Field(10, ge=1, le=MAX_WINDOW, description="candles the confidence's move is measured over")

    @field_validator("slow")
    @classmethod
    def _slow_above_fast(cls, slow: int, info: ValidationInfo) -> int:
        fast = info.data.get("fast")
        if fast is not None and slow <= fast:
            raise ValueError(f"slow ({slow}) must be greater than fast ({fast})")
        return slow


class MomentumAtrStrategy:
    """SMA cross with ATR-sized stop and take-profit (module docstring)."""

    name = "momentum_atr"
    vectorised = True

    def __init__(self, params: MomentumAtrParams) -> None:
        self.params = params
        p = params
        self.warmup = max(p.slow + 1, p.atr_period + 1, p.momentum + 1)
        self.lookback = self.warmup

    def __repr__(self) -> str:
        return f"MomentumAtrStrategy({self.params!r})"

    def evaluate(self, candles: Sequence[Candle]) -> Signal:
        n = len(candles)
        if n < self.warmup:
            return Signal.none(f"warming up: {n}/{self.warmup} candles")
        p = self.params
        w = list(tail(candles, self.lookback))
        c = np.fromiter((x.close for x in w), np.float64, len(w))
        fast, slow = sma_last(c, p.fast), sma_last(c, p.slow)
        fast_prev, slow_prev = sma_last(c[:-1], p.fast), sma_last(c[:-1], p.slow)
        assert fast is not None and slow is not None and fast_prev is not None and slow_prev is not None
        if fast_prev <= slow_prev and fast > slow:
            side = Side.BUY
        elif fast_prev >= slow_prev and fast < slow:
            side = Side.SELL
        else:
            bias = Side.BUY if fast > slow else Side.SELL if fast < slow else Side.NONE
            return Signal.none(f"no cross: SMA({p.fast}) {fmt_price(fast)} vs SMA({p.slow}) {fmt_price(slow)}", bias)
        h = np.fromiter((x.high for x in w), np.float64, len(w))
        lo = np.fromiter((x.low for x in w), np.float64, len(w))
        atr = sma_last(true_range(h, lo, c), p.atr_period)
        assert atr is not None
        d = 1.0 if side is Side.BUY else -1.0
        close = float(c[-1])
        risk = p.risk_atr * atr
        move = close - float(c[-1 - p.momentum])
        conf = 0.0 if atr <= 0 else min(1.0, max(0.0, d * move / (2.0 * atr)))
        return Signal(side, conf, f"SMA({p.fast}) crossed {'above' if d > 0 else 'below'} SMA({p.slow}); "
                                  f"ATR {fmt_price(atr)}, move {fmt_price(move)}",
                      close - d * risk, close + d * p.reward_risk * risk)

    def signals(self, opens: FloatArray, highs: FloatArray, lows: FloatArray, closes: FloatArray,
                volumes: FloatArray) -> np.ndarray:
        """evaluate() on every closed prefix at once: +1 BUY, -1 SELL, 0 NONE."""
        c = np.asarray(closes, dtype=np.float64)
        out = np.zeros(len(c), dtype=np.int8)
        if len(c) < self.warmup:
            return out
        fast, slow = sma(c, self.params.fast), sma(c, self.params.slow)
        with np.errstate(invalid="ignore"):
            buy = (fast[:-1] <= slow[:-1]) & (fast[1:] > slow[1:])
            sell = (fast[:-1] >= slow[:-1]) & (fast[1:] < slow[1:])
        out[1:][buy] = SIDE_BUY
        out[1:][sell] = SIDE_SELL
        out[: self.warmup - 1] = 0
        return out

    def exit_levels_hlc(self, sides: np.ndarray, highs: FloatArray, lows: FloatArray, closes: FloatArray
                        ) -> tuple[FloatArray, FloatArray]:
        """(stop_loss, take_profit) of each signal as evaluate() sets them (it needs the highs and lows too)."""
        p = self.params
        c = np.asarray(closes, dtype=np.float64)
        atr = sma(true_range(highs, lows, c), p.atr_period)
        d = sides.astype(np.float64)
        risk = p.risk_atr * atr
        stop, take = c - d * risk, c + d * p.reward_risk * risk
        none = sides == 0
        stop[none] = np.nan
        take[none] = np.nan
        return stop, take

    def exit_levels(self, sides: np.ndarray, closes: FloatArray) -> tuple[FloatArray, FloatArray]:
        raise NotImplementedError("momentum_atr's levels need the highs and lows: exit_levels_hlc")
