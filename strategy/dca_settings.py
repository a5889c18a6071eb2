"""A DCA bot's settings: the ``dca:`` section of its config, the dashboard's DCA form and the payload of
the ``upsert_dca_bot`` command are all this model."""
from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from core.validation import StrictNumbers

from strategy.dca_params import DcaParams, DcaParamsError


class DcaConfig(StrictNumbers):
    """A DCA bot's deal settings (3Commas semantics; formulas in docs/dca.md): the ladder's parameters,
    whose rules are ``DcaParams``' (checked through ``params()``, once), and the deal management
    settings (trailing, stop timeout, cooldown, price range, ...), whose rules are here."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    base_order: float = Field(description="quote amount of the base order")
    safety_order: float = Field(description="quote amount of SO1")
    deviation_pct: float
    step_scale: float = 1.0
    volume_scale: float = 1.0
    max_safety_orders: int = 0
    active_safety_orders: int | None = None
    take_profit_pct: float = Field(1.0, le=1000)
    take_profit_type: Literal["total", "base"] = "total"
    take_profit_steps: list[tuple[float, float]] = Field(default_factory=list,
                                                         description="(amount %, profit %) pairs; amounts sum to 100")
    trailing_take_profit_pct: float | None = Field(None, gt=0, lt=100)
    stop_loss_pct: float | None = None
    stop_loss_reference: Literal["average", "base"] = "average"
    stop_loss_timeout_candles: int = Field(0, ge=0, description="the stop must stay breached this many candles")
    trailing_stop_loss: bool = False
    move_stop_to_breakeven: bool = False
    stop_and_disable: bool = False
    cooldown_s: float = Field(0.0, ge=0)
    price_min: float | None = Field(None, gt=0)
    price_max: float | None = Field(None, gt=0)
    max_active_deals: int = Field(1, ge=1, le=100)
    pairs: list[str] = Field(default_factory=list, description="symbols; default: the bot's symbol")
    side: Literal["long", "short"] = "long"
    leverage: float = 1.0
    step_mode: Literal["cumulative", "from_previous"] = "cumulative"
    start_condition: Literal["asap", "signal"] = "asap"

    @model_validator(mode="after")
    def _ladder(self) -> "DcaConfig":
        try:
            self.params()
        except DcaParamsError as exc:
            raise ValueError("; ".join(f"{k}: {rule}" for k, rule in exc.errors)) from None
        if self.price_min and self.price_max and self.price_min >= self.price_max:
            raise ValueError("price_min must be below price_max")
        return self

    def params(self) -> DcaParams:
        return DcaParams(
            base_order=str(self.base_order), safety_order=str(self.safety_order),
            deviation_pct=str(self.deviation_pct), step_scale=str(self.step_scale),
            volume_scale=str(self.volume_scale), max_safety_orders=self.max_safety_orders,
            active_safety_orders=self.active_safety_orders, take_profit_pct=str(self.take_profit_pct),
            take_profit_type=self.take_profit_type,
            take_profit_steps=tuple((str(a), str(p)) for a, p in self.take_profit_steps),
            stop_loss_pct=None if self.stop_loss_pct is None else str(self.stop_loss_pct),
            stop_loss_reference=self.stop_loss_reference, side=self.side, leverage=str(self.leverage),
            step_mode=self.step_mode,
        )
