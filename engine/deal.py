"""A DCA deal: its explicit states, its tranches and its numbers, as plain persisted data.

States (explicit transitions, nothing implicit):
    WAITING -> BASE_ORDER -> AVERAGING -> TAKING_PROFIT -> CLOSED
                                     \\-> STOPPED (stop loss) / CLOSED (flattened)
A deal keeps a snapshot of the configuration it started with: edits apply to new deals.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING

from core.types import Candle, Tranche

if TYPE_CHECKING:
    from strategy.dca_params import DcaParams


class DealStatus(str, Enum):
    WAITING = "WAITING"
    BASE_ORDER = "BASE_ORDER"
    AVERAGING = "AVERAGING"
    TAKING_PROFIT = "TAKING_PROFIT"
    CLOSED = "CLOSED"
    STOPPED = "STOPPED"


ALLOWED = {
    DealStatus.WAITING: {DealStatus.BASE_ORDER},
    DealStatus.BASE_ORDER: {DealStatus.AVERAGING, DealStatus.TAKING_PROFIT, DealStatus.CLOSED},
    DealStatus.AVERAGING: {DealStatus.AVERAGING, DealStatus.TAKING_PROFIT, DealStatus.CLOSED, DealStatus.STOPPED},
    # A dip after a partial take-profit fills a resting safety order: averaging again.
    DealStatus.TAKING_PROFIT: {DealStatus.AVERAGING, DealStatus.TAKING_PROFIT, DealStatus.CLOSED, DealStatus.STOPPED},
    DealStatus.CLOSED: set(),
    DealStatus.STOPPED: set(),
}


@dataclass(slots=True)
class Deal:
    id: str
    bot: str
    symbol: str
    side: str  # long | short
    config: dict[str, object]  # the DCA settings this deal started with
    status: DealStatus = DealStatus.WAITING
    opened_at: int = 0
    closed_at: int = 0
    base_price: float = 0.0
    tranches: list[Tranche] = field(default_factory=list)
    safety_filled: int = 0
    safety_placed: int = 0  # how many SOs (counting from SO1) have been sent to the venue
    tp_steps_filled: int = 0
    quantity: float = 0.0  # open quantity (base), always >= 0
    cost: float = 0.0      # quote spent on the open quantity, fees included (spent / got rule)
    realized_pnl: float = 0.0
    fees: float = 0.0
    stop_price: float | None = None
    trailing_peak: float | None = None
    tp_trailing_active: bool = False
    sl_breached_candles: int = 0
    max_drawdown_pct: float = 0.0  # worst floating loss of the deal against its average
    close_reason: str = ""
    blocked: str = ""  # why the next safety order is not resting (a rule refused it: tried every candle)
    transitions: list[tuple[str, int]] = field(default_factory=list)

    @property
    def long(self) -> bool:
        return self.side == "long"

    @property
    def average(self) -> float:
        return self.cost / self.quantity if self.quantity else 0.0

    @property
    def active(self) -> bool:
        return self.status not in (DealStatus.CLOSED, DealStatus.STOPPED)

    def move(self, to: DealStatus, now: int) -> None:
        if to not in ALLOWED[self.status]:
            raise ValueError(f"deal {self.id}: {self.status.value} -> {to.value} is not a transition")
        self.status = to
        self.transitions.append((to.value, now))

    def add_tranche(self, t: Tranche) -> None:
        self.tranches.append(t)
        self.quantity += t.quantity
        self.cost += t.quantity * t.price + t.fee
        self.fees += t.fee

    def reduce(self, quantity: float) -> None:
        """Take quantity off at the average (the cost leaves with it)."""
        share = min(1.0, quantity / self.quantity) if self.quantity else 1.0
        self.cost -= self.cost * share
        self.quantity = max(0.0, self.quantity - quantity)
        if self.quantity < 1e-12:
            self.quantity, self.cost = 0.0, 0.0

    # ---- rules on a closed candle (pure: the bot acts on what they return) ----------------------
    def track(self, c: Candle, params: "DcaParams") -> tuple[str, DealStatus] | None:
        """Floating drawdown, trailing stop, stop loss (with its timeout), trailing take-profit on
        candle ``c``. Returns the exit to take at the close, (reason, final status), or None."""
        cfg = self.config
        avg = self.average
        worst = c.low if self.long else c.high
        if avg:
            self.max_drawdown_pct = max(self.max_drawdown_pct, 100 * ((avg - worst) if self.long else (worst - avg)) / avg)
        if cfg.get("trailing_stop_loss") and cfg.get("stop_loss_pct") and self.stop_price is not None:
            pct = float(cfg["stop_loss_pct"]) / 100  # type: ignore[arg-type]
            trail = c.high * (1 - pct) if self.long else c.low * (1 + pct)
            self.stop_price = max(self.stop_price, trail) if self.long else min(self.stop_price, trail)
        if self.stop_price is not None:
            breached = c.close <= self.stop_price if self.long else c.close >= self.stop_price
            self.sl_breached_candles = self.sl_breached_candles + 1 if breached else 0
            if breached and self.sl_breached_candles > int(cfg.get("stop_loss_timeout_candles") or 0):  # type: ignore[arg-type]
                return "stop loss", DealStatus.STOPPED
        trailing = cfg.get("trailing_take_profit_pct")
        if trailing and self.quantity:
            from strategy.dca import take_profit_plan

            tp = float(take_profit_plan(self.quantity, self.average, params)[0][1])
            if (self.long and c.high >= tp) or (not self.long and c.low <= tp):
                self.tp_trailing_active = True
            if self.tp_trailing_active:
                peak = self.trailing_peak or (c.high if self.long else c.low)
                self.trailing_peak = max(peak, c.high) if self.long else min(peak, c.low)
                give = float(trailing) / 100  # type: ignore[arg-type]
                if (self.long and c.close <= self.trailing_peak * (1 - give)) or (
                        not self.long and c.close >= self.trailing_peak * (1 + give)):
                    return "trailing take profit", DealStatus.CLOSED
        return None

    def remaining_tp_params(self, params: "DcaParams") -> "DcaParams":
        """The take-profit steps not yet filled, re-scaled so they sum to 100 % of what is left."""
        if not params.take_profit_steps:
            return params
        steps = list(params.take_profit_steps[self.tp_steps_filled:])
        if not steps:
            return params
        total = sum(Decimal(str(a)) for a, _ in steps)
        scaled = [(Decimal(str(a)) * 100 / total, p) for a, p in steps] if total else steps
        return replace(params, take_profit_steps=tuple(scaled))

    def entry_average(self) -> float:
        """The plain average of the entries (fees excluded): where breakeven sits."""
        qty = sum(t.quantity for t in self.tranches)
        return sum(t.price * t.quantity for t in self.tranches) / qty if qty else 0.0

    def dump(self) -> dict[str, object]:
        d = asdict(self)
        d["status"] = self.status.value
        return d

    @classmethod
    def load(cls, d: dict[str, object]) -> "Deal":
        d = dict(d)
        d["status"] = DealStatus(d["status"])
        d["tranches"] = [Tranche(**t) for t in d.get("tranches", [])]  # type: ignore[union-attr]
        d["transitions"] = [tuple(x) for x in d.get("transitions", [])]  # type: ignore[union-attr]
        return cls(**d)  # type: ignore[arg-type]
