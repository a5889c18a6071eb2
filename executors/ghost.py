"""Ghost executor: places nothing. Its 'fills' are the hypothetical outcome at the signal price,
without fees or slippage, so ghost statistics measure the signals themselves."""
from __future__ import annotations

from dataclasses import dataclass

from core.types import Fill, Mode, Order, OrderStatus


@dataclass(slots=True)
class GhostExecutor:
    quote_asset: str = "USDT"
    mode: Mode = Mode.GHOST

    def execute(self, order: Order, ref_price: float, time_ms: int) -> list[Fill]:
        order.status = OrderStatus.FILLED
        return [Fill(order.client_order_id, order.bot, order.symbol, order.side, order.quantity,
                     ref_price, 0.0, self.quote_asset, time_ms)]
