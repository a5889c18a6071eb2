"""Moving-average crossover strategy (SMA or EMA).

BUY when the fast average crosses above the slow one on the last closed candle, SELL when it
crosses below, NONE otherwise. "Crosses above" means fast <= slow on the previous candle and
fast > slow on the last one (mirror for below), so a cross that passes through exact equality
is still caught, once.

Confidence is the gap between the averages normalised by recent volatility:

    confidence = min(1, |fast - slow| / sigma)

where sigma is the population standard deviation of the last ``slow`` closes (1.0 if sigma is
0). A gap of one standard deviation of recent prices is full confidence; the measure is
scale-free, so it behaves the same on BTC and on a cheap altcoin, on 1m and on 1d candles.
"""
from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from core.types import Candle, Side, Signal
from strategy.base import (
    MAX_WINDOW,
    SIDE_BUY,
    SIDE_SELL,
    ExitParams,
    closes,
    exit_arrays,
    exit_prices,
    fmt_price,
    tail,
)
from strategy.incremental import EmaCrossStepper, SmaCrossStepper, Stepper
from strategy.indicators import FloatArray, ema_last, exact_pstd, sma, sma_last

__all__ = [
    "EMA_SEED_SPANS",
    "CrossoverParams",
    "CrossoverStrategy",
    "EmaCrossoverParams",
    "SmaCrossoverParams",
]

# EMAs are recomputed over the last (warmup + EMA_SEED_SPANS * slow) candles; the SMA seed then
# weighs about exp(-2 * EMA_SEED_SPANS) ~ 5e-5 in the slow EMA: negligible, and bounded cost.
EMA_SEED_SPANS = 5


class CrossoverParams(ExitParams):
    """Parameters of a moving-average crossover."""

    kind: Literal["sma", "ema"] = "sma"
    fast: int = Field(default=10, ge=2, le=MAX_WINDOW, description="fast average window (candles)")
    slow: int = Field(default=30, ge=2, le=MAX_WINDOW, description="slow average window (candles)")

    @field_validator("slow")
    @classmethod
    def _slow_above_fast(cls, slow: int, info: ValidationInfo) -> int:
        fast = info.data.get("fast")  # absent when fast itself failed validation
        if fast is not None and slow <= fast:
            raise ValueError(f"slow ({slow}) must be greater than fast ({fast})")
        return slow


class SmaCrossoverParams(CrossoverParams):
    """``sma_crossover``: kind is fixed to sma."""

    kind: Literal["sma"] = "sma"


class EmaCrossoverParams(CrossoverParams):
    """``ema_crossover``: kind is fixed to ema."""

    kind: Literal["ema"] = "ema"


def _defined(value: float | None) -> float:
    # the warmup check guarantees enough closes; a None here is a programming error
    if value is None:
        raise RuntimeError("moving average undefined after warmup")
    return value


class CrossoverStrategy:
    """Fast/slow moving-average crossover; see the module docstring for the rules."""

    def __init__(self, params: CrossoverParams) -> None:
        self.params = params
        self.name = f"{params.kind}_crossover"
        # both averages on the previous candle too: slow + 1 closes
        self.warmup = params.slow + 1
        self.lookback = self.warmup + (EMA_SEED_SPANS * params.slow if params.kind == "ema" else 0)
        self._avg = sma_last if params.kind == "sma" else ema_last
        self._label = params.kind.upper()
        # SMA has an exact vector form (bit-identical means); the EMA is re-seeded on each
        # bounded tail in evaluate(), which a whole-series EMA does not reproduce exactly.
        self.vectorised = params.kind == "sma"

    def __repr__(self) -> str:
        return f"CrossoverStrategy({self.params!r})"

    def evaluate(self, candles: Sequence[Candle]) -> Signal:
        n = len(candles)
        if n < self.warmup:
            return Signal.none(f"warming up: {n}/{self.warmup} candles")
        p = self.params
        c = closes(tail(candles, self.lookback))
        prev = c[:-1]
        fast, slow = _defined(self._avg(c, p.fast)), _defined(self._avg(c, p.slow))
        fast_prev, slow_prev = _defined(self._avg(prev, p.fast)), _defined(self._avg(prev, p.slow))

        f_lbl, s_lbl = f"{self._label}({p.fast})", f"{self._label}({p.slow})"
        if fast_prev <= slow_prev and fast > slow:
            side, verb = Side.BUY, "crossed above"
        elif fast_prev >= slow_prev and fast < slow:
            side, verb = Side.SELL, "crossed below"
        else:
            where = "above" if fast > slow else "below" if fast < slow else "equal to"
            bias = Side.BUY if fast > slow else Side.SELL if fast < slow else Side.NONE  # what confirmation counts
            return Signal.none(f"no cross: {f_lbl} {fmt_price(fast)} {where} {s_lbl} {fmt_price(slow)}", bias)

        sigma = exact_pstd(c[-p.slow:])
        confidence = 1.0 if sigma == 0.0 else min(1.0, abs(fast - slow) / sigma)
        stop, take = exit_prices(side, float(c[-1]), p.stop_loss_pct, p.take_profit_pct)
        return Signal(
            side=side,
            confidence=confidence,
            reason=f"{f_lbl} {fmt_price(fast)} {verb} {s_lbl} {fmt_price(slow)}",
            stop_loss=stop,
            take_profit=take,
        )

    def stepper(self) -> Stepper:
        """Opt-in running state (strategy.incremental): evaluate()'s answers in O(1) per candle."""
        return SmaCrossStepper(self) if self.params.kind == "sma" else EmaCrossStepper(self)

    def signals(self, opens: FloatArray, highs: FloatArray, lows: FloatArray, closes: FloatArray,
                volumes: FloatArray) -> np.ndarray:
        """evaluate() on every closed prefix at once (SMA only): +1 BUY, -1 SELL, 0 NONE."""
        if not self.vectorised:
            raise NotImplementedError("only the SMA crossover is vectorised; use evaluate()")
        c = np.asarray(closes, dtype=np.float64)
        out = np.zeros(len(c), dtype=np.int8)
        if len(c) < self.warmup:
            return out
        fast, slow = sma(c, self.params.fast), sma(c, self.params.slow)
        fp, sp, fn, sn = fast[:-1], slow[:-1], fast[1:], slow[1:]
        with np.errstate(invalid="ignore"):  # NaN before the windows fill compares False
            buy = (fp <= sp) & (fn > sn)
            sell = (fp >= sp) & (fn < sn)
        out[1:][buy] = SIDE_BUY
        out[1:][sell] = SIDE_SELL
        out[: self.warmup - 1] = 0  # a prefix shorter than warmup never signals
        return out

    def exit_levels(self, sides: np.ndarray, closes: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(stop_loss, take_profit) of each signal, as evaluate() would set them."""
        return exit_arrays(sides, closes, self.params.stop_loss_pct, self.params.take_profit_pct)
