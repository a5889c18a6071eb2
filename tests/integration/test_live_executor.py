"""LiveExecutor against the real local exchange (subprocess) and a real redis-server.

Prices are paused (--speed 0) and set through /admin/price so fills are deterministic. The
chaos cases use the exchange's own fault injection; nothing in python-binance is mocked.
"""
from __future__ import annotations

import threading
import time
import uuid
from decimal import Decimal as D
from pathlib import Path
from typing import Iterator

import pytest

from core.types import Mode, Order, OrderPurpose, OrderStatus, Side
from exchange.client import ExchangeClient
from executors.live import LiveExecutor
from state import keys
from state.intents import IntentRecord, RedisIntentStore
from sim_process import SimProcess

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    p = SimProcess(Path(tmp_path_factory.mktemp("sim")) / "exchange.log", "--seed", "3", "--speed", "0",
                   "--balances", "USDT=100000,BTC=1")
    yield p
    p.close()
    assert "Traceback" not in p.log(), p.log()


def _client(sim: SimProcess, market: str) -> ExchangeClient:
    c = sim.client(market)
    c.exchange_info()  # warm the cache so an armed fault hits the order, not exchangeInfo
    return c


@pytest.fixture(scope="module")
def spot(sim: SimProcess) -> ExchangeClient:
    return _client(sim, "spot")


@pytest.fixture(scope="module")
def futures(sim: SimProcess) -> ExchangeClient:
    return _client(sim, "futures")


@pytest.fixture()
def store(redis_server) -> RedisIntentStore:  # noqa: ANN001 - the session fixture from conftest
    return RedisIntentStore(redis_server.client())


@pytest.fixture(autouse=True)
def _clean(sim: SimProcess) -> Iterator[None]:
    sim.clear()
    sim.set_price("BTCUSDT", "60000")
    yield
    sim.clear()


def _order(side: Side = Side.BUY, qty: float = 0.01, bot: str | None = None, reduce_only: bool = False,
           symbol: str = "BTCUSDT") -> Order:
    bot = bot or f"live-{uuid.uuid4().hex[:6]}"
    return Order(f"t{uuid.uuid4().hex[:20]}", bot, symbol, side, qty, OrderPurpose.ENTRY, reduce_only=reduce_only)


def _venue_orders(client: ExchangeClient, coid: str) -> list[dict]:
    rows = client.raw.get_all_orders(symbol="BTCUSDT") if client.market == "spot" \
        else client.raw.futures_get_all_orders(symbol="BTCUSDT")
    return [o for o in rows if o["clientOrderId"] == coid]


def test_spot_market_buy_fills_match_my_trades(spot: ExchangeClient, store: RedisIntentStore) -> None:
    ex = LiveExecutor(spot, store)
    assert ex.mode is Mode.LIVE
    order = _order(qty=0.0123456)  # rounded down to the 0.00001 step
    fills = ex.execute(order, 60000.0, 0)
    assert order.status is OrderStatus.FILLED
    venue = spot.raw.get_my_trades(symbol="BTCUSDT", orderId=ex.last.order_id)
    assert len(fills) == len(venue) >= 1
    for f, t in zip(fills, sorted(venue, key=lambda t: t["id"])):
        assert (D(str(f.price)), D(str(f.quantity)), D(str(f.fee))) == (D(t["price"]), D(t["qty"]), D(t["commission"]))
        assert f.fee_asset == t["commissionAsset"] == "BTC" and f.side is Side.BUY
    assert sum(D(t["qty"]) for t in venue) == D("0.01234")
    rec = store.get(order.bot, order.client_order_id)
    assert rec is not None and rec.status == "FILLED" and rec.quantity == "0.01234" and len(rec.fills) == len(venue)
    assert [e.status for e in store.events(order.bot, order.client_order_id)] == ["INTENT", "NEW", "FILLED"]
    assert store.open(order.bot) == []


def test_intent_is_in_redis_before_the_request(sim: SimProcess, spot: ExchangeClient, store: RedisIntentStore,
                                               redis_server) -> None:  # noqa: ANN001
    r = redis_server.client()
    seen: list[IntentRecord | None] = []
    ex = LiveExecutor(spot, store, before_send=lambda rec: seen.append(
        RedisIntentStore(r).get(rec.bot, rec.client_order_id)))
    order = _order()
    ex.execute(order, 60000.0, 0)
    assert seen[0] is not None and seen[0].status == "INTENT" and not _venue_orders(spot, "never")

    # And observed from outside while the request is in flight (the venue answers 600 ms late).
    sim.faults(latency_ms=600)
    order2 = _order()
    t = threading.Thread(target=ex.execute, args=(order2, 60000.0, 0))
    t.start()
    try:
        deadline = time.monotonic() + 5
        raw = None
        while raw is None and time.monotonic() < deadline:
            raw = r.hget(keys.intents(order2.bot), order2.client_order_id)
            time.sleep(0.01)
        assert raw is not None and IntentRecord.model_validate_json(raw).status == "INTENT"
        assert r.sismember(keys.open_intents(order2.bot), order2.client_order_id)
        assert t.is_alive()  # the answer has not arrived yet
    finally:
        t.join(10)
    assert order2.status is OrderStatus.FILLED


@pytest.mark.parametrize("fault", ["status_unknown_next", "lose_response_next"])
def test_ambiguous_outcome_resolved_by_query_not_resent(sim: SimProcess, spot: ExchangeClient,
                                                        store: RedisIntentStore, fault: str) -> None:
    ex = LiveExecutor(spot, store)
    order = _order()
    sim.faults(**{fault: 1})
    fills = ex.execute(order, 60000.0, 0)
    assert order.status is OrderStatus.FILLED, order.reason
    assert "resolved by query" in order.reason
    assert len(_venue_orders(spot, order.client_order_id)) == 1  # exactly one order on the venue
    venue = spot.raw.get_my_trades(symbol="BTCUSDT", orderId=ex.last.order_id)
    assert sum(D(str(f.quantity)) for f in fills) == sum(D(t["qty"]) for t in venue) == D("0.01")
    assert [f.fee for f in fills] == [float(t["commission"]) for t in sorted(venue, key=lambda t: t["id"])]


def test_5xx_before_execution_is_reported_not_placed_and_not_resent(sim: SimProcess, spot: ExchangeClient,
                                                                    store: RedisIntentStore) -> None:
    ex = LiveExecutor(spot, store, resolve_delay_s=0.05)
    order = _order()
    sim.faults(error_5xx_next=1)
    assert ex.execute(order, 60000.0, 0) == []
    assert order.status is OrderStatus.EXPIRED and "not placed" in order.reason
    assert _venue_orders(spot, order.client_order_id) == []
    # executing the same order again does not send it either: the record answers
    assert ex.execute(order, 60000.0, 0) == [] and order.status is OrderStatus.EXPIRED
    assert _venue_orders(spot, order.client_order_id) == []
    assert store.open(order.bot) == []


def test_crash_between_intent_and_send_is_closed_as_never_sent(spot: ExchangeClient, store: RedisIntentStore) -> None:
    bot = f"live-{uuid.uuid4().hex[:6]}"
    # A worker recorded two intents and died: one before sending, one after sending (no answer).
    never = IntentRecord(client_order_id=f"t{uuid.uuid4().hex[:20]}", bot=bot, venue="local", market="spot",
                         symbol="BTCUSDT", side="BUY", quantity="0.01", created_at=int(time.time() * 1000))
    sent = never.model_copy(update={"client_order_id": f"t{uuid.uuid4().hex[:20]}"})
    assert store.create(never) and store.create(sent)
    assert not store.create(never)  # an id is recorded once
    spot.raw.create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01",
                          newClientOrderId=sent.client_order_id)
    fresh = LiveExecutor(spot, RedisIntentStore(store.r))
    out = {x.intent.client_order_id: x for x in fresh.recover(bot)}
    assert out[never.client_order_id].intent.status == "EXPIRED"
    assert "not placed" in out[never.client_order_id].intent.reason and out[never.client_order_id].fills == []
    assert out[sent.client_order_id].intent.status == "FILLED"
    assert sum(f.quantity for f in out[sent.client_order_id].fills) == pytest.approx(0.01)
    assert _venue_orders(spot, never.client_order_id) == [] and len(_venue_orders(spot, sent.client_order_id)) == 1
    assert store.open(bot) == [] and fresh.recover(bot) == []


def test_filter_violation_is_rejected_without_sending(spot: ExchangeClient, store: RedisIntentStore) -> None:
    ex = LiveExecutor(spot, store)
    order = _order(qty=0.00005)  # 3 USDT < NOTIONAL 5
    assert ex.execute(order, 60000.0, 0) == []
    assert order.status is OrderStatus.REJECTED and "minNotional" in order.reason
    assert _venue_orders(spot, order.client_order_id) == []


def test_futures_open_and_close_reduce_only(sim: SimProcess, futures: ExchangeClient,
                                            store: RedisIntentStore) -> None:
    ex = LiveExecutor(futures, store)
    bot = f"live-fut-{uuid.uuid4().hex[:6]}"
    flat = _order(Side.SELL, 0.002, bot=bot, reduce_only=True)
    assert ex.execute(flat, 60000.0, 0) == []  # reduce-only with no position would open one: refused
    assert flat.status is OrderStatus.REJECTED and "-2022" in flat.reason

    opened = ex.execute(_order(Side.BUY, 0.003, bot=bot), 60000.0, 0)
    assert sum(f.quantity for f in opened) == pytest.approx(0.003) and all(f.fee_asset == "USDT" for f in opened)
    [pos] = [p for p in futures.positions() if p.symbol == "BTCUSDT"]
    assert pos.amount == D("0.003")
    more = _order(Side.BUY, 0.002, bot=bot, reduce_only=True)
    assert ex.execute(more, 60000.0, 0) == [] and more.status is OrderStatus.REJECTED  # would increase

    close = _order(Side.SELL, 0.003, bot=bot, reduce_only=True)
    closed = ex.execute(close, 60000.0, 0)
    assert close.status is OrderStatus.FILLED and sum(f.quantity for f in closed) == pytest.approx(0.003)
    assert [p for p in futures.positions() if p.symbol == "BTCUSDT"] == []
    trades = futures.trades("BTCUSDT", ex.last.order_id)
    assert [(float(t.price), float(t.commission)) for t in trades] == [(f.price, f.fee) for f in closed]
