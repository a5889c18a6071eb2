"""A signal bot's exits beyond the strategy's own stop and take-profit: the ``exits:`` section of its config
(``engine.exits`` applies it in every mode, backtests included; docs/strategies.md has examples).

R, the risk unit, is the entry's stop distance |entry - initial stop|.
"""
from __future__ import annotations

from pydantic import ConfigDict, Field, model_validator

from core.validation import StrictNumbers

__all__ = ["ExitsConfig"]


class ExitsConfig(StrictNumbers):
    """ATR stop / take-profit, trailing stop, breakeven and scale-out targets (module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    atr_period: int = Field(14, ge=2, le=40, description="Wilder ATR over the bot's candle history at the entry")
    stop_atr: float | None = Field(None, gt=0, le=100, description="stop at this many ATRs from the entry "
                                   "(replaces the strategy's stop)")
    take_atr: float | None = Field(None, gt=0, le=100, description="take-profit at this many ATRs from the entry "
                                   "(replaces the strategy's take-profit)")
    trailing_pct: float | None = Field(None, gt=0, lt=100, description="trail the stop this % behind the best "
                                       "price since the entry")
    trailing_atr: float | None = Field(None, gt=0, le=100, description="trail the stop this many entry ATRs "
                                       "behind the best price since the entry")
    breakeven_at_r: float | None = Field(None, gt=0, le=100, description="move the stop to the entry price once "
                                         "the best price is this many R in profit")
    targets: list[tuple[float, float]] = Field(default_factory=list, description="scale-out take-profits: "
                                               "[R multiple, % of the entry quantity], nearest first; the rest "
                                               "rides on the stop, trailing stop and take-profit")

    @model_validator(mode="after")
    def _check(self) -> "ExitsConfig":
        if self.trailing_pct is not None and self.trailing_atr is not None:
            raise ValueError("trailing_pct and trailing_atr: set one of them")
        rs = [t[0] for t in self.targets]
        if rs != sorted(rs) or len(set(rs)) != len(rs) or any(r <= 0 for r in rs):
            raise ValueError("targets: [R multiple, percent] pairs with R > 0, nearest first, each R once")
        if any(not 0 < p <= 100 for _, p in self.targets) or sum(p for _, p in self.targets) > 100:
            raise ValueError("targets: each percent in (0, 100], together at most 100")
        return self

    @property
    def needs_atr(self) -> bool:
        return self.stop_atr is not None or self.take_atr is not None or self.trailing_atr is not None
