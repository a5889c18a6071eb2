"""Protective orders through the adapter (exchange/protective.py on an ExchangeClient) against the real
local exchange subprocess: spot OCO exits and lone stop-limits, USD-M STOP_MARKET / TAKE_PROFIT_MARKET
on the Algo service; rounding, every error type, legs filling on price moves (``/admin/price``), the
other leg canceled, final states after a cancel, faults (5xx before and after execution), the
user-data events (``listStatus``, ``executionReport`` with ``orderListId``, ``ALGO_UPDATE`` and the
triggered order's ``ORDER_TRADE_UPDATE``) through ``UserDataStream``, and a restart of the exchange.
"""
from __future__ import annotations

import threading
import uuid
from decimal import Decimal as D
from pathlib import Path
from typing import Any, Iterator

import pytest

from exchange.client import ExchangeClient
from exchange.errors import (
    AmbiguousError, DuplicateOrderError, FilterError, FinalError, InsufficientBalanceError, WouldTriggerError,
)
from exchange.protective import ProtectiveOrders
from exchange.userdata import AlgoUpdateEvent, ListStatusEvent, OrderEvent, UserDataStream
from exchange.venues import venue_urls
from sim_process import KEY, SECRET, SimProcess
from support import wait_for

pytestmark = pytest.mark.timeout(120)
SYM = "BTCUSDT"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    p = SimProcess(Path(tmp_path_factory.mktemp("sim")) / "exchange.log", "--seed", "3", "--speed", "0",
                   "--balances", "USDT=100000,BTC=2", "--futures-balance", "50000")
    yield p
    p.close()
    assert "Traceback" not in p.log(), p.log()


@pytest.fixture()
def spot(sim: SimProcess) -> Iterator[ProtectiveOrders]:
    sim.clear()
    sim.set_price(SYM, "60000")
    client = sim.client("spot")
    yield ProtectiveOrders(client)
    sim.clear()
    for o in client.open_orders(SYM):
        client.cancel(SYM, o.client_order_id)


@pytest.fixture()
def fut(sim: SimProcess) -> Iterator[tuple[ExchangeClient, ProtectiveOrders]]:
    sim.clear()
    sim.set_price(SYM, "60000")
    client = sim.client("futures")
    yield client, ProtectiveOrders(client)
    for a in ProtectiveOrders(client).open_algos(SYM):
        ProtectiveOrders(client).cancel_algo(SYM, a.client_id)
    for p in client.positions():  # flat again
        side = "SELL" if p.amount > 0 else "BUY"
        client.place_market(client.prepare_market(SYM, side, abs(p.amount), "60000", reduce_only=True),
                            f"flat-{uuid.uuid4().hex[:12]}", reduce_only=True)


def place_oco(p: ProtectiveOrders, cid: str, qty: str = "0.1", tp: str = "62000", stop: str = "58000",
              limit: str = "57900") -> Any:
    return p.place_oco_exit(p.prepare_oco_exit(SYM, qty, tp, stop, limit), cid, f"{cid}-tp", f"{cid}-sl")


def long_position(client: ExchangeClient, qty: str, cid: str) -> None:
    client.place_market(client.prepare_market(SYM, "BUY", qty, "60000"), cid)


# ---- spot -----------------------------------------------------------------------------------------

def test_oco_exit_rounds_places_and_reads_back(spot: ProtectiveOrders) -> None:
    prep = spot.prepare_oco_exit(SYM, "0.1234567", "62000.001", "58000.001", "57900.009")
    # lot floored; take profit up; stop trigger up (towards the market); stop limit down
    assert (prep.quantity, prep.take_profit_price, prep.stop_price, prep.stop_limit_price) == (
        D("0.12345"), D("62000.01"), D("58000.01"), D("57900.00")) and prep.ok
    po = spot.place_oco_exit(prep, "r-1", "r-1-tp", "r-1-sl")
    assert (po.market, po.kind, po.side, po.client_id, po.venue_status, po.status) == (
        "spot", "oco", "SELL", "r-1", "EXECUTING", "OPEN")
    tp, sl = po.legs  # take profit first
    assert (tp.role, tp.client_order_id, tp.order_type, tp.price, tp.quantity, tp.open) == (
        "take_profit", "r-1-tp", "LIMIT_MAKER", D("62000.01"), D("0.12345"), True)
    assert (sl.role, sl.client_order_id, sl.order_type, sl.stop_price, sl.price, sl.triggered) == (
        "stop", "r-1-sl", "STOP_LOSS_LIMIT", D("58000.01"), D("57900"), False)
    again = spot.get_order_list(SYM, "r-1")
    assert again is not None and again.legs == po.legs and again.venue_id == po.venue_id
    assert [x.client_id for x in spot.open_order_lists(SYM)] == ["r-1"]
    assert spot.get_order_list(SYM, "never") is None and spot.get_order_list("ETHUSDT", "r-1") is None


def test_take_profit_fills_the_stop_is_canceled_and_trades_are_there(sim: SimProcess,
                                                                     spot: ProtectiveOrders) -> None:
    place_oco(spot, "tp-1")
    sim.set_price(SYM, "62100")
    po = spot.get_order_list(SYM, "tp-1")
    assert po is not None and (po.status, po.venue_status, po.executed_qty, po.is_active) == (
        "FILLED", "ALL_DONE", D("0.1"), False)
    tp, sl = po.legs
    assert (tp.status, tp.filled, sl.status, sl.open) == ("FILLED", True, "EXPIRED", False)
    assert po.executed_leg == tp and tp.avg_price == D("62000")
    assert [(t.price, t.qty, t.side, t.commission_asset) for t in po.trades] == [(D("62000"), D("0.1"), "SELL", "USDT")]
    assert spot.open_order_lists(SYM) == []
    final = spot.cancel_order_list(SYM, "tp-1")  # too late: the final state says what happened
    assert final is not None and final.status == "FILLED" and final.trades == po.trades


def test_stop_fires_partly_fills_and_cancel_returns_the_partial_execution(sim: SimProcess,
                                                                         spot: ProtectiveOrders) -> None:
    place_oco(spot, "st-1")
    # a thin bar through the stop and the limit: the triggered leg fills 0.01 (half the bar's volume,
    # at its limit on the way down) and works on
    sim.admin("POST", "/admin/price", {"symbol": SYM, "price": "57800", "volume": "0.02"})
    po = spot.get_order_list(SYM, "st-1")
    assert po is not None and (po.status, po.venue_status, po.is_active) == ("WORKING", "ALL_DONE", True)
    tp, sl = po.legs
    assert (tp.status, sl.status, sl.triggered, sl.executed_qty) == ("EXPIRED", "PARTIALLY_FILLED", True, D("0.01"))
    assert [x.client_id for x in spot.open_order_lists(SYM)] == ["st-1"]  # a finished list with a working leg
    final = spot.cancel_order_list(SYM, "st-1")  # the list is ALL_DONE: its working leg is canceled as an order
    assert final is not None and (final.status, final.is_active, final.executed_qty) == ("CANCELED", False, D("0.01"))
    assert [(t.qty, t.price) for t in final.trades] == [(D("0.01"), D("57900"))]
    assert spot.open_order_lists(SYM) == [] and spot.client.open_orders(SYM) == []


def test_cancel_before_anything_happened(spot: ProtectiveOrders) -> None:
    place_oco(spot, "cx-1")
    final = spot.cancel_order_list(SYM, "cx-1")
    assert final is not None and (final.status, final.executed_qty) == ("CANCELED", D(0))
    assert [leg.status for leg in final.legs] == ["CANCELED", "CANCELED"]
    assert spot.cancel_order_list(SYM, "never") is None
    assert spot.client.balances()["BTC"].locked == 0


def test_lone_stop_limit(sim: SimProcess, spot: ProtectiveOrders) -> None:
    prep = spot.prepare_stop_limit(SYM, "0.05", "58000", "57900")
    po = spot.place_stop_limit(prep, "sl-1")
    assert (po.kind, po.client_id, po.status, po.legs[0].stop_price) == ("stop_limit", "sl-1", "OPEN", D("58000"))
    assert [x.client_id for x in spot.open_stop_limits(SYM)] == ["sl-1"]
    sim.set_price(SYM, "57800")
    got = spot.get_stop_limit(SYM, "sl-1")
    assert got is not None and (got.status, got.executed_qty, len(got.trades)) == ("FILLED", D("0.05"), 1)
    spot.place_stop_limit(spot.prepare_stop_limit(SYM, "0.05", "55000", "54900"), "sl-2")
    final = spot.cancel_stop_limit(SYM, "sl-2")
    assert final is not None and final.status == "CANCELED" and spot.get_stop_limit(SYM, "never") is None


def test_spot_errors_are_typed(sim: SimProcess, spot: ProtectiveOrders) -> None:
    with pytest.raises(WouldTriggerError) as e1:  # the stop is above the market
        spot.place_stop_limit(spot.prepare_stop_limit(SYM, "0.05", "61000", "60900"), "e-1")
    assert e1.value.code == -2010 and "trigger immediately" in e1.value.message
    with pytest.raises(WouldTriggerError) as e2:  # the take profit is below the market
        place_oco(spot, "e-2", tp="59000.5", stop="58000")
    assert "relationship of the prices" in e2.value.message
    place_oco(spot, "e-3")
    with pytest.raises(DuplicateOrderError):
        place_oco(spot, "e-3")
    with pytest.raises(InsufficientBalanceError):
        place_oco(spot, "e-4", qty="50")
    with pytest.raises(FilterError) as e5:  # PERCENT_PRICE_BY_SIDE: the venue's filter, -1013
        place_oco(spot, "e-5", tp="400000")
    assert e5.value.code == -1013 and e5.value.status == 400
    with pytest.raises(FilterError) as e6:  # caught before sending: nothing reaches the venue
        place_oco(spot, "e-6", qty="0.000001")
    assert e6.value.status == 0 and "minQty" in e6.value.message
    bad = spot.prepare_oco_exit(SYM, "0.1", "57000", "58000", "58100")
    assert not bad.ok and any("above the stop price" in p for p in bad.problems)
    with pytest.raises(FinalError):  # a client id Binance would refuse
        place_oco(spot, "bad id!")
    assert [x.client_id for x in spot.open_order_lists(SYM)] == ["e-3"]


def test_a_5xx_before_execution_places_nothing_after_execution_places_it(sim: SimProcess,
                                                                         spot: ProtectiveOrders) -> None:
    prep = spot.prepare_oco_exit(SYM, "0.1", "62000", "58000", "57900")  # exchangeInfo read before the fault
    sim.faults(error_5xx_next=1)
    with pytest.raises(AmbiguousError):  # a 5xx on a mutating call: never trusted as "not placed"
        spot.place_oco_exit(prep, "amb-1", "amb-1-tp", "amb-1-sl")
    assert spot.get_order_list(SYM, "amb-1") is None  # asked: it was not executed
    sim.faults(status_unknown_next=1)
    with pytest.raises(AmbiguousError):
        spot.place_oco_exit(prep, "amb-2", "amb-2-tp", "amb-2-sl")
    got = spot.get_order_list(SYM, "amb-2")  # asked: it was
    assert got is not None and got.status == "OPEN"
    with pytest.raises(DuplicateOrderError):  # and re-sending the same intent cannot place it twice
        place_oco(spot, "amb-2")


# ---- USD-M ----------------------------------------------------------------------------------------

def test_futures_stop_and_take_profit_on_the_algo_service(sim: SimProcess,
                                                         fut: tuple[ExchangeClient, ProtectiveOrders]) -> None:
    client, p = fut
    long_position(client, "0.02", "f-entry-1")
    stop_prep = p.prepare_algo("stop_market", SYM, "SELL", "58000.04", quantity="0.0201")
    assert (stop_prep.quantity, stop_prep.stop_price) == (D("0.020"), D("58000.10"))  # step 0.001, tick 0.1
    sl = p.place_algo(stop_prep, "f-1-sl")
    tp = p.place_algo(p.prepare_algo("take_profit_market", SYM, "SELL", "62000", close_position=True), "f-1-tp")
    assert (sl.market, sl.kind, sl.status, sl.reduce_only, sl.legs[0].quantity) == (
        "futures", "stop_market", "OPEN", True, D("0.02"))
    assert (tp.kind, tp.close_position, tp.legs[0].stop_price, tp.legs[0].role) == (
        "take_profit_market", True, D("62000"), "take_profit")
    assert sorted(x.client_id for x in p.open_algos(SYM)) == ["f-1-sl", "f-1-tp"]
    sim.set_price(SYM, "57900")
    got = p.get_algo(SYM, "f-1-sl")
    assert got is not None and (got.status, got.venue_status, got.executed_qty) == ("FILLED", "FINISHED", D("0.02"))
    leg = got.legs[0]
    assert leg.actual_order_id is not None and leg.triggered and len(got.trades) >= 1
    assert all(t.order_id == leg.actual_order_id for t in got.trades) and got.trades[0].realized_pnl < 0
    assert client.positions() == []
    final = p.cancel_algo(SYM, "f-1-tp")
    assert final is not None and final.status == "CANCELED"
    assert p.cancel_algo(SYM, "f-1-sl").status == "FILLED"  # type: ignore[union-attr]
    assert p.get_algo(SYM, "never") is None and p.cancel_algo(SYM, "never") is None and p.open_algos(SYM) == []


def test_futures_errors_are_typed(fut: tuple[ExchangeClient, ProtectiveOrders]) -> None:
    client, p = fut
    long_position(client, "0.01", "f-entry-2")
    with pytest.raises(WouldTriggerError) as e1:
        p.place_algo(p.prepare_algo("stop_market", SYM, "SELL", "60500", quantity="0.01"), "fe-1")
    assert (e1.value.code, e1.value.message) == (-2021, "Order would immediately trigger.")
    p.place_algo(p.prepare_algo("stop_market", SYM, "SELL", "58000", quantity="0.01"), "fe-2")
    with pytest.raises(DuplicateOrderError) as e2:
        p.place_algo(p.prepare_algo("stop_market", SYM, "SELL", "57000", quantity="0.01"), "fe-2")
    assert e2.value.code == -4116
    with pytest.raises(FilterError):
        p.place_algo(p.prepare_algo("stop_market", SYM, "SELL", "58000", quantity="0.0001"), "fe-3")
    with pytest.raises(FinalError):
        p.prepare_algo("stop_market", SYM, "SELL", "58000", quantity="0.01", close_position=True)
    with pytest.raises(FinalError):
        ProtectiveOrders(client).prepare_oco_exit(SYM, "0.1", "62000", "58000", "57900")  # a spot order on USD-M


# ---- the user-data stream -------------------------------------------------------------------------

class Events:
    def __init__(self) -> None:
        self.items: list[Any] = []
        self._lock = threading.Lock()

    def add(self, ev: Any) -> None:
        with self._lock:
            self.items.append(ev)

    def of(self, kind: type) -> list[Any]:
        with self._lock:
            return [e for e in self.items if isinstance(e, kind)]


@pytest.mark.parametrize("market", ["spot", "futures"])
def test_user_data_events_of_protective_orders(sim: SimProcess, market: str,
                                               spot: ProtectiveOrders,
                                               fut: tuple[ExchangeClient, ProtectiveOrders]) -> None:
    urls = venue_urls("local", sim.url)
    rec = Events()
    stream = UserDataStream(urls, KEY, SECRET, market, rec.add, on_protective=rec.add, reconnect_delay_s=0.2)
    stream.start()
    try:
        assert stream.wait_connected(10), stream.error
        if market == "spot":
            po = place_oco(spot, "ev-1")
            wait_for(lambda: rec.of(ListStatusEvent), 5, "listStatus EXECUTING")
            started = rec.of(ListStatusEvent)[0]
            assert (started.list_client_order_id, started.order_list_id, started.list_status_type,
                    started.list_order_status, started.done) == ("ev-1", po.venue_id, "EXEC_STARTED", "EXECUTING", False)
            assert [leg.client_order_id for leg in started.legs] == ["ev-1-sl", "ev-1-tp"]
            news = [e for e in rec.of(OrderEvent) if e.exec_type == "NEW"]
            assert {(e.client_order_id, e.order_list_id, e.is_working) for e in news} == {
                ("ev-1-sl", po.venue_id, False), ("ev-1-tp", po.venue_id, True)}
            sim.set_price(SYM, "62100")
            wait_for(lambda: len(rec.of(ListStatusEvent)) >= 2, 5, "listStatus ALL_DONE")
            done = rec.of(ListStatusEvent)[1]
            assert (done.list_status_type, done.list_order_status, done.done) == ("ALL_DONE", "ALL_DONE", True)
            later = [e for e in rec.of(OrderEvent) if e.exec_type != "NEW"]
            assert [(e.client_order_id, e.exec_type, e.status, e.order_list_id) for e in later] == [
                ("ev-1-tp", "TRADE", "FILLED", po.venue_id), ("ev-1-sl", "EXPIRED", "EXPIRED", po.venue_id)]
            trade = later[0].trade()
            assert trade is not None and (trade.qty, trade.price) == (D("0.1"), D("62000"))
        else:
            client, p = fut
            long_position(client, "0.01", "ev-entry")
            a = p.place_algo(p.prepare_algo("stop_market", SYM, "SELL", "58000", quantity="0.01"), "ev-2")
            wait_for(lambda: rec.of(AlgoUpdateEvent), 5, "ALGO_UPDATE NEW")
            new = rec.of(AlgoUpdateEvent)[0]
            assert (new.client_algo_id, new.algo_id, new.status, new.order_type, new.actual_order_id,
                    new.trigger_price, new.reduce_only) == ("ev-2", a.venue_id, "NEW", "STOP_MARKET", None,
                                                           D("58000"), True)
            sim.set_price(SYM, "57900")
            wait_for(lambda: len(rec.of(AlgoUpdateEvent)) >= 2, 5, "ALGO_UPDATE after the trigger")
            fired = rec.of(AlgoUpdateEvent)[1]
            assert fired.status == "FINISHED" and fired.done and fired.actual_order_id is not None
            assert fired.actual_executed_qty == D("0.01")
            wait_for(lambda: [e for e in rec.of(OrderEvent) if e.order_id == fired.actual_order_id and e.is_trade],
                     5, "the triggered order's fill")
            fill = [e for e in rec.of(OrderEvent) if e.order_id == fired.actual_order_id and e.is_trade][-1]
            assert (fill.side, fill.order_type, fill.cum_qty, fill.reduce_only) == ("SELL", "MARKET", D("0.01"), True)
            got = p.get_algo(SYM, "ev-2")
            assert got is not None and [t.trade_id for t in got.trades] == [
                e.trade_id for e in rec.of(OrderEvent) if e.order_id == fired.actual_order_id and e.is_trade]
    finally:
        stream.close()
    assert stream.error is None


# ---- a restart of the exchange --------------------------------------------------------------------

def test_restart_keeps_protective_orders(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    args = ("--source", "synthetic", "--symbols", SYM, "--seed", "3", "--speed", "0", "--warmup", "10",
            "--resume", f"{SYM}=60000", "--balances", "USDT=100000,BTC=2", "--futures-balance", "50000",
            "--state-file", str(state))
    sim = SimProcess(tmp_path / "exchange-0.log", *args)
    try:
        sim.set_price(SYM, "60000")
        spot, fclient = ProtectiveOrders(sim.client("spot")), sim.client("futures")
        fut = ProtectiveOrders(fclient)
        place_oco(spot, "rs-1")
        long_position(fclient, "0.01", "rs-entry")
        fut.place_algo(fut.prepare_algo("stop_market", SYM, "SELL", "58000", quantity="0.01"), "rs-2")
        before = (spot.open_order_lists(SYM), fut.open_algos(SYM))
    finally:
        sim.close()
    sim = SimProcess(tmp_path / "exchange-1.log", *args, port=sim.port)
    try:
        assert (spot.open_order_lists(SYM), fut.open_algos(SYM)) == before  # the same clients, the same URL
        sim.set_price(SYM, "57800")
        o, a = spot.get_order_list(SYM, "rs-1"), fut.get_algo(SYM, "rs-2")
        assert o is not None and a is not None and (o.status, a.status) == ("FILLED", "FILLED")
        assert o.leg("stop").filled and not o.leg("take_profit").open  # type: ignore[union-attr]
    finally:
        sim.close()
    assert "Traceback" not in sim.log(), sim.log()
