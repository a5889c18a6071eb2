"""Risk limits: what each limit is, its defaults per mode, and the live hard ceilings.

Live limits are ceilings in code: a config may lower them, never raise them, unless the
worker is started with an audited override (``BOT_RISK_OVERRIDE``). Paper and ghost default to
percentages of the bot's equity. ``None`` switches a limit off (never allowed for a live ceiling).
docs/operations.md lists every limit with its default and how to change it.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import (
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from core.types import Mode
from core.validation import StrictNumbers, format_errors


class RiskLimits(StrictNumbers):
    """Every risk limit, with its rule. The same model is a bot's ``risk:`` section in config.yaml (the
    keys it sets override the mode's defaults: ``model_fields_set``), the resolved limits the risk
    engine reads, and the check of a limit lowered at run time: NaN, infinity, negatives and values
    outside a limit's rule are refused wherever a limit is set (config, environment, command)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    # -- exposure ---------------------------------------------------------------------------
    max_position_value: float | None = Field(None, gt=0)          # quote value of one symbol's position
    max_position_pct: float | None = Field(None, gt=0, le=100)    # ... as % of the bot's equity
    max_bot_exposure_pct: float | None = Field(None, gt=0, le=1000)  # all of the bot's positions, % of equity
    max_mode_exposure_value: float | None = Field(None, gt=0)     # all bots of one mode together, quote
    max_leverage: float = Field(1.0, ge=1, le=125)
    max_concurrent_positions: int | None = Field(None, ge=1)      # open positions across the mode
    min_entry_interval_s: float | None = Field(None, ge=0)        # between two entries of one bot
    symbol_whitelist: tuple[str, ...] | None = None
    blackout_hours_utc: tuple[int, int] | None = None  # [start, end) hours, may wrap midnight
    max_orders_per_minute: int | None = Field(20, ge=1)
    min_notional: float = Field(10.0, ge=0)
    # -- losses -----------------------------------------------------------------------------
    max_loss_per_trade_value: float | None = Field(None, gt=0)  # worst case at the stop (whole notional without)
    max_loss_per_trade_pct: float | None = Field(None, gt=0, le=100)
    daily_loss_value: float | None = Field(None, gt=0)          # from the UTC day's opening equity
    daily_loss_pct: float | None = Field(None, gt=0, le=100)
    weekly_loss_value: float | None = Field(None, gt=0)         # from the ISO week's opening equity
    weekly_loss_pct: float | None = Field(None, gt=0, le=100)
    max_drawdown_pct: float | None = Field(None, gt=0, le=100)  # from the high-water mark of mark-to-market equity
    max_consecutive_losses: int | None = Field(None, ge=1)
    # -- futures margin ---------------------------------------------------------------------
    max_margin_utilization_pct: float | None = Field(50.0, gt=0, le=100)
    liquidation_alert_pct: float = Field(80.0, gt=0, lt=100)   # % of the way from entry to liquidation
    liquidation_reduce_pct: float = Field(90.0, gt=0, lt=100)
    liquidation_buffer_pct: float = Field(20.0, ge=0, lt=100)  # a stop must sit this % of the distance before liquidation
    # -- correlation ------------------------------------------------------------------------
    max_correlation: float | None = Field(None, ge=-1, le=1)   # of returns with an open position's symbol
    # -- market and system ------------------------------------------------------------------
    max_price_age_s: float | None = Field(None, gt=0)
    max_spread_bps: float | None = Field(None, gt=0)
    max_api_errors_per_minute: int | None = Field(None, ge=0)
    require_market_stream: bool = False
    max_reconciliation_drift_pct: float | None = Field(None, ge=0)
    # -- execution facts the checks need (not limits: set from the paper/venue settings) --------
    fee_pct: float = Field(0.1, ge=0)
    slippage_bps: float = Field(0.0, ge=0)
    allow_short: bool = False
    check_balance: bool = True

    @field_validator("symbol_whitelist")
    @classmethod
    def _symbols(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is not None and not all(s.isalnum() and s.upper() == s for s in v):
            raise ValueError("symbols are upper-case alphanumeric like BTCUSDT")
        return v

    @field_validator("blackout_hours_utc")
    @classmethod
    def _hours(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        if v is not None and not all(0 <= h <= 23 for h in v):
            raise ValueError("hours are 0..23, e.g. [22, 2] for 22:00-02:00 UTC")
        return v

    @model_validator(mode="after")
    def _liquidation(self) -> "RiskLimits":
        if self.liquidation_alert_pct >= self.liquidation_reduce_pct:
            raise ValueError("liquidation_alert_pct must be below liquidation_reduce_pct")
        return self

    def overrides(self) -> dict[str, Any]:
        """Only the keys a config set (the rest keep the mode's defaults)."""
        return {k: getattr(self, k) for k in self.model_fields_set}

    def with_(self, **changes: Any) -> "RiskLimits":
        """A copy with ``changes`` (already validated values: execution facts, resolved overrides)."""
        return self.model_copy(update=changes)


EXECUTION_FACTS = ("fee_pct", "slippage_bps", "allow_short", "check_balance")


# The seeds' conservative numbers: ceilings for live bots, in code.
LIVE_CEILINGS = RiskLimits(
    max_position_value=50.0,
    max_position_pct=None,
    max_bot_exposure_pct=None,
    max_mode_exposure_value=100.0,
    max_leverage=1.0,
    max_concurrent_positions=2,
    min_entry_interval_s=60.0,
    symbol_whitelist=("BTCUSDT", "ETHUSDT"),
    blackout_hours_utc=(22, 2),
    max_orders_per_minute=10,
    min_notional=5.0,
    max_loss_per_trade_value=5.0,
    daily_loss_value=25.0,
    weekly_loss_value=100.0,
    max_drawdown_pct=20.0,
    max_consecutive_losses=5,
    max_margin_utilization_pct=50.0,
    max_correlation=0.9,
    max_price_age_s=10.0,
    max_spread_bps=50.0,
    max_api_errors_per_minute=10,
    require_market_stream=True,
    max_reconciliation_drift_pct=1.0,
)

PAPER_DEFAULTS = RiskLimits(
    max_position_pct=2.0,
    daily_loss_pct=3.0,
    max_drawdown_pct=5.0,
    max_loss_per_trade_pct=1.0,
    max_consecutive_losses=None,
    max_orders_per_minute=20,
)

DEFAULTS = {Mode.LIVE: LIVE_CEILINGS, Mode.PAPER: PAPER_DEFAULTS, Mode.GHOST: PAPER_DEFAULTS,
            Mode.BACKTEST: PAPER_DEFAULTS}

# For these a larger number is looser; for the tuple limits see _looser().
_BIGGER_IS_LOOSER = {
    "max_position_value", "max_position_pct", "max_bot_exposure_pct", "max_mode_exposure_value", "max_leverage",
    "max_concurrent_positions", "max_orders_per_minute", "max_loss_per_trade_value", "max_loss_per_trade_pct",
    "daily_loss_value", "daily_loss_pct", "weekly_loss_value", "weekly_loss_pct", "max_drawdown_pct",
    "max_consecutive_losses", "max_margin_utilization_pct", "max_correlation", "max_price_age_s",
    "max_spread_bps", "max_api_errors_per_minute", "max_reconciliation_drift_pct",
    "liquidation_alert_pct", "liquidation_reduce_pct",
}
_SMALLER_IS_LOOSER = {"min_entry_interval_s", "min_notional", "liquidation_buffer_pct"}


class CeilingViolation(ValueError):
    """A config that tries to loosen a live ceiling without the audited override."""


def _looser(name: str, ceiling: Any, value: Any) -> bool:
    if ceiling is None:
        return False
    if value is None:  # switching a live limit off is the loosest of all
        return True
    if name in _BIGGER_IS_LOOSER:
        return float(value) > float(ceiling)
    if name in _SMALLER_IS_LOOSER:
        return float(value) < float(ceiling)
    if name == "symbol_whitelist":
        return not set(value) <= set(ceiling)
    if name == "blackout_hours_utc":  # tighter = blacks out at least the ceiling's hours
        return not _hours(ceiling) <= _hours(value)
    if name == "require_market_stream":
        return bool(ceiling) and not bool(value)
    return False


def _hours(window: tuple[int, int] | None) -> set[int]:
    if window is None:
        return set()
    start, end = window
    return {h % 24 for h in range(start, start + ((end - start) % 24 or 24))}


def resolve(mode: Mode, overrides: dict[str, Any] | None = None, allow_raise: bool = False) -> RiskLimits:
    """The mode's defaults with the config's overrides; live overrides may only tighten."""
    base = DEFAULTS[mode]
    overrides = dict(overrides or {})
    for k in ("symbol_whitelist", "blackout_hours_utc"):
        if overrides.get(k) is not None:
            overrides[k] = tuple(overrides[k])
    unknown = sorted(set(overrides) - set(RiskLimits.model_fields))
    if unknown:
        raise ValueError(f"unknown risk limit(s): {unknown}")
    if mode is Mode.LIVE and not allow_raise:
        loose = [k for k, v in overrides.items() if _looser(k, getattr(LIVE_CEILINGS, k), v)]
        if loose:
            raise CeilingViolation(
                "live limits can only be lowered in config; these would loosen a hard ceiling: "
                + ", ".join(f"{k}={overrides[k]!r} (ceiling {getattr(LIVE_CEILINGS, k)!r})" for k in loose)
                + ". Start with BOT_RISK_OVERRIDE='<reason>' to raise them (audited)."
            )
    return base.with_(**overrides)


def tighten(current: RiskLimits, changes: dict[str, Any]) -> RiskLimits:
    """Apply changes from an operator (dashboard, CLI, API): each value is checked against its limit's
    rule (an unknown limit, NaN, infinity or a value out of range is refused, naming the limit), and
    only tightening takes effect at once."""
    facts = sorted(set(changes) & set(EXECUTION_FACTS))
    if facts:
        raise ValueError(f"{', '.join(facts)}: not a risk limit (set by the paper or venue settings)")
    try:
        checked = RiskLimits.model_validate({**current.model_dump(), **changes})
    except ValidationError as exc:
        raise ValueError(format_errors(exc)) from None
    loose = [k for k in changes if _looser(k, getattr(current, k), getattr(checked, k))]
    if loose:
        raise CeilingViolation(f"raising limits needs a restart with the new config: {', '.join(loose)}")
    return checked


def parse_limit(name: str, raw: str) -> Any:
    """A limit's value from text (a command, the CLI): '22,2' for hours, 'BTCUSDT,ETHUSDT' for symbols,
    'null' to switch a limit off, else a number. Checked against the limit's rule alone (whether it
    tightens is the worker's to judge against the bot's current limits); ValueError names the rule."""
    if name not in RiskLimits.model_fields or name in EXECUTION_FACTS:
        known = ", ".join(k for k in RiskLimits.model_fields if k not in EXECUTION_FACTS)
        raise ValueError(f"{name!r} is not a risk limit; limits: {known}")
    text = raw.strip()
    value: Any
    if text.lower() in ("null", "none", "off"):
        value = None
    elif name == "symbol_whitelist":
        value = tuple(x.strip().upper() for x in text.split(",") if x.strip())
    elif name == "blackout_hours_utc":
        try:
            a, b = (int(x) for x in text.split(","))
        except ValueError:
            raise ValueError(f"{raw!r} is not two hours like 22,2") from None
        value = (a, b)
    elif name == "require_market_stream":
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"{raw!r} is not true or false")
        value = text.lower() in ("true", "1")
    else:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{raw!r} is not a number") from None
    try:
        checked = RiskLimits.model_validate({name: value})
    except ValidationError as exc:
        raise ValueError(format_errors(exc).removeprefix(f"{name}: ")) from None
    return getattr(checked, name)


def quote_cap(value: float | None, pct: float | None, base: float) -> float | None:
    """The tighter of a quote limit and a percent-of-`base` limit (None: neither is set)."""
    caps = [x for x in (value, None if pct is None else pct / 100 * base) if x is not None]
    return min(caps) if caps else None


_VIEW_HIDDEN = EXECUTION_FACTS


@lru_cache(maxsize=256)
def limits_view(lim: RiskLimits) -> dict[str, Any]:
    """The limits as the dashboard shows them; built once per limits object (a bot's limits change
    only on a tightening), not on every snapshot. Callers must not mutate the result."""
    return {k: v for k, v in lim.model_dump().items() if k not in _VIEW_HIDDEN}
