"""Position sizing: how much quote an entry may use, chosen per bot.

Policies (``kind``):
  fixed_quote     value in quote, whatever the equity
  percent_equity  value% of current equity
  risk            risk_pct% of equity lost if the stop is hit: quote = equity·risk% / (stop distance / price)
                  (falls back to percent_equity with ``value`` when the signal has no stop)
  atr             like risk, with the stop distance = atr_mult × ATR(atr_period)
  kelly           fractional Kelly from the bot's own closed trades: f* = W − (1 − W)/R, size =
                  min(kelly_fraction·f*, kelly_cap_pct%) of equity; off (falls back to
                  percent_equity) until kelly_min_trades trades exist or when f* ≤ 0
Then two scalings: by signal confidence (≥ 0.8 → 1.0, ≥ 0.5 → 0.7, else 0.3) and by drawdown
(size × max(0, 1 − drawdown / max_drawdown): it shrinks to zero as the limit nears).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

from pydantic import ConfigDict, Field, model_validator

from core.validation import StrictNumbers

SizingKind = Literal["percent_equity", "fixed_quote", "risk", "atr", "kelly"]


class SizingPolicy(StrictNumbers):
    """A bot's sizing policy: the ``sizing:`` section of its config, read as is on every entry."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    kind: SizingKind = "percent_equity"
    value: float = Field(2.0, gt=0, description="percent_equity: % of equity; fixed_quote: quote amount; "
                                                "the fallback % for risk/atr/kelly")
    risk_pct: float = Field(1.0, gt=0, le=10, description="risk/atr: % of equity lost at the stop")
    atr_period: int = Field(14, ge=2, le=500)
    atr_mult: float = Field(2.0, gt=0, le=20)
    kelly_fraction: float = Field(0.25, gt=0, le=1)
    kelly_cap_pct: float = Field(2.0, gt=0, le=100)
    kelly_min_trades: int = Field(30, ge=5)
    scale_by_confidence: bool = False
    scale_by_drawdown: bool = False

    @model_validator(mode="after")
    def _range(self) -> "SizingPolicy":
        if self.kind != "fixed_quote" and self.value > 100:
            raise ValueError("value is a percent of equity here and must be at most 100")
        return self


@dataclass(slots=True, frozen=True)
class SizingInputs:
    equity: float
    price: float
    stop: float | None = None
    atr: float | None = None
    confidence: float = 1.0
    drawdown_pct: float = 0.0
    max_drawdown_pct: float | None = None
    trade_pnls: Sequence[float] = ()


def entry_quote(kind: str, value: float, equity: float) -> float:
    """percent_equity: value% of current equity; fixed_quote: value in quote, whatever the equity."""
    if kind == "percent_equity":
        return max(0.0, equity) * value / 100.0
    return value


def confidence_factor(confidence: float) -> float:
    if confidence >= 0.8:
        return 1.0
    if confidence >= 0.5:
        return 0.7
    return 0.3


def drawdown_factor(drawdown_pct: float, max_drawdown_pct: float | None) -> float:
    if not max_drawdown_pct:
        return 1.0
    return max(0.0, 1.0 - drawdown_pct / max_drawdown_pct)


def kelly_fraction(pnls: Sequence[float]) -> float | None:
    """f* = W − (1 − W)/R with W the win rate and R = avg win / |avg loss|; None when undefined."""
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p <= 0]
    if not wins or not losses:
        return None
    w = len(wins) / len(pnls)
    avg_loss = abs(sum(losses) / len(losses))
    if avg_loss == 0:
        return None
    r = (sum(wins) / len(wins)) / avg_loss
    return w - (1 - w) / r


def size_quote(p: SizingPolicy, x: SizingInputs) -> float:
    """Quote amount for an entry under policy p (before the risk engine's caps)."""
    eq = max(0.0, x.equity)
    base = entry_quote("percent_equity", p.value, eq)
    if p.kind == "fixed_quote":
        base = p.value
    elif p.kind in ("risk", "atr"):
        distance = None
        if p.kind == "risk" and x.stop is not None:
            distance = abs(x.price - x.stop)
        elif p.kind == "atr" and x.atr:
            distance = p.atr_mult * x.atr
        if distance:
            base = eq * p.risk_pct / 100.0 / (distance / x.price)
    elif p.kind == "kelly" and len(x.trade_pnls) >= p.kelly_min_trades:
        f = kelly_fraction(x.trade_pnls)
        if f is not None and f > 0:
            base = eq * min(p.kelly_fraction * f, p.kelly_cap_pct / 100.0)
    if p.scale_by_confidence:
        base *= confidence_factor(x.confidence)
    if p.scale_by_drawdown:
        base *= drawdown_factor(x.drawdown_pct, x.max_drawdown_pct)
    return max(0.0, base)
