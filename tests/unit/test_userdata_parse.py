"""exchange.userdata.parse_event on real-shaped user-data payloads (reference/binance-api.md §8,
the local exchange's builders in simulator/user_stream.py)."""
from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from exchange.client import VenueTrade
from exchange.userdata import OrderEvent, UserDataStream, parse_event
from exchange.venues import venue_urls


def execution_report(**over: Any) -> dict[str, Any]:
    ev = {
        "e": "executionReport", "E": 1_700_000_000_123, "s": "BTCUSDT", "c": "bot-1", "S": "BUY", "o": "LIMIT",
        "f": "GTC", "q": "0.00200000", "p": "50000.00000000", "P": "0.00000000", "F": "0.00000000", "g": -1,
        "C": "", "x": "NEW", "X": "NEW", "r": "NONE", "i": 42, "l": "0.00000000", "z": "0.00000000",
        "L": "0.00000000", "n": "0.00000000", "N": None, "T": 1_700_000_000_100, "t": -1, "I": 0, "w": True,
        "m": False, "M": False, "O": 1_700_000_000_100, "Z": "0.00000000", "Y": "0.00000000",
        "Q": "0.00000000", "W": 1_700_000_000_100, "V": "EXPIRE_MAKER",
    }
    ev.update(over)
    return ev


def order_trade_update(**over: Any) -> dict[str, Any]:
    o = {
        "s": "BTCUSDT", "c": "fut-1", "S": "SELL", "o": "LIMIT", "f": "GTC", "q": "0.010", "p": "61000.0",
        "ap": "0", "sp": "0", "x": "NEW", "X": "NEW", "i": 8_000_001, "l": "0", "z": "0", "L": "0",
        "N": "USDT", "n": "0", "T": 1_700_000_001_000, "t": 0, "b": "0", "a": "610", "m": False, "R": False,
        "wt": "CONTRACT_PRICE", "ot": "LIMIT", "ps": "BOTH", "cp": False, "rp": "0", "pP": False, "si": 0,
        "ss": 0, "V": "EXPIRE_MAKER", "pm": "NONE", "gtd": 0,
    }
    o.update(over)
    return {"e": "ORDER_TRADE_UPDATE", "E": 1_700_000_001_050, "T": 1_700_000_001_000, "o": o}


def test_spot_new_in_ws_api_wrapper() -> None:
    ev = parse_event("spot", {"subscriptionId": 0, "event": execution_report()})
    assert ev == OrderEvent(
        market="spot", symbol="BTCUSDT", client_order_id="bot-1", order_id=42, side="BUY", order_type="LIMIT",
        status="NEW", exec_type="NEW", orig_qty=D("0.002"), price=D("50000"), cum_qty=D(0), cum_quote=D(0),
        last_qty=D(0), last_price=D(0), commission=D(0), commission_asset="", trade_id=-1,
        event_time=1_700_000_000_123, trade_time=1_700_000_000_100, reduce_only=False, realized_pnl=D(0))
    assert not ev.is_trade and ev.trade() is None
    assert parse_event("spot", execution_report()) == ev  # unwrapped (as python-binance delivers it)


def test_spot_partial_fill_and_trade() -> None:
    ev = parse_event("spot", execution_report(
        x="TRADE", X="PARTIALLY_FILLED", l="0.00100000", z="0.00100000", L="49990.00000000", n="0.00000100",
        N="BTC", T=1_700_000_000_900, t=777, Z="49.99000000", Y="49.99000000", m=True))
    assert ev is not None and ev.is_trade
    assert (ev.status, ev.cum_qty, ev.cum_quote, ev.last_qty, ev.last_price) == (
        "PARTIALLY_FILLED", D("0.001"), D("49.99"), D("0.001"), D("49990"))
    assert ev.trade() == VenueTrade("BTCUSDT", 777, 42, "BUY", D("49990"), D("0.001"), D("0.000001"), "BTC",
                                    1_700_000_000_900, D(0))


def test_spot_cancel_reports_the_original_client_id() -> None:
    # Binance: c = the cancel request's own id, C = the order's original id
    ev = parse_event("spot", execution_report(x="CANCELED", X="CANCELED", c="web_cancel_9", C="bot-1"))
    assert ev is not None and ev.client_order_id == "bot-1" and ev.exec_type == "CANCELED"
    assert not ev.is_trade and ev.trade() is None
    # C empty (a venue that leaves it out): fall back to c
    assert parse_event("spot", execution_report(x="CANCELED", X="CANCELED", c="bot-1", C="")).client_order_id == "bot-1"
    # not a cancel: c even if C is set
    assert parse_event("spot", execution_report(x="EXPIRED", X="EXPIRED", C="zzz")).client_order_id == "bot-1"


def test_trade_with_zero_qty_is_not_a_trade() -> None:
    ev = parse_event("spot", execution_report(x="TRADE", X="FILLED", l="0", t=5))
    assert ev is not None and not ev.is_trade and ev.trade() is None


def test_futures_new_and_fill() -> None:
    new = parse_event("futures", order_trade_update())
    assert new is not None and new.market == "futures" and new.client_order_id == "fut-1"
    assert (new.order_id, new.side, new.order_type, new.status, new.exec_type) == (
        8_000_001, "SELL", "LIMIT", "NEW", "NEW")
    assert (new.orig_qty, new.price, new.trade_id, new.trade(), new.event_time, new.trade_time) == (
        D("0.01"), D("61000"), -1, None, 1_700_000_001_050, 1_700_000_001_000)

    fill = parse_event("futures", order_trade_update(
        x="TRADE", X="FILLED", l="0.010", z="0.010", L="61000.0", ap="61000.00000000", n="0.12200000",
        T=1_700_000_002_000, t=100_001, m=True, R=True, rp="12.50000000"))
    assert fill is not None and fill.is_trade and fill.reduce_only
    assert (fill.cum_qty, fill.cum_quote, fill.realized_pnl) == (D("0.01"), D("610"), D("12.5"))
    assert fill.trade() == VenueTrade("BTCUSDT", 100_001, 8_000_001, "SELL", D("61000"), D("0.01"), D("0.122"),
                                      "USDT", 1_700_000_002_000, D("12.5"))


def test_futures_without_commission_fields() -> None:
    ev = order_trade_update(x="CANCELED", X="CANCELED")
    del ev["o"]["n"], ev["o"]["N"]
    out = parse_event("futures", ev)
    assert out is not None and out.commission == 0 and out.commission_asset == "" and out.exec_type == "CANCELED"


@pytest.mark.parametrize("market,msg", [
    ("spot", {"e": "outboundAccountPosition", "E": 1, "u": 1, "B": [{"a": "BTC", "f": "1", "l": "0"}]}),
    ("spot", {"subscriptionId": 0, "event": {"e": "balanceUpdate", "E": 1, "a": "BTC", "d": "1", "T": 1}}),
    ("spot", {"subscriptionId": 0, "event": {"e": "eventStreamTerminated", "E": 1}}),
    ("spot", {"e": "error", "type": "BinanceWebsocketClosed", "m": "Connection closed. Reconnecting..."}),
    ("futures", {"e": "ACCOUNT_UPDATE", "E": 1, "T": 1, "a": {"m": "ORDER", "B": [], "P": []}}),
    ("futures", {"e": "ALGO_UPDATE", "E": 1, "T": 1, "o": {"caid": "x", "X": "NEW"}}),
    ("futures", {"e": "listenKeyExpired", "E": 1, "listenKey": "k"}),
    ("futures", {"e": "MARGIN_CALL", "E": 1}),
    ("futures", execution_report()),  # the other market's order event
    ("spot", order_trade_update()),
    ("spot", {}),
])
def test_other_events_are_none(market: str, msg: dict[str, Any]) -> None:
    assert parse_event(market, msg) is None


def test_secrets_not_in_repr() -> None:
    s = UserDataStream(venue_urls("local"), "the-key-123", "the-secret-456", "spot", lambda e: None)
    assert "the-secret-456" not in repr(s) and "the-key-123" not in repr(s)
    assert "the-secret-456" not in s._redact(RuntimeError("boom the-secret-456 listenKey=abc&x=1"))
    assert "abc" not in s._redact("GET /private/ws?listenKey=abc")
