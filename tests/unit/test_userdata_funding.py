"""exchange.userdata.parse_funding_event: Binance's FUNDING_FEE ACCOUNT_UPDATE as typed Decimal events."""
from __future__ import annotations

from decimal import Decimal as D

import pytest

from exchange.userdata import FundingEvent, parse_funding_event

CROSS = {"e": "ACCOUNT_UPDATE", "E": 1700006400123, "T": 1700006400000,
         "a": {"m": "FUNDING_FEE", "B": [{"a": "USDT", "wb": "9997.50000000", "cw": "9997.50000000", "bc": "-2.50000000"}],
               "P": []}}
ISOLATED = {"e": "ACCOUNT_UPDATE", "E": 1700006400124, "T": 1700006400000,
            "a": {"m": "FUNDING_FEE", "B": [{"a": "USDT", "wb": "9997.80000000", "cw": "9697.50000000", "bc": "0.30000000"}],
                  "P": [{"s": "ETHUSDT", "pa": "-1.000", "ep": "2999.99", "cr": "0", "up": "0", "mt": "isolated",
                         "iw": "300.30000000", "ps": "BOTH"}]}}


def test_cross_and_isolated_funding() -> None:
    assert parse_funding_event(CROSS) == [FundingEvent("USDT", D("-2.5"), D("9997.5"), None, 1700006400123, 1700006400000)]
    [iso] = parse_funding_event(ISOLATED)
    assert (iso.symbol, iso.amount, iso.wallet_balance) == ("ETHUSDT", D("0.3"), D("9997.8"))
    assert isinstance(iso.amount, D)


def test_other_events_are_not_funding() -> None:
    order_update = {**CROSS, "a": {**CROSS["a"], "m": "ORDER"}}  # type: ignore[dict-item]
    for msg in (order_update, {"e": "ORDER_TRADE_UPDATE", "o": {}}, {"e": "ACCOUNT_UPDATE"}, [], "x"):
        assert parse_funding_event(msg) == []  # type: ignore[arg-type]


def test_a_malformed_funding_event_raises() -> None:
    bad = {**CROSS, "a": {"m": "FUNDING_FEE", "B": [{"wb": "1", "bc": "x"}]}}
    with pytest.raises((KeyError, ValueError)):
        parse_funding_event(bad)
