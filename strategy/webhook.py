"""The ``webhook`` strategy: a bot whose signals arrive from outside (TradingView alerts or plain
JSON through the API's ``POST /webhook/{bot}``, as ``signal`` commands), not from its candles.

Its ``evaluate`` never signals; the worker turns each ``signal`` command into a ``Signal`` for
the bot, which then goes through the same risk engine and executor as any other. The params say
what an alert without its own levels gets: stop-loss and take-profit distances in percent of the
price (``ExitParams``), and the lowest confidence acted on.
"""
from __future__ import annotations

from typing import Sequence

from pydantic import Field

from core.types import Candle, Signal
from strategy.base import ExitParams

__all__ = ["WebhookParams", "WebhookStrategy"]


class WebhookParams(ExitParams):
    """Defaults for alerts: ``stop_loss_pct`` / ``take_profit_pct`` when an alert gives no level."""

    min_confidence: float = Field(0.0, ge=0, le=1, description="alerts below this confidence are not acted on")


class WebhookStrategy:
    name = "webhook"
    vectorised = False  # nothing to vectorise: it never signals from candles
    warmup = 1
    lookback = 1

    def __init__(self, params: WebhookParams) -> None:
        self.params = params

    def __repr__(self) -> str:
        return f"WebhookStrategy({self.params!r})"

    def evaluate(self, candles: Sequence[Candle]) -> Signal:
        return Signal.none("webhook bot: signals arrive as signal commands")
