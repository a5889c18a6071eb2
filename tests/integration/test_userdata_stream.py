"""UserDataStream against the local exchange as a real process, through unmodified python-binance.

Prices are paused (--speed 0) and moved with /admin/price, so each fill happens when the test says;
orders are placed with python-binance's sync Client (the same URL overrides as production).
Per market: NEW then TRADE/FILLED for a resting LIMIT order, within 2 s of the venue's trade time;
a cancel reports the original client id; /admin/faults drop_ws forces a reconnect (on_resync runs
again, events flow again); close() is prompt.
"""
from __future__ import annotations

import threading
import time
from decimal import Decimal as D
from pathlib import Path
from typing import Any, Iterator

import pytest

from exchange.userdata import OrderEvent, UserDataStream
from exchange.venues import VenueUrls, client_class, venue_urls
from sim_process import KEY, SECRET, SimProcess, free_port
from support import wait_for

pytestmark = pytest.mark.timeout(90)

LATENCIES_MS: list[int] = []  # venue trade time -> on_event; each one is asserted <= 2 s where measured


@pytest.fixture(scope="module", autouse=True)
def _report_latencies() -> Iterator[None]:
    """Prints the measured latencies once the module is done (visible with pytest -s)."""
    LATENCIES_MS.clear()
    yield
    if LATENCIES_MS:
        print(f"\nuser-data latency trade->on_event ms: {sorted(LATENCIES_MS)}")


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    p = SimProcess(Path(tmp_path_factory.mktemp("sim")) / "exchange.log", "--seed", "3", "--speed", "0")
    yield p
    p.close()


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[int, OrderEvent]] = []  # (wall ms when on_event ran, event)
        self.resyncs = 0
        self._lock = threading.Lock()

    def on_event(self, ev: OrderEvent) -> None:
        with self._lock:
            self.events.append((int(time.time() * 1000), ev))

    def on_resync(self) -> None:
        with self._lock:
            self.resyncs += 1

    def of(self, order_id: int) -> list[tuple[int, OrderEvent]]:
        with self._lock:
            return [(t, e) for t, e in self.events if e.order_id == order_id]


class Venue:
    """Order placement per market through python-binance's sync Client."""

    def __init__(self, urls: VenueUrls, market: str) -> None:
        self.c = client_class(urls)(KEY, SECRET)
        self.market = market

    def limit_buy(self, price: str, qty: str, cid: str) -> dict[str, Any]:
        if self.market == "spot":
            return self.c.order_limit_buy(symbol="BTCUSDT", quantity=qty, price=price, newClientOrderId=cid)
        return self.c.futures_create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                           quantity=qty, price=price, newClientOrderId=cid)

    def cancel(self, order_id: int) -> None:
        if self.market == "spot":  # a cancel with its own client id: the event's c is that one, C the order's
            self.c.cancel_order(symbol="BTCUSDT", orderId=order_id, newClientOrderId=f"cxl-{order_id}")
        else:
            self.c.futures_cancel_order(symbol="BTCUSDT", orderId=order_id)


def fill_resting_buy(sim: SimProcess, venue: Venue, rec: Recorder, cid: str) -> tuple[OrderEvent, OrderEvent, int]:
    """Place a BUY 0.002 @ 59000 with the price at 60000, trade the price through it; NEW and FILLED events."""
    sim.set_price("BTCUSDT", "60000")
    order = venue.limit_buy("59000", "0.002", cid)
    oid = int(order["orderId"])
    wait_for(lambda: rec.of(oid), 5, "NEW event")
    sent = int(time.time() * 1000)
    sim.set_price("BTCUSDT", "58900")
    wait_for(lambda: any(e.status == "FILLED" for _, e in rec.of(oid)), 5, "FILLED event")
    evs = rec.of(oid)
    assert [(e.exec_type, e.status) for _, e in evs] == [("NEW", "NEW"), ("TRADE", "FILLED")]
    (_, new), (got_at, fill) = evs
    latency = got_at - fill.trade_time
    LATENCIES_MS.append(latency)
    assert 0 <= got_at - sent and latency <= 2000, (sent, fill.trade_time, got_at)
    return new, fill, oid


@pytest.mark.parametrize("market", ["spot", "futures"])
def test_user_data_stream(sim: SimProcess, market: str) -> None:
    urls = venue_urls("local", sim.url)
    venue = Venue(urls, market)
    rec = Recorder()
    stream = UserDataStream(urls, KEY, SECRET, market, rec.on_event, rec.on_resync, reconnect_delay_s=0.2)
    stream.start()
    try:
        assert stream.wait_connected(10), stream.error
        assert stream.connected and rec.resyncs == 1 and stream.reconnects == 0

        # 1) resting LIMIT: NEW, then the price trades through it: TRADE/FILLED
        new, fill, oid = fill_resting_buy(sim, venue, rec, f"ud-{market}-1")
        assert (new.client_order_id, new.side, new.order_type, new.orig_qty, new.price, new.trade_id) == (
            f"ud-{market}-1", "BUY", "LIMIT", D("0.002"), D("59000"), -1)
        assert (fill.client_order_id, fill.last_qty, fill.last_price, fill.cum_qty) == (
            f"ud-{market}-1", D("0.002"), D("59000"), D("0.002"))
        assert fill.cum_quote == D("118")
        trade = fill.trade()
        assert trade is not None and trade.order_id == oid and trade.trade_id > 0 and trade.qty == D("0.002")
        if market == "spot":  # maker 0.1 % of the base bought
            assert (fill.commission, fill.commission_asset) == (D("0.000002"), "BTC")
        else:  # maker 0.02 % of the notional, in USDT
            assert (fill.commission, fill.commission_asset) == (D("0.0236"), "USDT")
            assert fill.realized_pnl == 0 and not fill.reduce_only
        assert stream.events >= 2 and stream.last_event_ms >= fill.event_time - 1000

        # 2) cancel: CANCELED with the order's original client id
        sim.set_price("BTCUSDT", "60000")
        order = venue.limit_buy("58000", "0.002", f"ud-{market}-2")
        oid2 = int(order["orderId"])
        wait_for(lambda: rec.of(oid2), 5, "NEW event")
        venue.cancel(oid2)
        wait_for(lambda: len(rec.of(oid2)) >= 2, 5, "CANCELED event")
        cancel = rec.of(oid2)[-1][1]
        assert (cancel.exec_type, cancel.status, cancel.client_order_id) == ("CANCELED", "CANCELED", f"ud-{market}-2")
        assert not cancel.is_trade and cancel.trade() is None

        # 3) the venue drops every WebSocket: the stream resubscribes, on_resync runs again, events flow
        sim.faults(drop_ws=True)
        wait_for(lambda: stream.reconnects >= 1 and stream.connected, 10, "reconnect")
        assert rec.resyncs == 2
        _, fill2, _ = fill_resting_buy(sim, venue, rec, f"ud-{market}-3")
        assert fill2.client_order_id == f"ud-{market}-3" and fill2.is_trade
        assert stream.error is None
    finally:
        t0 = time.monotonic()
        stream.close()
        took = time.monotonic() - t0
    assert took < 2.0, f"close() took {took:.2f} s"
    assert not stream.connected and stream._thread is not None and not stream._thread.is_alive()


def test_callback_errors_do_not_kill_the_stream_and_close_while_reconnecting(sim: SimProcess) -> None:
    urls = venue_urls("local", sim.url)
    venue = Venue(urls, "spot")
    seen: list[OrderEvent] = []

    def bad(ev: OrderEvent) -> None:
        seen.append(ev)
        raise RuntimeError("consumer bug")

    def bad_resync() -> None:
        raise RuntimeError("consumer bug")

    stream = UserDataStream(urls, KEY, SECRET, "spot", bad, bad_resync, reconnect_delay_s=5.0)
    stream.start()
    try:
        assert stream.wait_connected(10)
        sim.set_price("BTCUSDT", "60000")
        o1 = venue.limit_buy("57000", "0.001", "ud-cb-1")
        o2 = venue.limit_buy("57000", "0.001", "ud-cb-2")
        wait_for(lambda: {e.order_id for e in seen} >= {o1["orderId"], o2["orderId"]}, 5, "both NEW events")
        for o in (o1, o2):
            venue.cancel(o["orderId"])
        # dropped, waiting out a 5 s reconnect delay: close() must not wait for it
        sim.faults(drop_ws=True)
        wait_for(lambda: not stream.connected, 5, "drop noticed")
    finally:
        t0 = time.monotonic()
        stream.close()
        took = time.monotonic() - t0
    assert took < 2.0 and stream.error is None


def test_venue_down_keeps_retrying_and_closes_promptly() -> None:
    urls = venue_urls("local", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    stream = UserDataStream(urls, KEY, SECRET, "futures", lambda e: None, reconnect_delay_s=0.1)
    stream.start()
    try:
        assert not stream.wait_connected(1.0)
        assert stream.error is None and stream._thread is not None and stream._thread.is_alive()
    finally:
        t0 = time.monotonic()
        stream.close()
        took = time.monotonic() - t0
    assert took < 2.0 and not stream._thread.is_alive()
