"""Parsing of protective orders and their user-data events (exchange/protective_models.py,
exchange/userdata_events.py), the error types they raise (exchange/errors.py), and the stream's
hand-off to ``on_protective`` -- all on Binance's documented JSON, no network."""
from __future__ import annotations

import json
from decimal import Decimal as D
from typing import Any

import pytest
import requests
from binance.exceptions import BinanceAPIException

from exchange.errors import (
    DuplicateOrderError, FinalError, InsufficientBalanceError, WouldTriggerError, classify,
)
from exchange.protective_models import ProtectiveLeg, ProtectiveOrder
from exchange.userdata import (
    AlgoUpdateEvent, ListStatusEvent, UserDataStream, parse_event, parse_protective_event,
)
from exchange.venues import venue_urls

LIST_STATUS = {"subscriptionId": 0, "event": {
    "e": "listStatus", "E": 1564035303637, "s": "BTCUSDT", "g": 2, "c": "OCO", "l": "EXEC_STARTED",
    "L": "EXECUTING", "r": "NONE", "C": "pos-1", "T": 1564035303625,
    "O": [{"s": "BTCUSDT", "i": 17, "c": "pos-1-sl"}, {"s": "BTCUSDT", "i": 18, "c": "pos-1-tp"}]}}
ALGO = {"e": "ALGO_UPDATE", "T": 1750515742297, "E": 1750515742303, "o": {
    "caid": "pos-2-sl", "aid": 2148719, "at": "CONDITIONAL", "o": "STOP_MARKET", "s": "BTCUSDT", "S": "SELL",
    "ps": "BOTH", "f": "GTC", "q": "0.010", "X": "TRIGGERED", "ai": "4000000002", "ap": "57899.40", "aq": "0.010",
    "act": "MARKET", "tp": "58000.00", "p": "0", "V": "EXPIRE_MAKER", "wt": "CONTRACT_PRICE", "pm": "NONE",
    "cp": False, "pP": False, "R": True, "tt": 1750515742297, "gtd": 0}}
LEG_REPORT = {"symbol": "BTCUSDT", "orderId": 10, "orderListId": 2, "clientOrderId": "pos-1-sl",
              "transactTime": 1, "price": "57900.00000000", "origQty": "0.10000000", "executedQty": "0.00000000",
              "origQuoteOrderQty": "0.00000000", "cummulativeQuoteQty": "0.00000000", "status": "NEW",
              "timeInForce": "GTC", "type": "STOP_LOSS_LIMIT", "side": "SELL", "stopPrice": "58000.00000000",
              "workingTime": -1, "selfTradePreventionMode": "EXPIRE_MAKER"}
TP_REPORT = {**LEG_REPORT, "orderId": 11, "clientOrderId": "pos-1-tp", "type": "LIMIT_MAKER",
             "price": "62000.00000000", "workingTime": 5}
TP_REPORT.pop("stopPrice")


def test_list_status_in_the_ws_api_wrapper() -> None:
    ev = parse_protective_event(LIST_STATUS)
    assert isinstance(ev, ListStatusEvent)
    assert (ev.symbol, ev.order_list_id, ev.list_client_order_id, ev.contingency_type, ev.list_status_type,
            ev.list_order_status, ev.reject_reason, ev.transaction_time, ev.event_time, ev.done) == (
        "BTCUSDT", 2, "pos-1", "OCO", "EXEC_STARTED", "EXECUTING", "NONE", 1564035303625, 1564035303637, False)
    assert [(leg.order_id, leg.client_order_id) for leg in ev.legs] == [(17, "pos-1-sl"), (18, "pos-1-tp")]
    done = parse_protective_event({**LIST_STATUS["event"], "l": "ALL_DONE", "L": "ALL_DONE"})
    assert isinstance(done, ListStatusEvent) and done.done


def test_algo_update_names_the_order_it_created() -> None:
    ev = parse_protective_event(ALGO)
    assert isinstance(ev, AlgoUpdateEvent)
    assert (ev.client_algo_id, ev.algo_id, ev.order_type, ev.side, ev.status, ev.quantity, ev.trigger_price,
            ev.actual_order_id, ev.actual_avg_price, ev.actual_executed_qty, ev.close_position, ev.reduce_only,
            ev.done) == ("pos-2-sl", 2148719, "STOP_MARKET", "SELL", "TRIGGERED", D("0.010"), D("58000.00"),
                         4000000002, D("57899.40"), D("0.010"), False, True, False)
    new = parse_protective_event({**ALGO, "o": {**ALGO["o"], "X": "NEW", "ai": "", "ap": "0", "aq": "0"}})
    assert isinstance(new, AlgoUpdateEvent) and new.actual_order_id is None and new.actual_executed_qty == 0
    fin = parse_protective_event({**ALGO, "o": {**ALGO["o"], "X": "FINISHED"}})
    assert isinstance(fin, AlgoUpdateEvent) and fin.done


@pytest.mark.parametrize("msg", [
    {"e": "executionReport", "s": "BTCUSDT"}, {"e": "ORDER_TRADE_UPDATE", "o": {}}, {"e": "ACCOUNT_UPDATE"},
    {"e": "ALGO_UPDATE"}, "text", None,
])
def test_other_events_are_not_protective(msg: Any) -> None:
    assert parse_protective_event(msg) is None


def test_malformed_protective_events_raise() -> None:
    with pytest.raises(KeyError):
        parse_protective_event({"e": "listStatus", "s": "BTCUSDT"})
    with pytest.raises(KeyError):
        parse_protective_event({"e": "ALGO_UPDATE", "o": {"s": "BTCUSDT"}})


def test_execution_report_of_a_leg_carries_its_list() -> None:
    ev = parse_event("spot", {"e": "executionReport", "E": 1, "s": "BTCUSDT", "c": "pos-1-sl", "S": "SELL",
                              "o": "STOP_LOSS_LIMIT", "f": "GTC", "q": "0.1", "p": "57900", "P": "58000", "g": 2,
                              "x": "NEW", "X": "NEW", "i": 17, "l": "0", "z": "0", "L": "0", "n": "0", "N": None,
                              "T": 1, "t": -1, "w": False, "Z": "0"})
    assert ev is not None and (ev.order_list_id, ev.stop_price, ev.is_working) == (2, D("58000"), False)
    plain = parse_event("spot", {"e": "executionReport", "s": "BTCUSDT", "c": "x", "i": 1, "x": "NEW", "X": "NEW"})
    assert plain is not None and (plain.order_list_id, plain.stop_price, plain.is_working) == (-1, D(0), True)


def test_oco_status_from_its_legs() -> None:
    def oco(list_status: str, *legs: dict[str, Any]) -> ProtectiveOrder:
        parsed = tuple(ProtectiveLeg.from_spot_order(o) for o in legs)
        return ProtectiveOrder("spot", "oco", "BTCUSDT", "SELL", "pos-1", 2, list_status, parsed)

    opened = oco("EXECUTING", LEG_REPORT, TP_REPORT)
    assert (opened.status, opened.is_active, opened.executed_qty) == ("OPEN", True, D(0))
    sl = opened.leg("stop")
    assert sl is not None and (sl.role, sl.stop_price, sl.triggered, sl.open) == ("stop", D("58000"), False, True)
    filled = oco("ALL_DONE", {**LEG_REPORT, "status": "EXPIRED"},
                 {**TP_REPORT, "status": "FILLED", "executedQty": "0.1", "cummulativeQuoteQty": "6200"})
    assert (filled.status, filled.executed_qty, filled.executed_leg.role) == ("FILLED", D("0.1"), "take_profit")  # type: ignore[union-attr]
    assert filled.executed_leg.avg_price == D("62000")  # type: ignore[union-attr]
    working = oco("ALL_DONE", {**LEG_REPORT, "isWorking": True}, {**TP_REPORT, "status": "EXPIRED"})
    assert (working.status, working.leg("stop").triggered) == ("WORKING", True)  # type: ignore[union-attr]
    part = oco("ALL_DONE", {**LEG_REPORT, "status": "CANCELED", "executedQty": "0.01"},
               {**TP_REPORT, "status": "EXPIRED"})
    assert (part.status, part.executed_qty) == ("CANCELED", D("0.01"))
    canceled = oco("ALL_DONE", {**LEG_REPORT, "status": "CANCELED"}, {**TP_REPORT, "status": "CANCELED"})
    assert (canceled.status, canceled.is_active) == ("CANCELED", False)
    expired = oco("ALL_DONE", {**LEG_REPORT, "status": "EXPIRED", "isWorking": True},
                  {**TP_REPORT, "status": "EXPIRED"})
    assert expired.status == "EXPIRED"


ALGO_JSON = {"algoId": 7, "clientAlgoId": "pos-2-sl", "algoType": "CONDITIONAL", "orderType": "STOP_MARKET",
             "symbol": "BTCUSDT", "side": "SELL", "positionSide": "BOTH", "timeInForce": "GTC", "quantity": "0.010",
             "algoStatus": "NEW", "actualOrderId": "", "actualPrice": "0.00000", "triggerPrice": "58000.00",
             "price": "0.00", "workingType": "CONTRACT_PRICE", "closePosition": False, "priceProtect": False,
             "reduceOnly": True, "createTime": 1, "updateTime": 1, "triggerTime": 0, "goodTillDate": 0}


@pytest.mark.parametrize("algo,actual,status,active", [
    ({}, None, "OPEN", True),
    ({"algoStatus": "TRIGGERING"}, None, "WORKING", True),
    ({"algoStatus": "TRIGGERED", "actualOrderId": "9"}, {"status": "NEW", "executedQty": "0"}, "WORKING", True),
    ({"algoStatus": "FINISHED", "actualOrderId": "9"},
     {"status": "FILLED", "executedQty": "0.010", "cumQuote": "579", "avgPrice": "57900"}, "FILLED", False),
    ({"algoStatus": "FINISHED", "actualOrderId": "9"}, {"status": "EXPIRED", "executedQty": "0"}, "EXPIRED", False),
    ({"algoStatus": "CANCELED"}, None, "CANCELED", False),
    ({"algoStatus": "REJECTED"}, None, "EXPIRED", False),
])
def test_algo_status(algo: dict[str, Any], actual: dict[str, Any] | None, status: str, active: bool) -> None:
    leg = ProtectiveLeg.from_algo({**ALGO_JSON, **algo}, actual)
    po = ProtectiveOrder("futures", "stop_market", "BTCUSDT", "SELL", leg.client_order_id, leg.order_id, leg.status,
                         (leg,))
    assert (po.status, po.is_active) == (status, active)
    if actual and actual["status"] == "FILLED":
        assert (leg.actual_order_id, leg.executed_qty, leg.avg_price) == (9, D("0.010"), D("57900"))


def api(status: int, code: int, msg: str) -> BinanceAPIException:
    resp = requests.Response()
    resp.status_code = status
    text = json.dumps({"code": code, "msg": msg})
    resp._content = text.encode()
    return BinanceAPIException(resp, status, text)


@pytest.mark.parametrize("code,msg,kind", [
    (-2010, "Order would trigger immediately.", WouldTriggerError),
    (-2010, "Order would immediately match and take.", WouldTriggerError),
    (-2010, "The relationship of the prices for the orders is not correct.", WouldTriggerError),
    (-2021, "Order would immediately trigger.", WouldTriggerError),
    (-2010, "Duplicate order sent.", DuplicateOrderError),
    (-4116, "ClientOrderId is duplicated.", DuplicateOrderError),
    (-2010, "Account has insufficient balance for requested action.", InsufficientBalanceError),
    (-2019, "Margin is insufficient.", InsufficientBalanceError),
    (-2010, "Market is closed.", FinalError),
])
def test_refusals_are_typed_and_final(code: int, msg: str, kind: type) -> None:
    err = classify(api(400, code, msg), mutating=True)
    assert type(err) is kind and isinstance(err, FinalError) and (err.code, err.message) == (code, msg)


def test_the_stream_hands_protective_events_over_in_order_and_survives_a_bad_consumer() -> None:
    got: list[Any] = []

    def bad(ev: Any) -> None:
        got.append(ev)
        raise RuntimeError("consumer bug")

    stream = UserDataStream(venue_urls("local"), "k", "s", "spot", got.append, on_protective=bad)
    assert stream._handle(LIST_STATUS) is False
    assert stream._handle({"e": "listStatus"}) is False  # unreadable: skipped, the stream goes on
    assert len(got) == 1 and isinstance(got[0], ListStatusEvent)
    plain = UserDataStream(venue_urls("local"), "k", "s", "futures", got.append)  # no on_protective: ignored
    assert plain._handle(ALGO) is False and len(got) == 1
