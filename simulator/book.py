"""The synthetic order book around the current price.

Nobody else trades on the simulator, so the book is a deterministic function of the mid price:
best bid/ask sit half a spread either side of the mid (at least one tick apart), levels are
``level_gap_bps`` apart, and the quantity at level ``i`` is ``top_qty * (1 + growth * i)`` --
depth grows with the distance from the mid. A market order walks it level by level; the book is
not depleted by the walk (each order sees a fresh book).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Protocol


class Instrument(Protocol):
    """What the book needs from a symbol spec (spot ``SymbolSpec`` or futures ``FuturesSpec``)."""

    @property
    def tick_size(self) -> Decimal: ...

    @property
    def step_size(self) -> Decimal: ...

ZERO = Decimal(0)
BPS = Decimal("0.0001")


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    if step == 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


def ceil_to(value: Decimal, step: Decimal) -> Decimal:
    if step == 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_CEILING) * step


@dataclass(frozen=True, slots=True)
class BookConfig:
    spread_bps: Decimal = Decimal("0.2")
    level_gap_bps: Decimal = Decimal("0.3")
    top_notional: Decimal = Decimal("20000")  # quote value resting at the best level
    growth: Decimal = Decimal("0.15")
    max_levels: int = 5000


@dataclass(frozen=True, slots=True)
class Level:
    price: Decimal
    qty: Decimal


class SyntheticBook:
    def __init__(self, mid: Decimal, spec: Instrument, config: BookConfig = BookConfig()) -> None:
        tick = spec.tick_size
        self.spec = spec
        self.config = config
        self.mid = mid
        spread = max(tick, floor_to(mid * config.spread_bps * BPS, tick))
        self.best_bid = max(tick, floor_to(mid - spread / 2, tick))
        self.best_ask = self.best_bid + spread
        if self.best_ask - mid > spread:  # keep the mid inside the spread after rounding
            self.best_ask = ceil_to(mid, tick)
        self.gap = max(tick, floor_to(mid * config.level_gap_bps * BPS, tick))
        step = spec.step_size if spec.step_size > 0 else Decimal("0.00000001")
        self.top_qty = max(step, floor_to(config.top_notional / mid, step))
        self._step = step

    def _qty(self, i: int) -> Decimal:
        return floor_to(self.top_qty * (1 + self.config.growth * i), self._step)

    def ask(self, i: int) -> Level:
        return Level(self.best_ask + self.gap * i, self._qty(i))

    def bid(self, i: int) -> Level | None:
        price = self.best_bid - self.gap * i
        if price <= 0:
            return None
        return Level(price, self._qty(i))

    def levels(self, side: str, n: int) -> list[Level]:
        """``side`` is 'asks' or 'bids'; the best ``n`` levels."""
        out: list[Level] = []
        for i in range(min(n, self.config.max_levels)):
            lvl = self.ask(i) if side == "asks" else self.bid(i)
            if lvl is None:
                break
            out.append(lvl)
        return out

    def walk(
        self,
        side: str,
        qty: Decimal | None = None,
        quote_qty: Decimal | None = None,
        limit_price: Decimal | None = None,
        step: Decimal | None = None,
    ) -> list[Level]:
        """Fills for a taker order: BUY consumes asks upward, SELL bids downward.

        Exactly one of ``qty`` (base) or ``quote_qty`` (quote to spend/receive) is given. A
        ``limit_price`` stops the walk at levels worse than it. ``step`` rounds each partial take
        (quote_qty orders honour the lot step).
        """
        lot = step if step and step > 0 else self._step
        fills: list[Level] = []
        remaining = qty
        remaining_quote = quote_qty
        for i in range(self.config.max_levels):
            lvl = self.ask(i) if side == "BUY" else self.bid(i)
            if lvl is None:
                break
            if limit_price is not None:
                if side == "BUY" and lvl.price > limit_price:
                    break
                if side == "SELL" and lvl.price < limit_price:
                    break
            if remaining is not None:
                take = min(remaining, lvl.qty)
                remaining -= take
            else:
                assert remaining_quote is not None
                take = min(lvl.qty, floor_to(remaining_quote / lvl.price, lot))
                remaining_quote -= take * lvl.price
            if take > 0:
                fills.append(Level(lvl.price, take))
            if (remaining is not None and remaining <= 0) or (
                remaining_quote is not None and take < lvl.qty
            ):
                break
        return fills
