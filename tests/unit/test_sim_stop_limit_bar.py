"""A spot stop-limit order triggered inside a bar sees only the part of the bar after its stop price
(simulator/matching.py): it must not fill at a price the market traded before the trigger."""
from __future__ import annotations

from decimal import Decimal as D

from simulator.params import parse_new_order
from simulator.state import SimConfig, SimExchange


def make() -> SimExchange:
    ex = SimExchange(SimConfig(seed=2, speed=0, balances={"USDT": D("100000"), "BTC": D("1")}))
    ex.move_price("BTCUSDT", D("60000"))
    return ex


def stop_limit(ex: SimExchange, side: str, stop: str, price: str):  # type: ignore[no-untyped-def]
    return ex.engine.place(parse_new_order({"symbol": "BTCUSDT", "side": side, "type": "STOP_LOSS_LIMIT",
                                            "timeInForce": "GTC", "quantity": "0.01", "stopPrice": stop,
                                            "price": price}))


def test_sell_stop_limit_above_the_rest_of_the_bar_rests() -> None:
    ex = make()
    order = stop_limit(ex, "SELL", "59000", "59100")
    ex.move_price("BTCUSDT", D("58950"))  # one bar 60000 -> 58950: high 60000 came before the stop
    assert not order.pending and order.status == "NEW" and order.executed_qty == 0
    ex.move_price("BTCUSDT", D("59200"))  # now the market trades up through 59100
    assert order.status == "FILLED" and order.fills[0].price == D("59100")


def test_buy_stop_limit_below_the_rest_of_the_bar_rests() -> None:
    ex = make()
    order = stop_limit(ex, "BUY", "61000", "60900")
    ex.move_price("BTCUSDT", D("61050"))  # 60000 -> 61050: the low (60000) came before the stop
    assert not order.pending and order.status == "NEW" and order.executed_qty == 0


def test_the_part_after_the_stop_still_fills_it() -> None:
    ex = make()
    order = stop_limit(ex, "SELL", "59000", "58990")
    ex.move_price("BTCUSDT", D("58950"))  # after the stop the market is at 59000 > 58990: it trades
    assert order.status == "FILLED"
