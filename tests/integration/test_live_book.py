"""Resting LIMIT orders on the local exchange through the live path: LiveExecutor (intent first),
LiveBook (the DCA ladder's venue) and the user-data stream, with a real exchange process, real
redis-server and python-binance unmodified.

* a resting buy is recorded before it is sent, rests on the venue, and when the price trades
  through it the fill is in Redis (intent FILLED with its trade) within 2 s of the venue's trade,
  from the stream, and handed to the bot once;
* a cancel cancels it on the venue and says so in the intent;
* fills that happen while the stream is down come back from the REST poll on reconnect;
* after a "restart" (a new LiveBook loading the old book) an order that filled meanwhile is booked
  once, and an order the snapshot missed is adopted.
"""
from __future__ import annotations

import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from core.types import OrderPurpose
from executors.spot_fees import spot_fills
from exchange.client import ExchangeClient
from exchange.userdata import UserDataStream
from exchange.venues import venue_urls
from executors.live import LiveExecutor
from executors.live_book import LiveBook
from executors.venue import RestingOrder
from sim_process import KEY, SECRET, SimProcess
from state.intents import RedisIntentStore
from support import wait_for

SYMBOL = "BTCUSDT"


@pytest.fixture
def venue(tmp_path: Path):
    # Paused market: only the test moves the price.
    sim = SimProcess(tmp_path / "exchange.log", "--source", "synthetic", "--symbols", SYMBOL, "--seed", "3",
                     "--speed", "0", "--warmup", "10")
    yield sim
    sim.close()


def make_book(sim: SimProcess, r, bot: str = "dca-live") -> tuple[LiveBook, ExchangeClient]:
    client = sim.client()
    ex = LiveExecutor(client, RedisIntentStore(r))
    return LiveBook(ex, bot, convert=lambda fills: spot_fills(client, fills)), client


def stream_for(url: str, book: LiveBook, resyncs: list[float]) -> UserDataStream:
    def resync() -> None:
        resyncs.append(time.monotonic())
        book.poll()

    s = UserDataStream(venue_urls("local", url), KEY, SECRET, "spot", on_event=book.on_event, on_resync=resync)
    s.start()
    assert s.wait_connected(10), "the user-data stream did not connect"
    return s


def price(client: ExchangeClient) -> Decimal:
    return client.price(SYMBOL)


def test_resting_buy_fills_from_the_stream_within_2s_and_is_booked_once(venue, r):
    book, client = make_book(venue, r)
    woke = threading.Event()
    book.wake = woke.set
    stream = stream_for(venue.url, book, [])
    try:
        p = price(client)
        limit = float(p * Decimal("0.98"))
        order = RestingOrder("dcatest-so1", "dca-live", SYMBOL, "BUY", 0.0123456, limit, "SO1", 0)
        assert book.place(order, OrderPurpose.ENTRY)
        rec = RedisIntentStore(r).get("dca-live", "dcatest-so1")
        assert rec is not None and rec.order_type == "LIMIT" and rec.status == "NEW" and rec.tag == "SO1"
        assert Decimal(rec.quantity) == Decimal("0.01234")          # floored to the LOT_SIZE step
        assert order.quantity == 0.01234                            # the book holds what was sent
        assert [o.client_order_id for o in client.open_orders(SYMBOL)] == ["dcatest-so1"]
        assert book.reserved_quote() == pytest.approx(0.01234 * order.price)
        assert book.take() == []

        venue.set_price(SYMBOL, str((p * Decimal("0.97")).quantize(Decimal("0.01"))))  # trades through it
        traded = time.monotonic()
        filled = wait_for(lambda: (x := RedisIntentStore(r).get("dca-live", "dcatest-so1")) and
                          x.status == "FILLED" and x.fills and x, 2.0, "the fill in Redis within 2 s")
        assert time.monotonic() - traded < 2.0
        assert sum(Decimal(f.qty) for f in filled.fills) == Decimal("0.01234")
        assert woke.wait(2), "the worker was not woken"
        got = book.take(SYMBOL)
        assert len(got) == 1
        o, fill = got[0]
        assert o.tag == "SO1" and fill.price <= order.price
        # Spot buy: the fee is paid in BTC, so the bot holds the quantity net of it.
        assert fill.quantity == pytest.approx(0.01234 - float(Decimal(filled.fills[0].commission)))
        assert book.open_orders() == [] and book.take() == []       # once
        assert book.poll() == 0 and book.take() == []               # a later poll does not book it again
    finally:
        stream.close()


def test_cancel_and_fills_missed_while_the_stream_was_down(venue, r):
    book, client = make_book(venue, r)
    resyncs: list[float] = []
    stream = stream_for(venue.url, book, resyncs)
    try:
        p = price(client)
        a = RestingOrder("dcatest-a", "dca-live", SYMBOL, "BUY", 0.01, float(p * Decimal("0.95")), "SO1", 0)
        b = RestingOrder("dcatest-b", "dca-live", SYMBOL, "BUY", 0.01, float(p * Decimal("0.99")), "SO2", 0)
        assert book.place(a) and book.place(b)
        assert book.cancel("dcatest-a") is a
        assert RedisIntentStore(r).get("dca-live", "dcatest-a").status == "CANCELED"
        assert {o.client_order_id for o in client.open_orders(SYMBOL)} == {"dcatest-b"}

        # Drop the stream and trade through b while it is down: the resync poll books it.
        stream.close()
        venue.set_price(SYMBOL, str((p * Decimal("0.985")).quantize(Decimal("0.01"))))
        wait_for(lambda: client.open_orders(SYMBOL) == [], 5, "b filled on the venue while nobody listened")
        assert RedisIntentStore(r).get("dca-live", "dcatest-b").status == "NEW"   # not booked by anyone yet
        n = len(resyncs)
        stream = stream_for(venue.url, book, resyncs)
        assert len(resyncs) == n + 1
        got = wait_for(lambda: book.take(SYMBOL) or None, 5, "the missed fill from the resync poll")
        assert [o.client_order_id for o, _ in got] == ["dcatest-b"]
    finally:
        stream.close()


def test_restart_books_what_filled_meanwhile_and_adopts_what_the_snapshot_missed(venue, r):
    book, client = make_book(venue, r)
    p = price(client)
    a = RestingOrder("dcatest-r1", "dca-live", SYMBOL, "BUY", 0.01, float(p * Decimal("0.99")), "SO1", 0)
    b = RestingOrder("dcatest-r2", "dca-live", SYMBOL, "BUY", 0.01, float(p * Decimal("0.90")), "SO2", 0)
    assert book.place(a)
    snapshot = book.dump()  # the last snapshot saw only a
    assert book.place(b)
    # "Crash": nobody listens; the price trades through a.
    venue.set_price(SYMBOL, str((p * Decimal("0.985")).quantize(Decimal("0.01"))))

    book2, _ = make_book(venue, r)
    book2.load(snapshot)
    got = book2.take(SYMBOL)
    assert [(o.client_order_id, o.tag) for o, _ in got] == [("dcatest-r1", "SO1")]
    assert [(o.client_order_id, o.tag) for o in book2.open_orders()] == [("dcatest-r2", "SO2")]  # adopted
    book3, _ = make_book(venue, r)
    book3.load(book2.dump())
    assert book3.take() == []  # booked once: the next snapshot no longer lists it


def test_futures_market_order_fills_come_from_the_stream_not_rest(venue, r):
    client = venue.client("futures")
    ex = LiveExecutor(client, RedisIntentStore(r))
    stream = UserDataStream(venue_urls("local", venue.url), KEY, SECRET, "futures", on_event=ex.on_stream_trade)
    stream.start()
    assert stream.wait_connected(10)
    ex.stream_up = lambda: stream.connected
    rest_calls: list[int] = []
    rest_trades = client.trades
    client.trades = lambda symbol, order_id: rest_calls.append(order_id) or rest_trades(symbol, order_id)
    try:
        from core.types import Order, Side

        order = Order("futstream-1", "fut-bot", SYMBOL, Side.BUY, 0.002, OrderPurpose.ENTRY)
        fills = ex.execute(order, float(client.price(SYMBOL)), 0)
        assert order.status.value == "FILLED" and sum(f.quantity for f in fills) == pytest.approx(0.002)
        assert all(f.fee > 0 and f.fee_asset == "USDT" for f in fills)
        assert ex.streamed_fills == 1 and rest_calls == []   # no REST trades request
        rec = RedisIntentStore(r).get("fut-bot", "futstream-1")
        assert [f.trade_id for f in rec.fills] and sum(Decimal(f.qty) for f in rec.fills) == Decimal("0.002")
        # Without the stream the same path falls back to REST.
        stream.close()
        order2 = Order("futstream-2", "fut-bot", SYMBOL, Side.SELL, 0.002, OrderPurpose.EXIT, reduce_only=True)
        fills2 = ex.execute(order2, float(client.price(SYMBOL)), 0)
        assert order2.status.value == "FILLED" and sum(f.quantity for f in fills2) == pytest.approx(0.002)
        assert ex.streamed_fills == 1 and len(rest_calls) >= 1
    finally:
        stream.close()


def test_a_futures_safety_order_whose_trades_cannot_be_fetched_stays_until_they_can_never_lost(venue, r):
    """A USD-M order answer carries no trades: the book asks for them. When that request fails (the
    venue busy right after a restart), the order is FILLED on the venue but its fill is not in hand:
    it stays in the book, counted as executed for reconciliation, and the next poll books it once."""
    from exchange.errors import ExchangeError

    client = venue.client("futures")
    book = LiveBook(LiveExecutor(client, RedisIntentStore(r)), "dca-fut")
    p = client.price(SYMBOL)
    so = RestingOrder("dcafut-so1", "dca-fut", SYMBOL, "BUY", 0.002, float(p * Decimal("0.99")), "SO1", 0)
    assert book.place(so)
    venue.set_price(SYMBOL, str((p * Decimal("0.985")).quantize(Decimal("0.1"))))
    wait_for(lambda: client.open_orders(SYMBOL) == [], 5, "the safety order filled on the venue, nobody listening")

    real_trades, failures = client.trades, []

    def busy(symbol, order_id):  # type: ignore[no-untyped-def]
        if not failures:
            failures.append(order_id)
            raise ExchangeError("Service Unavailable.", code=-1008, status=503)
        return real_trades(symbol, order_id)

    client.trades = busy
    book.poll()
    assert failures and book.take() == []  # its trades could not be fetched: nothing to hand over yet
    assert [o.client_order_id for o in book.open_orders()] == ["dcafut-so1"]  # kept, not dropped
    assert RedisIntentStore(r).get("dca-fut", "dcafut-so1").status == "FILLED"
    assert book.unbooked(SYMBOL) == Decimal("0.002")  # reconciliation counts it as executed
    book.poll()
    ((order, fill),) = book.take()
    assert order.client_order_id == "dcafut-so1" and fill.quantity == pytest.approx(0.002)
    book.poll()
    assert book.take() == [] and book.open_orders() == [] and book.unbooked(SYMBOL) == 0  # booked once
