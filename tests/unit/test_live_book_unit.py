"""LiveBook's bookkeeping without a venue: a completed order is handed to the bot exactly once,
even when converting its fill fails the first time (an exchangeInfo refresh on the stream thread)."""
from __future__ import annotations

from decimal import Decimal

import pytest

from core.types import Fill
from exchange.client import VenueTrade
from executors.live_book import LiveBook
from executors.venue import RestingOrder
from state.intents import IntentRecord


class StubExecutor:
    """The LiveExecutor calls LiveBook makes, answering like the venue would."""

    client = type("Client", (), {"futures": False})()

    def __init__(self) -> None:
        self.rec: IntentRecord | None = None

    def place_limit(self, order, tag=""):  # type: ignore[no-untyped-def]
        self.rec = IntentRecord(client_order_id=order.client_order_id, bot=order.bot, venue="local", market="spot",
                                symbol=order.symbol, side=order.side.value, order_type="LIMIT", quantity="0.01",
                                price="100", tag=tag, status="NEW", created_at=0)
        return self.rec, []

    def apply_event(self, rec, ev):  # type: ignore[no-untyped-def]
        rec.status = "FILLED"
        return [VenueTrade("BTCUSDT", 7, 1, "BUY", Decimal("100"), Decimal("0.01"), Decimal("0.01"), "USDT", 5)]

    def refresh(self, rec, cause="poll"):  # type: ignore[no-untyped-def]
        return []  # final already: nothing new at the venue


def test_a_fill_whose_conversion_fails_is_booked_on_the_next_poll_not_lost() -> None:
    calls = {"n": 0}

    def flaky(fills: list[Fill]) -> list[Fill]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("exchangeInfo refresh failed")
        return fills

    book = LiveBook(StubExecutor(), "bot", convert=flaky)  # type: ignore[arg-type]
    assert book.place(RestingOrder("so1", "bot", "BTCUSDT", "BUY", 0.0123, 100.0, "SO1", 0))
    with pytest.raises(ConnectionError):
        book.on_event(type("Ev", (), {"client_order_id": "so1"})())  # type: ignore[arg-type]
    assert [o.client_order_id for o in book.open_orders()] == ["so1"] and book.take() == []
    book.poll()
    ((order, fill),) = book.take()
    assert order.tag == "SO1" and fill.quantity == pytest.approx(0.01) and fill.price == pytest.approx(100.0)
    assert book.open_orders() == [] and book.take() == []
    book.poll()
    assert book.take() == []  # booked once


def test_a_fill_absorbed_but_not_yet_taken_is_named_in_the_snapshot() -> None:
    """The stream thread completes an order outside the trading lock; a snapshot built before the bot
    takes the fill must still name the order, so a restart from it asks the venue and books it."""
    book = LiveBook(StubExecutor(), "bot")  # type: ignore[arg-type]
    assert book.place(RestingOrder("tp1", "bot", "BTCUSDT", "SELL", 0.01, 100.0, "TP1", 0))
    book.on_event(type("Ev", (), {"client_order_id": "tp1"})())  # type: ignore[arg-type]
    assert book.open_orders() == []  # complete on the venue, not handed to the bot yet
    assert [r["client_order_id"] for r in book.dump()] == ["tp1"]
    book.take()
    assert book.dump() == []  # once the bot took it, its books hold it
