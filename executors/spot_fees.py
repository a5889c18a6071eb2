"""Spot fills as a bot books them: Binance spot charges a buy's fee in the base asset, so the bot books the
quantity actually held and the fee's quote value, and its position equals the venue's holding."""
from __future__ import annotations

from dataclasses import dataclass

from core.types import Fill, Mode, Order
from exchange.client import ExchangeClient
from executors.live import LiveExecutor


@dataclass(slots=True)
class SpotFeeFills:
    """Spot buys pay their fee in the base asset: book the fill as the quantity actually held and
    the fee as its quote value, so the bot's position equals the venue's holding."""

    inner: LiveExecutor
    mode: Mode = Mode.LIVE

    def execute(self, order: Order, ref_price: float, time_ms: int) -> list[Fill]:
        return spot_fills(self.inner.client, self.inner.execute(order, ref_price, time_ms))


def spot_fills(client: ExchangeClient, fills: list[Fill]) -> list[Fill]:
    """Fills as the bot books them on spot: quantity held and the fee in quote (see SpotFeeFills)."""
    if client.futures or not fills:
        return fills
    out = []
    for f in fills:
        rules = client.rules(f.symbol)
        if f.fee_asset == rules.base_asset:
            out.append(Fill(f.client_order_id, f.bot, f.symbol, f.side, f.quantity - f.fee, f.price,
                            f.fee * f.price, rules.quote_asset, f.time))
        elif f.fee_asset not in (rules.quote_asset, ""):
            # e.g. BNB fee discounts: the value is unknown here; booked at 0 and left to reconciliation
            out.append(Fill(f.client_order_id, f.bot, f.symbol, f.side, f.quantity, f.price, 0.0,
                            rules.quote_asset, f.time))
        else:
            out.append(f)
    return out
