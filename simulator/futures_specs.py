"""USD-M symbol specs: tick, step, limits, maintenance margin ratio and the exchangeInfo filters.

``DEFAULT_FUTURES_SPECS`` holds realistic values for the four default symbols; ``futures_spec_for``
derives a spec from the price level for any other symbol a price source brings.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from simulator.filters import split_symbol


@dataclass(frozen=True, slots=True)
class FuturesSpec:
    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal = Decimal("1000")
    market_max_qty: Decimal = Decimal("120")
    min_notional: Decimal = Decimal("5")
    min_price: Decimal = Decimal("0.10")
    max_price: Decimal = Decimal("4529764")
    multiplier_up: Decimal = Decimal("1.0500")
    multiplier_down: Decimal = Decimal("0.9500")
    maint_margin_ratio: Decimal = Decimal("0.004")
    max_num_orders: int = 200
    price_precision: int = 2
    quantity_precision: int = 3

    def fmt_price(self, v: Decimal) -> str:
        return format(v.quantize(Decimal(1).scaleb(-self.price_precision)), "f")

    def fmt_qty(self, v: Decimal) -> str:
        return format(v.quantize(Decimal(1).scaleb(-self.quantity_precision)), "f")

    def filters_json(self) -> list[dict[str, object]]:
        return [
            {"filterType": "PRICE_FILTER", "minPrice": str(self.min_price), "maxPrice": str(self.max_price),
             "tickSize": str(self.tick_size)},
            {"filterType": "LOT_SIZE", "minQty": str(self.min_qty), "maxQty": str(self.max_qty),
             "stepSize": str(self.step_size)},
            {"filterType": "MARKET_LOT_SIZE", "minQty": str(self.min_qty), "maxQty": str(self.market_max_qty),
             "stepSize": str(self.step_size)},
            {"filterType": "MAX_NUM_ORDERS", "limit": self.max_num_orders},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
            {"filterType": "MIN_NOTIONAL", "notional": str(self.min_notional)},
            {"filterType": "PERCENT_PRICE", "multiplierUp": str(self.multiplier_up),
             "multiplierDown": str(self.multiplier_down), "multiplierDecimal": "4"},
        ]


DEFAULT_FUTURES_SPECS: dict[str, FuturesSpec] = {
    "BTCUSDT": FuturesSpec("BTCUSDT", "BTC", "USDT", Decimal("0.10"), Decimal("0.001"), Decimal("0.001"),
                           min_notional=Decimal("100"), price_precision=2, quantity_precision=3),
    "ETHUSDT": FuturesSpec("ETHUSDT", "ETH", "USDT", Decimal("0.01"), Decimal("0.001"), Decimal("0.001"),
                           max_qty=Decimal("10000"), market_max_qty=Decimal("2000"), min_notional=Decimal("20"),
                           min_price=Decimal("0.01"), price_precision=2, quantity_precision=3),
    "BNBUSDT": FuturesSpec("BNBUSDT", "BNB", "USDT", Decimal("0.010"), Decimal("0.01"), Decimal("0.01"),
                           max_qty=Decimal("100000"), market_max_qty=Decimal("2000"), min_price=Decimal("0.010"),
                           maint_margin_ratio=Decimal("0.01"), price_precision=3, quantity_precision=2),
    "SOLUSDT": FuturesSpec("SOLUSDT", "SOL", "USDT", Decimal("0.0100"), Decimal("1"), Decimal("1"),
                           max_qty=Decimal("1000000"), market_max_qty=Decimal("5000"), min_price=Decimal("0.0100"),
                           maint_margin_ratio=Decimal("0.01"), price_precision=4, quantity_precision=0),
}


def futures_spec_for(symbol: str, reference_price: Decimal) -> FuturesSpec:
    if symbol in DEFAULT_FUTURES_SPECS:
        return DEFAULT_FUTURES_SPECS[symbol]
    base, quote = split_symbol(symbol)
    p = float(reference_price) if reference_price > 0 else 1.0
    tick = Decimal("0.01") if p >= 10 else Decimal("0.0001")
    step = Decimal("0.001") if p >= 1000 else Decimal("1")
    return FuturesSpec(symbol, base, quote, tick, step, step, max_qty=Decimal("1000000"),
                       market_max_qty=Decimal("100000"), min_price=tick, maint_margin_ratio=Decimal("0.01"),
                       price_precision=max(0, -tick.as_tuple().exponent),  # type: ignore[operator]
                       quantity_precision=max(0, -step.as_tuple().exponent))  # type: ignore[operator]
