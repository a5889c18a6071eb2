"""A DCA deal: its explicit states, its tranches and its numbers, as plain persisted data.

States (explicit transitions, nothing implicit):
    WAITING -> BASE_ORDER -> AVERAGING -> TAKING_PROFIT -> CLOSED
                                     \\-> STOPPED (stop loss) / CLOSED (flattened)
A deal keeps a snapshot of the configuration it started with: edits apply to new deals.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum


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
class Tranche:
    """One fill that added to the position."""

    tag: str  # BO, SO1, SO2, ...
    price: float
    quantity: float
    time: int
    fee: float


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
