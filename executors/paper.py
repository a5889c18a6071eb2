"""Paper executor: simulated market fills on the feed's prices, with taker fee and slippage."""
from __future__ import annotations

from dataclasses import dataclass

from core.types import Fill, Mode, Order, OrderStatus, Side


@dataclass(slots=True)
class PaperExecutor:
    fee_pct: float = 0.1
    slippage_bps: float = 2.0
    quote_asset: str = "USDT"
    mode: Mode = Mode.PAPER

    def fill_price(self, side: Side, ref_price: float) -> float:
        # Slippage always hurts: buys pay more, sells receive less.
        slip = self.slippage_bps / 10_000.0
        return ref_price * (1 + slip) if side is Side.BUY else ref_price * (1 - slip)

    def execute(self, order: Order, ref_price: float, time_ms: int) -> list[Fill]:
        price = self.fill_price(order.side, ref_price)
        fee = order.quantity * price * self.fee_pct / 100.0
        order.status = OrderStatus.FILLED
        return [Fill(order.client_order_id, order.bot, order.symbol, order.side, order.quantity,
                     price, fee, self.quote_asset, time_ms)]
