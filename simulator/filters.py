"""Symbol specs and Binance's exchange filters.

A ``SymbolSpec`` holds everything exchangeInfo publishes for one spot symbol; ``check_order``
applies PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE, MIN_NOTIONAL / NOTIONAL, PERCENT_PRICE_BY_SIDE
and MAX_NUM_ORDERS exactly as filters.md describes (a field equal to 0 disables that check) and
raises -1013 "Filter failure: NAME" (reference/binance-api.md §6).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from simulator import errors

ZERO = Decimal(0)
QUOTE_ASSETS = ("USDT", "USDC", "FDUSD", "BUSD", "BTC", "ETH", "BNB")


def fmt8(value: Decimal) -> str:
    """Binance's fixed 8-decimal string, e.g. '0.00100000'."""
    return format(value.quantize(Decimal("0.00000001")), "f")


def fmt_fixed(value: Decimal, places: int = 8) -> str:
    """``value`` with exactly ``places`` decimals, never in exponent notation."""
    return format(value.quantize(Decimal(1).scaleb(-places)), "f")


def is_multiple(value: Decimal, step: Decimal, base: Decimal = ZERO) -> bool:
    if step == 0:
        return True
    return (value - base) % step == 0


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal
    step_size: Decimal
    min_price: Decimal = Decimal("0.01")
    max_price: Decimal = Decimal("1000000")
    min_qty: Decimal = Decimal("0.00001")
    max_qty: Decimal = Decimal("9000")
    market_min_qty: Decimal = ZERO
    market_max_qty: Decimal = Decimal("100")
    market_step_size: Decimal = ZERO
    min_notional: Decimal = Decimal("5")
    max_notional: Decimal = Decimal("9000000")
    apply_min_to_market: bool = True
    apply_max_to_market: bool = False
    legacy_min_notional: bool = False  # publish MIN_NOTIONAL (old style) instead of NOTIONAL
    bid_multiplier_up: Decimal = Decimal("5")
    bid_multiplier_down: Decimal = Decimal("0.2")
    ask_multiplier_up: Decimal = Decimal("5")
    ask_multiplier_down: Decimal = Decimal("0.2")
    max_num_orders: int = 200
    max_num_algo_orders: int = 5  # open STOP_LOSS*/TAKE_PROFIT* orders per symbol (Binance's BTCUSDT: 5)
    base_precision: int = 8
    quote_precision: int = 8

    def filters_json(self) -> list[dict[str, object]]:
        out: list[dict[str, object]] = [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": fmt8(self.min_price),
                "maxPrice": fmt8(self.max_price),
                "tickSize": fmt8(self.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": fmt8(self.min_qty),
                "maxQty": fmt8(self.max_qty),
                "stepSize": fmt8(self.step_size),
            },
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": fmt8(self.market_min_qty),
                "maxQty": fmt8(self.market_max_qty),
                "stepSize": fmt8(self.market_step_size),
            },
            {
                "filterType": "TRAILING_DELTA",
                "minTrailingAboveDelta": 10,
                "maxTrailingAboveDelta": 2000,
                "minTrailingBelowDelta": 10,
                "maxTrailingBelowDelta": 2000,
            },
            {
                "filterType": "PERCENT_PRICE_BY_SIDE",
                "bidMultiplierUp": str(self.bid_multiplier_up),
                "bidMultiplierDown": str(self.bid_multiplier_down),
                "askMultiplierUp": str(self.ask_multiplier_up),
                "askMultiplierDown": str(self.ask_multiplier_down),
                "avgPriceMins": 5,
            },
        ]
        if self.legacy_min_notional:
            out.append(
                {
                    "filterType": "MIN_NOTIONAL",
                    "minNotional": fmt8(self.min_notional),
                    "applyToMarket": self.apply_min_to_market,
                    "avgPriceMins": 5,
                }
            )
        else:
            out.append(
                {
                    "filterType": "NOTIONAL",
                    "minNotional": fmt8(self.min_notional),
                    "applyMinToMarket": self.apply_min_to_market,
                    "maxNotional": fmt8(self.max_notional),
                    "applyMaxToMarket": self.apply_max_to_market,
                    "avgPriceMins": 5,
                }
            )
        out.append({"filterType": "MAX_NUM_ORDERS", "maxNumOrders": self.max_num_orders})
        out.append({"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": self.max_num_algo_orders})
        return out

    def check_price(self, price: Decimal) -> None:
        """PRICE_FILTER on a limit price."""
        if self.min_price and price < self.min_price:
            raise errors.filter_failure("PRICE_FILTER")
        if self.max_price and price > self.max_price:
            raise errors.filter_failure("PRICE_FILTER")
        if not is_multiple(price, self.tick_size, self.min_price if self.min_price else ZERO):
            raise errors.filter_failure("PRICE_FILTER")

    def check_lot(self, qty: Decimal, market: bool) -> None:
        """LOT_SIZE always; MARKET_LOT_SIZE too for market orders."""
        if qty < self.min_qty or (self.max_qty and qty > self.max_qty):
            raise errors.filter_failure("LOT_SIZE")
        if not is_multiple(qty, self.step_size, self.min_qty):
            raise errors.filter_failure("LOT_SIZE")
        if market:
            if qty < self.market_min_qty or (self.market_max_qty and qty > self.market_max_qty):
                raise errors.filter_failure("MARKET_LOT_SIZE")
            if not is_multiple(qty, self.market_step_size, self.market_min_qty):
                raise errors.filter_failure("MARKET_LOT_SIZE")

    def check_notional(self, notional: Decimal, market: bool) -> None:
        name = "MIN_NOTIONAL" if self.legacy_min_notional else "NOTIONAL"
        if (not market or self.apply_min_to_market) and notional < self.min_notional:
            raise errors.filter_failure(name)
        if self.legacy_min_notional:
            return
        if (not market or self.apply_max_to_market) and self.max_notional and notional > self.max_notional:
            raise errors.filter_failure(name)

    def check_percent_price(self, side: str, price: Decimal, avg_price: Decimal) -> None:
        if side == "BUY":
            lo, hi = avg_price * self.bid_multiplier_down, avg_price * self.bid_multiplier_up
        else:
            lo, hi = avg_price * self.ask_multiplier_down, avg_price * self.ask_multiplier_up
        if not lo <= price <= hi:
            raise errors.filter_failure("PERCENT_PRICE_BY_SIDE")

    def check_order(
        self,
        *,
        side: str,
        market: bool,
        qty: Decimal | None,
        price: Decimal | None,
        avg_price: Decimal,
        open_orders: int,
        notional_price: Decimal | None = None,
    ) -> None:
        """All filters for one new order. ``price`` is None for market orders; ``qty`` is None for
        a quoteOrderQty market order (its quantity is checked after the book walk). NOTIONAL uses
        ``price``, else ``notional_price`` (a stop order's stopPrice), else ``avg_price``."""
        if price is not None:
            self.check_price(price)
        if qty is not None:
            self.check_lot(qty, market)
        if price is not None:
            self.check_percent_price(side, price, avg_price)
        if qty is not None:
            ref = price if price is not None else notional_price if notional_price is not None else avg_price
            self.check_notional(qty * ref, market)
        if open_orders >= self.max_num_orders:
            raise errors.filter_failure("MAX_NUM_ORDERS")


def split_symbol(symbol: str) -> tuple[str, str]:
    for quote in QUOTE_ASSETS:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol[:-4], symbol[-4:]


DEFAULT_SPECS: dict[str, SymbolSpec] = {
    "BTCUSDT": SymbolSpec(
        "BTCUSDT", "BTC", "USDT", Decimal("0.01"), Decimal("0.00001"),
        min_qty=Decimal("0.00001"), max_qty=Decimal("9000"), market_max_qty=Decimal("120"),
    ),
    "ETHUSDT": SymbolSpec(
        "ETHUSDT", "ETH", "USDT", Decimal("0.01"), Decimal("0.0001"),
        min_qty=Decimal("0.0001"), max_qty=Decimal("9000"), market_max_qty=Decimal("2500"),
    ),
    "BNBUSDT": SymbolSpec(
        "BNBUSDT", "BNB", "USDT", Decimal("0.01"), Decimal("0.001"),
        min_qty=Decimal("0.001"), max_qty=Decimal("9000"), market_max_qty=Decimal("5000"),
    ),
    "SOLUSDT": SymbolSpec(
        "SOLUSDT", "SOL", "USDT", Decimal("0.01"), Decimal("0.001"),
        min_qty=Decimal("0.001"), max_qty=Decimal("9000"), market_max_qty=Decimal("20000"),
    ),
}


def spec_for(symbol: str, reference_price: Decimal) -> SymbolSpec:
    """The default spec for a known symbol, or a plausible one derived from the price level."""
    if symbol in DEFAULT_SPECS:
        return DEFAULT_SPECS[symbol]
    base, quote = split_symbol(symbol)
    p = float(reference_price) if reference_price > 0 else 1.0
    tick = Decimal("0.01") if p >= 10 else Decimal("0.0001") if p >= 0.1 else Decimal("0.00000001")
    step = Decimal("0.00001") if p >= 10000 else Decimal("0.001") if p >= 10 else Decimal("1")
    return SymbolSpec(
        symbol, base, quote, tick, step,
        min_price=tick, min_qty=step, max_qty=Decimal("9000000"),
        market_max_qty=Decimal("1000000"),
    )
