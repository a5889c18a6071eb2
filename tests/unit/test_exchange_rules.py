"""Symbol filters and Decimal rounding (exchange/rules.py)."""
from __future__ import annotations

from decimal import Decimal as D

import pytest

from exchange.rules import SymbolRules, dec, fmt, parse_exchange_info

SPOT = {"symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT", "filters": [
    {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000", "tickSize": "0.01000000"},
    {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
    {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "120.00000000", "stepSize": "0.00000000"},
    {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True, "maxNotional": "9000000.00000000",
     "applyMaxToMarket": False, "avgPriceMins": 5}]}
FUT = {"symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT", "filters": [
    {"filterType": "PRICE_FILTER", "minPrice": "0.10", "maxPrice": "4529764", "tickSize": "0.10"},
    {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "1000", "stepSize": "0.001"},
    {"filterType": "MARKET_LOT_SIZE", "minQty": "0.001", "maxQty": "120", "stepSize": "0.001"},
    {"filterType": "MIN_NOTIONAL", "notional": "100"}]}


def test_fmt_never_uses_exponents() -> None:
    assert fmt(D("1E-5")) == "0.00001"
    assert fmt(1e-05) == "0.00001"
    assert fmt(D("0.00001000")) == "0.00001"
    assert fmt(D("1E+3")) == "1000"
    assert fmt(D("60000.10")) == "60000.1"
    assert fmt(D("-0.0")) == "0"
    assert fmt("0.1") == "0.1" and fmt(0.1) == "0.1"  # floats go through repr, not binary expansion
    with pytest.raises(ValueError):
        fmt(D("NaN"))


def test_dec_is_exact_for_floats() -> None:
    assert dec(0.1) == D("0.1") and dec(3) == D(3) and dec("1.50") == D("1.50")
    with pytest.raises(ValueError):
        dec("abc")


def test_parse_spot_and_futures_filters() -> None:
    s = SymbolRules.from_exchange_info(SPOT, "spot")
    assert (s.tick_size, s.step_size, s.min_qty, s.min_notional, s.market_max_qty) == \
        (D("0.01"), D("0.00001"), D("0.00001"), D("5"), D("120"))
    assert s.trading and s.base_asset == "BTC" and s.quote_asset == "USDT"
    f = parse_exchange_info({"symbols": [FUT]}, "futures")["BTCUSDT"]
    assert (f.tick_size, f.market_step_size, f.min_notional) == (D("0.1"), D("0.001"), D("100"))


def test_quantity_floors_to_the_step_and_market_lot_size() -> None:
    s = SymbolRules.from_exchange_info(SPOT, "spot")
    assert s.round_qty(0.0123456) == D("0.01234")
    assert fmt(s.round_qty(D("0.000019"))) == "0.00001"
    assert s.lot(market_order=True) == (D("0.00001"), D("0.00001"), D("120"))  # MARKET max is narrower
    f = SymbolRules.from_exchange_info(FUT, "futures")
    assert f.round_qty("0.0029") == D("0.002")  # MARKET_LOT_SIZE step


def test_price_rounding_modes() -> None:
    s = SymbolRules.from_exchange_info(SPOT, "spot")
    assert s.round_price("60000.005") == D("60000.00")  # half-even to the tick
    assert s.round_price("60000.006") == D("60000.01")
    assert s.round_price("60000.009", "BUY", "passive") == D("60000.00")
    assert s.round_price("60000.001", "SELL", "passive") == D("60000.01")
    assert fmt(s.round_price(D("0.123456"), mode="down")) == "0.12"


def test_problems_after_rounding() -> None:
    s = SymbolRules.from_exchange_info(SPOT, "spot")
    assert s.problems(D("0.001"), D("60000"), market_order=True) == []
    assert s.problems(D("0.00005"), D("60000"), market_order=True) == ["notional 3 < minNotional 5"]
    assert s.problems(D("0"), D("60000"), market_order=True)[0].startswith("quantity 0 <= 0")
    assert "quantity 121 > maxQty 120" in s.problems(D("121"), D("1"), market_order=True)
    assert s.problems(D("121"), D("1"), market_order=False) == []  # LIMIT uses LOT_SIZE max 9000
    assert "price 1.005 is not a multiple of tickSize 0.01" in s.problems(D("10"), D("1.005"), market_order=False)
    assert "quantity 0.000015 is not a multiple of stepSize 0.00001" in s.problems(D("0.000015"), None, True)
    halted = SymbolRules.from_exchange_info({**SPOT, "status": "HALT"}, "spot")
    assert halted.problems(D("0.001"), D("60000"), True) == ["BTCUSDT status is HALT, not TRADING"]
    f = SymbolRules.from_exchange_info(FUT, "futures")
    assert f.problems(D("0.001"), D("60000"), True) == ["notional 60 < minNotional 100"]
