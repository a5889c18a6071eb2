"""The risk engine: every order passes check() before an executor sees it, in every mode.

Exits and flattening orders are allowed *by the trading state*, never by skipping the check.
Each decision carries the rule and the numbers it compared, so a denial explains itself.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from core.types import Order, OrderPurpose, Position, Side, TradingState


@dataclass(slots=True, frozen=True)
class RiskLimits:
    max_position_pct: float = 50.0
    min_notional: float = 10.0
    max_orders_per_minute: int = 20
    fee_pct: float = 0.1
    slippage_bps: float = 0.0
    allow_short: bool = False
    check_balance: bool = True


@dataclass(slots=True, frozen=True)
class RiskContext:
    state: TradingState
    position: Position
    price: float
    equity: float
    quote_balance: float
    now_ms: int


@dataclass(slots=True, frozen=True)
class Decision:
    allowed: bool
    rule: str
    detail: str


ALLOW = "ok"


class RiskEngine:
    def __init__(self, limits: RiskLimits) -> None:
        self.limits = limits
        self._recent: deque[int] = deque()

    def check(self, order: Order, ctx: RiskContext) -> Decision:
        lim = self.limits
        pos_qty = ctx.position.quantity
        reduces = (order.side is Side.SELL and pos_qty > 0) or (order.side is Side.BUY and pos_qty < 0)

        if order.purpose is OrderPurpose.ENTRY:
            if not ctx.state.allows_entries:
                return Decision(False, "trading_state", f"state {ctx.state.value} allows no entries")
        else:
            if not ctx.state.allows_exits:
                return Decision(False, "trading_state", f"state {ctx.state.value} allows no orders")
            if not reduces or order.quantity > abs(pos_qty) * (1 + 1e-9):
                return Decision(False, "reduce_only",
                                f"exit of {order.quantity:.8g} {order.side.value} does not reduce position {pos_qty:.8g}")

        if order.quantity <= 0 or ctx.price <= 0:
            return Decision(False, "bad_order", f"quantity {order.quantity} at price {ctx.price}")

        notional = order.quantity * ctx.price
        if order.purpose is OrderPurpose.ENTRY:
            if notional < lim.min_notional:
                return Decision(False, "min_notional", f"notional {notional:.2f} < {lim.min_notional:.2f}")
            if order.side is Side.SELL and pos_qty <= 0 and not lim.allow_short:
                return Decision(False, "no_short", "short entries are not allowed on spot")
            after = abs(pos_qty + (order.quantity if order.side is Side.BUY else -order.quantity)) * ctx.price
            cap = lim.max_position_pct / 100.0 * ctx.equity
            if after > cap * (1 + 1e-9):
                return Decision(False, "max_position_pct",
                                f"position value {after:.2f} > {lim.max_position_pct:g}% of equity {ctx.equity:.2f} = {cap:.2f}")
            if lim.check_balance and order.side is Side.BUY:
                # Worst fill price (slippage) plus the fee: the quote balance must never go negative.
                need = notional * (1 + lim.slippage_bps / 10_000.0) * (1 + lim.fee_pct / 100.0)
                if need > ctx.quote_balance * (1 + 1e-9):
                    return Decision(False, "balance", f"needs {need:.2f} quote, has {ctx.quote_balance:.2f}")

        while self._recent and self._recent[0] <= ctx.now_ms - 60_000:
            self._recent.popleft()
        if order.purpose is OrderPurpose.ENTRY and len(self._recent) >= lim.max_orders_per_minute:
            return Decision(False, "max_orders_per_minute",
                            f"{len(self._recent)} orders in the last minute >= {lim.max_orders_per_minute}")
        self._recent.append(ctx.now_ms)
        return Decision(True, ALLOW, f"{order.purpose.value} {order.side.value} {order.quantity:.8g} @ {ctx.price:.8g}")
