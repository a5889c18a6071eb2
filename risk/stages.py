"""Go-live stages: how far a live bot has been allowed to go, the position cap each stage puts on it,
and the evidence each step up needs.

``unapproved``  places nothing (until an operator approves it with a typed confirmation and TOTP);
``first_trade`` one position, worth at most ``golive.first_trade_cap`` (50 USDT, or lower);
``scaling``     after ``trades_to_scale`` (3) successful live round trips: up to ``scaling_cap`` (100 USDT);
``full``        after a profitable week in scaling: the configured limits alone.

A stage cap is one more rule of the risk engine (``StageGate``, rule ``golive_stage``, checked on every
entry): it can only lower what the configured limits allow, never raise it (the hard ceilings of
``risk.limits`` still bind). A loss-limit breach drops the bot back one stage (``LOSS_RULES``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from core.types import Order, OrderPurpose, Side
from core.validation import StrictNumbers
from risk.engine import Decision, RiskContext

RULE = "golive_stage"
# risk-monitor rules whose breach drops a bot back one stage (the account-wide ones included)
LOSS_RULES = frozenset({"daily_loss", "weekly_loss", "max_drawdown", "consecutive_losses", "account_daily_loss",
                        "account_max_drawdown"})
DAY_MS = 86_400_000


class Stage(str, Enum):
    UNAPPROVED = "unapproved"
    FIRST_TRADE = "first_trade"
    SCALING = "scaling"
    FULL = "full"

    @property
    def index(self) -> int:
        return ORDER.index(self)

    def next(self) -> "Stage | None":
        return ORDER[self.index + 1] if self.index + 1 < len(ORDER) else None

    def previous(self) -> "Stage":
        return ORDER[max(0, self.index - 1)]


ORDER = (Stage.UNAPPROVED, Stage.FIRST_TRADE, Stage.SCALING, Stage.FULL)


class GoLiveConfig(StrictNumbers):
    """The config's ``golive:`` section. Caps may only be lowered; the evidence asked for only raised."""

    model_config = ConfigDict(extra="forbid")

    stages: Literal["auto", "on"] = Field("auto", description="auto: every live bot off the local exchange "
                                          "(testnet, demo, mainnet) goes through the stages; on: the local "
                                          "exchange's live bots too (a rehearsal)")
    first_trade_cap: float = Field(50.0, gt=0, le=50, description="first_trade: position cap, quote")
    scaling_cap: float = Field(100.0, gt=0, le=100, description="scaling: position cap, quote")
    trades_to_scale: int = Field(3, ge=3, le=1000, description="successful live round trips before scaling")
    profitable_days: int = Field(7, ge=7, le=365, description="days in scaling, profitable, before full")
    min_ghost_signals: int = Field(1, ge=0, description="ghost signals of the same strategy and parameters")
    min_paper_trades: int = Field(1, ge=0, description="paper trades of the same strategy and parameters")

    @model_validator(mode="after")
    def _caps(self) -> "GoLiveConfig":
        if self.scaling_cap < self.first_trade_cap:
            raise ValueError("scaling_cap must be at least first_trade_cap")
        return self


def cap_of(stage: Stage, cfg: GoLiveConfig) -> float | None:
    """The stage's position cap in quote (0: nothing at all; None: only the configured limits)."""
    return {Stage.UNAPPROVED: 0.0, Stage.FIRST_TRADE: cfg.first_trade_cap, Stage.SCALING: cfg.scaling_cap,
            Stage.FULL: None}[stage]


def effective_cap(stage: Stage, cfg: GoLiveConfig, configured: float | None) -> float | None:
    """What a position may be worth at this stage: the lower of the stage's cap and the configured
    ``max_position_value`` (the cap only ever lowers it)."""
    caps = [x for x in (cap_of(stage, cfg), configured) if x is not None]
    return min(caps) if caps else None


_BUY, _ENTRY = Side.BUY, OrderPurpose.ENTRY


class StageGate:
    """The stage's rule, called by ``RiskEngine`` before an entry's other limits; exits are never
    judged by it (a position from a higher stage can always be closed)."""

    def __init__(self, stage: Stage, cap: float | None) -> None:
        self.stage = stage
        self.cap = cap

    def __call__(self, order: Order, ctx: RiskContext) -> Decision | None:
        stage = self.stage
        if stage is Stage.FULL:
            return None
        if stage is Stage.UNAPPROVED:
            return Decision(False, RULE, "stage unapproved: a live bot places nothing until an operator approves "
                                         "it on the Live tab (checklist, typed confirmation, TOTP)")
        price = ctx.price
        pos_qty = ctx.position.quantity
        signed = order.quantity if order.side is _BUY else -order.quantity
        after = abs(pos_qty + signed) * price
        bot_after = max(after, ctx.bot_exposure_value - abs(pos_qty) * price + after)
        if stage is Stage.FIRST_TRADE and pos_qty == 0 and ctx.bot_exposure_value > 1e-9:
            return Decision(False, RULE, f"stage first_trade: one position at a time (the bot already holds "
                                         f"{ctx.bot_exposure_value:.2f})")
        if self.cap is not None and bot_after > self.cap * (1 + 1e-9):
            return Decision(False, RULE, f"stage {stage.value}: position value {bot_after:.2f} > stage cap "
                                         f"{self.cap:.2f}")
        return None


# ---- evidence ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Evidence:
    """Measured facts about one live bot, as ``state.golive_store.collect`` read them."""

    backtest: dict[str, object] | None = None  # newest finished backtest of these exact parameters
    ghost_bots: list[str] = field(default_factory=list)  # ghost bots with the same strategy and parameters
    ghost_signals: int = 0
    ghost_accuracy_pct: float | None = None
    paper_bots: list[str] = field(default_factory=list)
    paper_trades: int = 0
    paper_win_rate_pct: float | None = None
    paper_pnl: float = 0.0
    preflight_ok: bool | None = None
    preflight_detail: str = ""
    kill_switch: dict[str, object] | None = None  # the latest flatten applied on paper / a test venue
    live_trades: int = 0  # round trips closed since the current stage began
    live_wins: int = 0
    live_pnl: float = 0.0
    days_in_stage: float = 0.0  # market time
    week_pnl: float = 0.0  # net P&L of the round trips closed in the last 7 days (market time)

    def summary(self) -> str:
        bt = self.backtest
        parts = [
            f"backtest {bt.get('trades')} trades {float(bt.get('total_return_pct') or 0):+.2f}%" if bt
            else "no backtest",
            f"ghost {self.ghost_signals} signals" + (f" {self.ghost_accuracy_pct:.0f}% accurate"
                                                      if self.ghost_accuracy_pct is not None else ""),
            f"paper {self.paper_trades} trades {self.paper_pnl:+.2f}",
            "pre-flight " + ("passed" if self.preflight_ok else "NOT passed"),
            f"kill switch tested {self.kill_switch.get('when')} by {self.kill_switch.get('who')}" if self.kill_switch
            else "kill switch NOT tested",
            f"live {self.live_wins}/{self.live_trades} winning round trips, P&L {self.live_pnl:+.2f}",
        ]
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class Requirement:
    name: str
    ok: bool
    detail: str


def requirements(target: Stage, ev: Evidence, cfg: GoLiveConfig) -> list[Requirement]:
    """What moving up to ``target`` needs, each with whether the evidence meets it."""
    if target is Stage.FIRST_TRADE:
        bt = ev.backtest
        return [
            Requirement("backtest report", bt is not None,
                        f"{bt.get('trades')} trades, return {float(bt.get('total_return_pct') or 0):+.2f}%, max "
                        f"drawdown {float(bt.get('max_drawdown_pct') or 0):.2f}%" if bt else
                        "no finished backtest of these exact parameters (run one on the Backtest tab)"),
            Requirement("ghost signals", ev.ghost_signals >= cfg.min_ghost_signals,
                        f"{ev.ghost_signals} signals from {', '.join(ev.ghost_bots) or 'no ghost bot'}"
                        + (f", {ev.ghost_accuracy_pct:.1f}% accurate" if ev.ghost_accuracy_pct is not None else "")
                        + f" (needs {cfg.min_ghost_signals})"),
            Requirement("paper trades", ev.paper_trades >= cfg.min_paper_trades,
                        f"{ev.paper_trades} trades from {', '.join(ev.paper_bots) or 'no paper bot'}"
                        + (f", win rate {ev.paper_win_rate_pct:.1f}%" if ev.paper_win_rate_pct is not None else "")
                        + f", P&L {ev.paper_pnl:+.2f} (needs {cfg.min_paper_trades})"),
            Requirement("pre-flight passed", bool(ev.preflight_ok), ev.preflight_detail or "no pre-flight yet"),
            Requirement("kill switch tested", ev.kill_switch is not None,
                        f"Close all positions applied {ev.kill_switch.get('when')} by {ev.kill_switch.get('who')} on "
                        f"{ev.kill_switch.get('where')}" if ev.kill_switch else
                        "press Close all positions on this bot (on the local exchange or the testnet) or on a paper "
                        "bot with the same strategy and parameters"),
        ]
    if target is Stage.SCALING:
        return [Requirement("successful live round trips", ev.live_wins >= cfg.trades_to_scale,
                            f"{ev.live_wins} winning of {ev.live_trades} closed since first_trade, P&L "
                            f"{ev.live_pnl:+.2f} (needs {cfg.trades_to_scale})")]
    if target is Stage.FULL:
        days = cfg.profitable_days
        return [Requirement("a week in scaling", ev.days_in_stage >= days,
                            f"{ev.days_in_stage:.1f} of {days} days (market time)"),
                Requirement("profitable week", ev.week_pnl > 0,
                            f"P&L of the last 7 days {ev.week_pnl:+.2f}")]
    return []
