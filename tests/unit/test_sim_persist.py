"""The local exchange's state file (simulator/state_file/): a round trip keeps every account
detail and the reloaded exchange keeps trading (resting orders fill, ids continue, algo orders fire);
a bad file is refused with a message naming it."""
from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path

import pytest

from simulator.futures import parse_futures_order
from simulator.params import parse_new_order
from simulator.state_file import SAVE_INTERVAL_S, StateFileError, StateSaver, capture, load, render, save, snapshot
from simulator.state import SimConfig, SimExchange


def make() -> SimExchange:
    ex = SimExchange(SimConfig(seed=3, speed=0, balances={"USDT": D("100000"), "BTC": D("1")}))
    ex.move_price("BTCUSDT", D("60000"))
    ex.move_price("SOLUSDT", D("150"))
    return ex


def spot(ex: SimExchange, **kw: str):  # type: ignore[no-untyped-def]
    return ex.engine.place(parse_new_order({"symbol": "BTCUSDT", **kw}))


def fut(ex: SimExchange, **kw: str):  # type: ignore[no-untyped-def]
    return ex.futures.place(parse_futures_order({"symbol": "BTCUSDT", **kw}))[0]


def populate(ex: SimExchange) -> dict[str, int]:
    """Every kind of account state: fills, a resting limit, a cancel, a waiting stop, a futures
    position with leverage/margin type, a resting futures order and two algo orders."""
    spot(ex, side="BUY", type="MARKET", quantity="0.01")
    rest = spot(ex, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.02", price="59000",
                newClientOrderId="rest-1")
    gone = spot(ex, side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.1", price="61000")
    ex.engine.cancel("BTCUSDT", gone.order_id, None)
    spot(ex, side="SELL", type="STOP_LOSS_LIMIT", timeInForce="GTC", quantity="0.05", price="55000",
         stopPrice="55500")
    ex.futures.set_leverage("BTCUSDT", 10)
    ex.futures.set_margin_type("BTCUSDT", "ISOLATED")
    ex.futures.set_leverage("SOLUSDT", 5)
    fut(ex, side="BUY", type="MARKET", quantity="0.1")
    fres = fut(ex, side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.05", price="62000", reduceOnly="true")
    base = {"symbol": "BTCUSDT", "algoType": "CONDITIONAL"}
    sl = ex.algo.place({**base, "side": "SELL", "type": "STOP_MARKET", "triggerPrice": "57000",
                        "closePosition": "true"})
    ex.algo.place({**base, "side": "SELL", "type": "TRAILING_STOP_MARKET", "quantity": "0.01",
                   "callbackRate": "1", "reduceOnly": "true", "clientAlgoId": "trail-1"})
    ex.move_price("BTCUSDT", D("60500"))  # the trailing stop's extreme moves without an event
    return {"rest": rest.order_id, "fres": fres.order_id, "sl": sl.algo_id}


def reloaded(ex: SimExchange, tmp_path: Path) -> SimExchange:
    path = tmp_path / "state.json"
    save(ex, path)
    again = make()
    assert load(again, path) is True
    return again


def test_round_trip_keeps_every_account_detail(tmp_path: Path) -> None:
    ex = make()
    populate(ex)
    again = reloaded(ex, tmp_path)
    assert snapshot(again, saved_at=0) == snapshot(ex, saved_at=0)
    # the file stores decimals as strings, exactly
    doc = json.loads((tmp_path / "state.json").read_text())
    assert doc["version"] == 1 and isinstance(doc["futures"]["wallet"], str)
    assert doc["spot"]["balances"]["BTC"]["free"] == str(ex.account.balances["BTC"].free)
    # fills and the trade history are the same objects again, as in a live exchange
    for o in again.engine.orders.values():
        assert all(t in again.engine.trades[o.symbol] for t in o.fills)
    assert again.engine.find("BTCUSDT", None, "rest-1") is again.engine.open["BTCUSDT"][0]
    pos = again.futures.positions["BTCUSDT"]
    assert (pos.leverage, pos.margin_type, pos.amt) == (10, "ISOLATED", D("0.1")) and pos.isolated_wallet > 0
    assert again.futures.positions["SOLUSDT"].leverage == 5
    trail = again.algo.find(None, "trail-1")
    assert trail is not None and trail.activated and trail.extreme == D("60500")


def test_reloaded_exchange_keeps_trading(tmp_path: Path) -> None:
    ex = make()
    ids = populate(ex)
    spot_next, spot_trade = ex.engine._next_order_id["BTCUSDT"], ex.engine._next_trade_id["BTCUSDT"]
    fut_last, algo_last = ex.futures._next_order_id, ex.algo._next_id
    again = reloaded(ex, tmp_path)
    usdt_locked = again.account.balances["USDT"].locked
    assert usdt_locked == D("59000") * D("0.02")

    # new ids continue, never reused
    new = spot(again, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01", price="50000")
    assert new.order_id == spot_next
    fnew = fut(again, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01", price="58000")
    assert fnew.order_id == fut_last + 1
    assert again.algo.place({"symbol": "SOLUSDT", "algoType": "CONDITIONAL", "side": "BUY", "type": "STOP_MARKET",
                             "triggerPrice": "160", "quantity": "1"}).algo_id == algo_last + 1
    # the resting BUY fills when the new prices trade through it; the trailing stop fires (1 % off 60500)
    again.move_price("BTCUSDT", D("58900"))
    rest = again.engine.orders[("BTCUSDT", ids["rest"])]
    assert rest.status == "FILLED" and rest.fills[0].id == spot_trade and rest.fills[0].is_maker
    assert again.account.balances["USDT"].locked == D("50000") * D("0.01")  # only the new order's lock
    assert [t.id for t in again.engine.trades["BTCUSDT"]][-1] == spot_trade
    assert again.algo.find(None, "trail-1").status == "FINISHED"  # type: ignore[union-attr]
    assert again.futures.positions["BTCUSDT"].amt == D("0.09")
    # the stop-loss waits, then fires on the new prices; the algo stop closes the position
    again.move_price("BTCUSDT", D("56000"))
    assert again.algo.orders[ids["sl"]].status == "FINISHED"
    assert again.futures.positions["BTCUSDT"].amt == 0
    again.move_price("BTCUSDT", D("55400"))
    stop = [o for o in again.engine.orders.values() if o.type == "STOP_LOSS_LIMIT"][0]
    assert not stop.pending


def test_missing_file_loads_nothing(tmp_path: Path) -> None:
    ex = make()
    assert load(ex, tmp_path / "none.json") is False
    assert ex.account.balances["USDT"].free == D("100000")


def _saved_doc() -> dict:  # type: ignore[type-arg]
    ex = make()
    populate(ex)
    return snapshot(ex)


@pytest.mark.parametrize("name, damage, problem", [
    ("truncated", lambda text, doc: text[: len(text) // 2], "not valid JSON"),
    ("empty", lambda text, doc: "", "empty"),
    ("binary", lambda text, doc: b"\xff\xfe\x00".decode("latin-1"), "not valid JSON"),
    ("other", lambda text, doc: json.dumps({"hello": 1}), "not a local-exchange state file"),
    ("newer", lambda text, doc: json.dumps({**doc, "version": 99}), "version 99 is not supported"),
    ("number", lambda text, doc: json.dumps({**doc, "futures": {**doc["futures"], "wallet": 5.5}}),
     "futures.wallet: expected a decimal string"),
    ("nan", lambda text, doc: json.dumps({**doc, "futures": {**doc["futures"], "wallet": "NaN"}}),
     "futures.wallet: not a finite number"),
    ("field", lambda text, doc: json.dumps({**doc, "spot": {**doc["spot"], "orders": [
        {k: v for k, v in o.items() if k != "side"} for o in doc["spot"]["orders"]]}}), "missing field 'side'"),
    ("symbol", lambda text, doc: json.dumps({**doc, "spot": {**doc["spot"], "trades": [
        {**t, "symbol": "DOGEUSDT"} for t in doc["spot"]["trades"]]}}), "symbol DOGEUSDT is not listed"),
    ("counter", lambda text, doc: json.dumps({**doc, "spot": {**doc["spot"], "next_order_id": {"BTCUSDT": 2}}}),
     "ids would repeat"),
    ("fill", lambda text, doc: json.dumps({**doc, "spot": {**doc["spot"], "trades": []}}), "is not in spot.trades"),
    # the futures side shares the history decoding, but its counters hold the last id, not the next
    ("f_fill", lambda text, doc: json.dumps({**doc, "futures": {**doc["futures"], "trades": []}}),
     "is not in futures.trades"),
    ("f_counter", lambda text, doc: json.dumps({**doc, "futures": {**doc["futures"], "next_order_id": 4_000_000_001}}),
     "futures.next_order_id: 4000000001 but order 4000000002 exists (ids would repeat)"),
    ("f_trade_counter", lambda text, doc: json.dumps({**doc, "futures": {
        **doc["futures"], "next_trade_id": doc["futures"]["next_trade_id"] - 1}}), "futures.next_trade_id"),
    ("f_duplicate", lambda text, doc: json.dumps({**doc, "futures": {
        **doc["futures"], "orders": doc["futures"]["orders"] * 2}}), "futures.orders[2]: duplicate order id"),
    ("f_open", lambda text, doc: json.dumps({**doc, "futures": {**doc["futures"], "open": {}}}),
     "futures.open: order BTCUSDT"),
])
def test_bad_file_is_refused_with_its_name(tmp_path: Path, name: str, damage, problem: str) -> None:  # type: ignore[no-untyped-def]
    doc = _saved_doc()
    path = tmp_path / f"{name}.json"
    path.write_text(damage(json.dumps(doc), doc), encoding="utf-8")
    ex = make()
    before = snapshot(ex, saved_at=0)
    with pytest.raises(StateFileError) as e:
        load(ex, path)
    assert str(path) in str(e.value) and problem in str(e.value)
    assert snapshot(ex, saved_at=0) == before  # nothing half-applied


def test_saver_writes_after_changes_and_atomically(tmp_path: Path) -> None:
    import asyncio
    import concurrent.futures

    path = tmp_path / "state.json"
    ex = make()
    saver = StateSaver(ex, path, interval=0.01)

    async def scenario() -> None:
        task = asyncio.create_task(saver.run())
        await asyncio.sleep(0.05)
        assert not path.exists()  # nothing changed yet: no write
        spot(ex, side="BUY", type="MARKET", quantity="0.01")
        await asyncio.sleep(0.05)
        assert path.exists() and saver.saves == 1
        ex.futures.set_leverage("BTCUSDT", 7)  # no order event: the server's change hook marks it
        ex.changed()
        await asyncio.sleep(0.05)
        task.cancel()

    # On a thread of its own: an AppTest earlier in this process may leave an event loop running
    # on the main thread, and asyncio.run refuses to start inside one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, scenario()).result()
    assert saver.saves == 2 and SAVE_INTERVAL_S <= 0.5
    again = make()
    load(again, path)
    assert again.futures.positions["BTCUSDT"].leverage == 7
    assert not list(tmp_path.glob("*.tmp"))  # the temp file was renamed over the target


def _on_own_loop(scenario) -> None:  # type: ignore[no-untyped-def]
    # see test_saver_writes_after_changes_and_atomically: asyncio.run on a thread of its own
    import asyncio
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, scenario()).result()


def test_capture_is_a_copy_that_later_trading_cannot_change() -> None:
    """The saver encodes a capture on a worker thread while the engines trade on: it must hold no
    live order, trade, balance or position."""
    ex = make()
    ids = populate(ex)
    cap = capture(ex, saved_at=0)
    before = snapshot(ex, saved_at=0)
    ex.move_price("BTCUSDT", D("58900"))  # fills the resting BUY, fires the trailing stop
    ex.move_price("BTCUSDT", D("55400"))  # fires the stop-loss and the algo stop
    spot(ex, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01", price="50000")
    ex.futures.set_leverage("SOLUSDT", 3)
    assert ex.engine.orders[("BTCUSDT", ids["rest"])].status == "FILLED"
    assert snapshot(ex, saved_at=0) != before
    assert render(cap) == before


def test_saver_writes_off_the_loop_one_at_a_time_and_shutdown_waits(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import asyncio
    import threading
    import time

    from simulator.state_file import saver as persist

    path = tmp_path / "state.json"
    ex = make()
    saver = StateSaver(ex, path, interval=0.01)
    lock, writing, most, started = threading.Lock(), [0], [0], threading.Event()
    real_write = persist.write_atomic

    def slow_write(p: Path, text: str) -> None:
        with lock:
            writing[0] += 1
            most[0] = max(most[0], writing[0])
        started.set()
        time.sleep(0.4)
        try:
            real_write(p, text)
        finally:
            with lock:
                writing[0] -= 1

    monkeypatch.setattr(persist, "write_atomic", slow_write)

    async def scenario() -> None:
        ctx = saver.context(None)  # type: ignore[arg-type]
        await ctx.__anext__()  # the saver runs, as under aiohttp
        spot(ex, side="BUY", type="MARKET", quantity="0.01")
        while not started.is_set():
            await asyncio.sleep(0.005)
        ticks = 0  # the loop keeps serving while the file is written
        for _ in range(5):
            await asyncio.sleep(0.01)
            ticks += 1
        assert writing[0] == 1 and ticks == 5
        ex.futures.set_leverage("BTCUSDT", 9)  # a change after the capture being written
        ex.changed()
        with pytest.raises(StopAsyncIteration):  # shutdown (SIGTERM) while the write is in progress
            await ctx.__anext__()

    _on_own_loop(scenario)
    assert most[0] == 1 and saver.saves == 2  # the final save waited for the background write
    again = make()
    load(again, path)
    assert again.futures.positions["BTCUSDT"].leverage == 9  # the newest state is the one on disk
    assert len(again.engine.trades["BTCUSDT"]) == 1
    assert not list(tmp_path.glob("*.tmp"))


def test_an_older_capture_never_overwrites_a_newer_one(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    ex = make()
    saver = StateSaver(ex, path)
    old = saver._capture()
    ex.futures.set_leverage("BTCUSDT", 8)
    new = saver._capture()
    saver._write(*new)
    saver._write(*old)  # finished encoding later than the newer one: dropped
    again = make()
    load(again, path)
    assert again.futures.positions["BTCUSDT"].leverage == 8 and saver.saves == 1


def test_a_bar_marks_dirty_only_when_a_trailing_stop_moves(tmp_path: Path) -> None:
    ex = make()
    saver = StateSaver(ex, tmp_path / "state.json")
    ex.move_price("BTCUSDT", D("60000"))
    assert not saver.dirty  # nothing open: a bar changes no account
    trail = ex.algo.place({"symbol": "BTCUSDT", "algoType": "CONDITIONAL", "side": "SELL", "callbackRate": "5",
                           "type": "TRAILING_STOP_MARKET", "quantity": "0.01", "reduceOnly": "true"})
    assert saver.dirty
    saver.save_now()
    ex.move_price("BTCUSDT", D("59800"))  # below the extreme (60000), above the stop: nothing moved
    assert not saver.dirty and trail.extreme == D("60000")
    ex.move_price("BTCUSDT", D("60300"))  # a new high: the extreme moves without an event
    assert saver.dirty and trail.extreme == D("60300")
    saver.save_now()
    ex.move_price("BTCUSDT", D("60300"))
    assert not saver.dirty
    ex.move_price("BTCUSDT", D("57000"))  # 5 % off the high: it fires (an event) and is forgotten
    assert saver.dirty and not trail.is_open and not saver._trailing
