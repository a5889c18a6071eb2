"""Symbol filters from exchangeInfo and Decimal rounding to them (reference/binance-api.md §6).

Quantities are floored to the step (never send more than asked); prices are rounded to the tick
(nearest by default, or passive: floor for BUY, ceil for SELL). Minimums and notional are checked
*after* rounding. Numbers are formatted with `fmt`, never `str(float)`, so 1e-05 goes out as
"0.00001" and the venue never sees scientific notation (-1100).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Literal

ZERO = Decimal(0)
Market = Literal["spot", "futures"]
PriceMode = Literal["nearest", "passive", "down", "up"]


def dec(value: Any) -> Decimal:
    """Exact Decimal of a number or numeric string; floats go through repr (0.1 -> Decimal('0.1'))."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    try:
        return Decimal(str(value))
    except InvalidOperation as e:
        raise ValueError(f"not a number: {value!r}") from e


def fmt(value: Decimal | float | str | int) -> str:
    """Plain decimal text without exponent or trailing zeros: Decimal('1E-5') -> '0.00001'."""
    d = dec(value)
    if not d.is_finite():
        raise ValueError(f"not finite: {value!r}")
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    return text


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    if step <= 0:
        return value
    return (value / step).to_integral_value(ROUND_FLOOR) * step


def ceil_to(value: Decimal, step: Decimal) -> Decimal:
    if step <= 0:
        return value
    return (value / step).to_integral_value(ROUND_CEILING) * step


def nearest_to(value: Decimal, step: Decimal) -> Decimal:
    if step <= 0:
        return value
    return (value / step).to_integral_value(ROUND_HALF_EVEN) * step


@dataclass(frozen=True, slots=True)
class SymbolRules:
    """The filters of one symbol that the adapter enforces before sending. 0 = check disabled."""

    symbol: str
    market: Market
    status: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal = ZERO
    min_price: Decimal = ZERO
    max_price: Decimal = ZERO
    step_size: Decimal = ZERO
    min_qty: Decimal = ZERO
    max_qty: Decimal = ZERO
    market_step_size: Decimal = ZERO
    market_min_qty: Decimal = ZERO
    market_max_qty: Decimal = ZERO
    min_notional: Decimal = ZERO
    max_notional: Decimal = ZERO
    min_notional_applies_to_market: bool = True
    max_notional_applies_to_market: bool = False

    @property
    def trading(self) -> bool:
        return self.status == "TRADING"

    @classmethod
    def from_exchange_info(cls, sym: dict[str, Any], market: Market) -> "SymbolRules":
        """Build from one element of exchangeInfo['symbols'] (spot or USD-M shapes)."""
        f = {x["filterType"]: x for x in sym.get("filters", [])}
        price = f.get("PRICE_FILTER", {})
        lot = f.get("LOT_SIZE", {})
        mlot = f.get("MARKET_LOT_SIZE", {})
        kw: dict[str, Any] = {}
        if "NOTIONAL" in f:  # spot, current
            n = f["NOTIONAL"]
            kw.update(min_notional=dec(n.get("minNotional", 0)), max_notional=dec(n.get("maxNotional", 0)),
                      min_notional_applies_to_market=bool(n.get("applyMinToMarket", True)),
                      max_notional_applies_to_market=bool(n.get("applyMaxToMarket", False)))
        elif "MIN_NOTIONAL" in f:  # spot legacy uses minNotional, USD-M uses notional
            n = f["MIN_NOTIONAL"]
            kw.update(min_notional=dec(n.get("minNotional", n.get("notional", 0))),
                      min_notional_applies_to_market=bool(n.get("applyToMarket", True)))
        return cls(
            symbol=sym["symbol"], market=market, status=str(sym.get("status", "")),
            base_asset=sym.get("baseAsset", ""), quote_asset=sym.get("quoteAsset", ""),
            tick_size=dec(price.get("tickSize", 0)), min_price=dec(price.get("minPrice", 0)),
            max_price=dec(price.get("maxPrice", 0)),
            step_size=dec(lot.get("stepSize", 0)), min_qty=dec(lot.get("minQty", 0)), max_qty=dec(lot.get("maxQty", 0)),
            market_step_size=dec(mlot.get("stepSize", 0)), market_min_qty=dec(mlot.get("minQty", 0)),
            market_max_qty=dec(mlot.get("maxQty", 0)),
            **kw,
        )

    # ---- rounding ------------------------------------------------------------------------------
    def lot(self, market_order: bool) -> tuple[Decimal, Decimal, Decimal]:
        """(step, min, max) for the order type: MARKET_LOT_SIZE when it is set (stepSize > 0)."""
        if market_order and self.market_step_size > 0:
            return self.market_step_size, self.market_min_qty, self.market_max_qty
        step, lo, hi = self.step_size, self.min_qty, self.max_qty
        if market_order:  # MARKET_LOT_SIZE may still narrow min/max with a zero step
            lo = max(lo, self.market_min_qty)
            hi = min(hi, self.market_max_qty) if self.market_max_qty > 0 and hi > 0 else (hi or self.market_max_qty)
        return step, lo, hi

    def round_qty(self, qty: Decimal | float | str, market_order: bool = True) -> Decimal:
        """Floor to the step: never send more than asked."""
        step, _, _ = self.lot(market_order)
        return floor_to(dec(qty), step)

    def round_price(self, price: Decimal | float | str, side: str | None = None,
                    mode: PriceMode = "nearest") -> Decimal:
        p, tick = dec(price), self.tick_size
        if mode == "down" or (mode == "passive" and side == "BUY"):
            return floor_to(p, tick)
        if mode == "up" or (mode == "passive" and side == "SELL"):
            return ceil_to(p, tick)
        return nearest_to(p, tick)

    # ---- checks -------------------------------------------------------------------------------
    def problems(self, qty: Decimal, price: Decimal | None, market_order: bool,
                 check_notional: bool = True) -> list[str]:
        """Filter violations of an already-rounded order (empty = sendable). `price` is the limit
        price, or for a MARKET order the reference price used for the notional estimate.
        `check_notional=False` for reduce-only orders: Binance exempts them from the futures
        MIN_NOTIONAL (closing a small position must stay possible)."""
        out: list[str] = []
        if not self.trading:
            out.append(f"{self.symbol} status is {self.status}, not TRADING")
        step, lo, hi = self.lot(market_order)
        if qty <= 0:
            out.append(f"quantity {fmt(qty)} <= 0 after rounding to step {fmt(step)}")
        if lo > 0 and qty < lo:
            out.append(f"quantity {fmt(qty)} < minQty {fmt(lo)}")
        if hi > 0 and qty > hi:
            out.append(f"quantity {fmt(qty)} > maxQty {fmt(hi)}")
        if step > 0 and qty % step != 0:
            out.append(f"quantity {fmt(qty)} is not a multiple of stepSize {fmt(step)}")
        if price is not None:
            if not market_order:
                if self.min_price > 0 and price < self.min_price:
                    out.append(f"price {fmt(price)} < minPrice {fmt(self.min_price)}")
                if self.max_price > 0 and price > self.max_price:
                    out.append(f"price {fmt(price)} > maxPrice {fmt(self.max_price)}")
                if self.tick_size > 0 and price % self.tick_size != 0:
                    out.append(f"price {fmt(price)} is not a multiple of tickSize {fmt(self.tick_size)}")
            notional = qty * price
            check_min = check_notional and self.min_notional > 0 and (
                not market_order or self.min_notional_applies_to_market)
            check_max = check_notional and self.max_notional > 0 and (
                not market_order or self.max_notional_applies_to_market)
            if check_min and notional < self.min_notional:
                out.append(f"notional {fmt(notional)} < minNotional {fmt(self.min_notional)}")
            if check_max and notional > self.max_notional:
                out.append(f"notional {fmt(notional)} > maxNotional {fmt(self.max_notional)}")
        return out


def parse_exchange_info(info: dict[str, Any], market: Market) -> dict[str, SymbolRules]:
    return {s["symbol"]: SymbolRules.from_exchange_info(s, market) for s in info.get("symbols", [])}
