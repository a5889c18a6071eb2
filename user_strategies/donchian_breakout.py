"""Example user strategy: a Donchian channel breakout (docs/strategies.md walks through it).

BUY on the candle whose close crosses above the highest high of the ``window`` candles before it,
SELL when it crosses below their lowest low. Confidence: how far past the channel the close went,
in channel widths (capped at 1). ``bias`` tells signal confirmation which side the market still
favours on candles without a new cross (close above / below the channel's middle).

It has both forms: ``evaluate`` (one closed-candle history -> Signal) and the vectorised ``signals``
(every candle at once) that lets backtests take the fast path; ``bot_manager.py strategy check
donchian_breakout`` proves they agree and that neither reads the future.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from core.types import Candle, Side, Signal
from strategy.base import SIDE_BUY, SIDE_SELL, exit_arrays, exit_prices, tail


class DonchianParams(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a typo in config.yaml is an error, not a silent default

    window: int = Field(20, ge=2, le=1000, description="channel length (candles)")
    stop_loss_pct: float | None = Field(None, gt=0, lt=100, description="stop distance, % of close")
    take_profit_pct: float | None = Field(None, gt=0, lt=100, description="target distance, % of close")


class DonchianBreakout:
    name = "donchian_breakout"
    Params = DonchianParams

    def __init__(self, params: DonchianParams) -> None:
        self.params = params
        self.warmup = params.window + 2  # the channel before the last candle and before the one before it
        self.lookback = self.warmup

    def evaluate(self, candles: Sequence[Candle]) -> Signal:
        w = self.params.window
        if len(candles) < self.warmup:
            return Signal.none(f"warming up: {len(candles)}/{self.warmup}")
        c = list(tail(candles, w + 2))
        upper, lower = max(x.high for x in c[1:-1]), min(x.low for x in c[1:-1])
        upper_prev, lower_prev = max(x.high for x in c[:-2]), min(x.low for x in c[:-2])
        close, prev = c[-1].close, c[-2].close
        if close > upper and prev <= upper_prev:
            side = Side.BUY
        elif close < lower and prev >= lower_prev:
            side = Side.SELL
        else:
            bias = Side.BUY if close > (upper + lower) / 2 else Side.SELL if close < (upper + lower) / 2 else Side.NONE
            return Signal.none(f"inside the {w}-candle channel {lower:.8g}..{upper:.8g}", bias=bias)
        width = max(upper - lower, 1e-12)
        stop, take = exit_prices(side, close, self.params.stop_loss_pct, self.params.take_profit_pct)
        return Signal(side, min(1.0, abs(close - (upper if side is Side.BUY else lower)) / width),
                      f"close {close:.8g} broke the {w}-candle channel {lower:.8g}..{upper:.8g}", stop, take)

    def signals(self, opens: np.ndarray, highs: np.ndarray, lows: np.ndarray, closes: np.ndarray,
                volumes: np.ndarray) -> np.ndarray:
        w = self.params.window
        c = np.asarray(closes, dtype=np.float64)
        out = np.zeros(len(c), dtype=np.int8)
        if len(c) < self.warmup:
            return out
        win_hi = np.lib.stride_tricks.sliding_window_view(np.asarray(highs, dtype=np.float64), w).max(axis=1)
        win_lo = np.lib.stride_tricks.sliding_window_view(np.asarray(lows, dtype=np.float64), w).min(axis=1)
        upper = np.full(len(c), np.nan)
        lower = np.full(len(c), np.nan)
        upper[w:] = win_hi[:-1]  # the channel of candle i: the w candles before it
        lower[w:] = win_lo[:-1]
        with np.errstate(invalid="ignore"):
            buy = (c[1:] > upper[1:]) & (c[:-1] <= upper[:-1])
            sell = (c[1:] < lower[1:]) & (c[:-1] >= lower[:-1])
        out[1:][buy] = SIDE_BUY
        out[1:][sell] = SIDE_SELL
        out[: self.warmup - 1] = 0
        return out

    def exit_levels(self, sides: np.ndarray, closes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return exit_arrays(sides, closes, self.params.stop_loss_pct, self.params.take_profit_pct)
