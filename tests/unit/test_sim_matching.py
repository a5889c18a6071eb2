"""Matching in the local exchange (simulator/matching.py, book.py, filters.py), without HTTP."""
from __future__ import annotations

from decimal import Decimal as D

import pytest

from simulator.accounts import Account
from simulator.book import BookConfig, SyntheticBook
from simulator.errors import ApiError
from simulator.filters import DEFAULT_SPECS
from simulator.matching import SpotEngine
from simulator.params import parse_new_order
from simulator.prices import Bar

SPEC = DEFAULT_SPECS["BTCUSDT"]
NOW = 1_700_000_000_000


def make_engine(usdt: str = "100000", btc: str = "2", maker: str = "0.001", taker: str = "0.001") -> SpotEngine:
    acct = Account.with_balances({"USDT": D(usdt), "BTC": D(btc)})
    acct.maker_rate, acct.taker_rate = D(maker), D(taker)
    eng = SpotEngine({"BTCUSDT": SPEC}, acct, lambda: NOW, BookConfig(), participation=D("1"))
    eng.set_price("BTCUSDT", D("50000"))
    return eng


def order(**kw: str):  # type: ignore[no-untyped-def]
    return parse_new_order({"symbol": "BTCUSDT", **kw})


def bar(low: str, high: str, close: str, volume: str = "100") -> Bar:
    return Bar("BTCUSDT", NOW, NOW + 999, D(close), D(high), D(low), D(close), D(volume))


def test_book_depth_grows_with_distance_and_straddles_mid() -> None:
    book = SyntheticBook(D("50000"), SPEC)
    asks, bids = book.levels("asks", 10), book.levels("bids", 10)
    assert bids[0].price < D("50000") < asks[0].price
    assert all(a.price < b.price for a, b in zip(asks, asks[1:]))
    assert all(a.price > b.price for a, b in zip(bids, bids[1:]))
    assert all(a.qty < b.qty for a, b in zip(asks, asks[1:]))
    assert all((p.price % SPEC.tick_size) == 0 and (p.qty % SPEC.step_size) == 0 for p in asks + bids)


def test_market_buy_walks_the_book() -> None:
    eng = make_engine()
    book = eng.book("BTCUSDT")
    top = book.levels("asks", 3)
    qty = top[0].qty + top[1].qty + D("0.01")  # needs three levels
    o = eng.place(order(side="BUY", type="MARKET", quantity=str(qty)))
    assert o.status == "FILLED" and o.executed_qty == qty
    assert [f.price for f in o.fills] == [lv.price for lv in top]
    assert [f.qty for f in o.fills] == [top[0].qty, top[1].qty, D("0.01")]
    assert o.cum_quote == sum(f.price * f.qty for f in o.fills)
    avg = o.cum_quote / o.executed_qty
    assert top[0].price < avg < top[2].price
    assert all(not f.is_maker for f in o.fills)


def test_market_sell_walks_bids_and_quote_order_qty_spends_at_most_quote() -> None:
    eng = make_engine()
    o = eng.place(order(side="SELL", type="MARKET", quantity="1"))
    bids = eng.book("BTCUSDT").levels("bids", 10)
    assert o.fills[0].price == bids[0].price and o.fills[-1].price < bids[0].price
    q = eng.place(order(side="BUY", type="MARKET", quoteOrderQty="1000"))
    assert q.status == "FILLED" and q.cum_quote <= D("1000")
    assert q.cum_quote > D("1000") - eng.book("BTCUSDT").best_ask * SPEC.step_size
    assert q.orig_quote_qty == D("1000")


def test_fees_taken_from_received_asset() -> None:
    eng = make_engine(maker="0.0002", taker="0.001")
    acct = eng.account
    buy = eng.place(order(side="BUY", type="MARKET", quantity="0.1"))
    assert all(f.commission_asset == "BTC" for f in buy.fills)
    assert sum(f.commission for f in buy.fills) == D("0.1") * D("0.001")
    assert acct.free("BTC") == D("2") + D("0.1") - D("0.0001")
    assert acct.free("USDT") == D("100000") - buy.cum_quote
    sell = eng.place(order(side="SELL", type="MARKET", quantity="0.1"))
    fee = sum(f.commission for f in sell.fills)
    assert all(f.commission_asset == "USDT" for f in sell.fills)
    assert fee == sell.cum_quote * D("0.001")
    assert acct.free("USDT") == D("100000") - buy.cum_quote + sell.cum_quote - fee
    # a maker fill pays the maker rate
    rest = eng.place(order(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.1", price="49000"))
    eng.on_bar(bar("48999", "50000", "49500"))
    assert rest.status == "FILLED" and rest.fills[0].is_maker
    assert rest.fills[0].commission == D("0.1") * D("0.0002")


def test_limit_rests_and_fills_only_when_price_trades_through() -> None:
    eng = make_engine()
    acct = eng.account
    o = eng.place(order(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.5", price="49000"))
    assert o.status == "NEW" and not o.fills
    assert acct.get("USDT").locked == D("24500") and acct.free("USDT") == D("75500")
    assert eng.open_orders("BTCUSDT") == [o]
    eng.on_bar(bar("49000", "50100", "49500"))  # touches, does not trade through
    assert o.status == "NEW"
    fills = eng.on_bar(bar("48950", "49600", "49100"))
    assert o.status == "FILLED" and fills and fills[0].price == D("49000")
    assert acct.get("USDT").locked == 0 and acct.free("USDT") == D("75500")
    assert acct.free("BTC") == D("2") + D("0.5") * D("0.999")
    assert eng.open_orders("BTCUSDT") == []

    sell = eng.place(order(side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.2", price="51000"))
    assert acct.get("BTC").locked == D("0.2")
    eng.on_bar(bar("49000", "51000.01", "50900"))
    assert sell.status == "FILLED" and sell.fills[0].price == D("51000")


def test_partial_fill_when_volume_is_short() -> None:
    eng = make_engine()
    o = eng.place(order(side="BUY", type="LIMIT", timeInForce="GTC", quantity="1", price="49000"))
    eng.on_bar(bar("48900", "49500", "49000", volume="0.3"))
    assert o.status == "PARTIALLY_FILLED" and o.executed_qty == D("0.3")
    assert eng.account.get("USDT").locked == D("0.7") * D("49000")
    eng.on_bar(bar("48900", "49500", "49000", volume="5"))
    assert o.status == "FILLED" and o.executed_qty == D("1") and len(o.fills) == 2


def test_price_time_priority_shares_short_volume() -> None:
    eng = make_engine()
    a = eng.place(order(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.5", price="49000"))
    b = eng.place(order(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.5", price="49500"))
    eng.on_bar(bar("48000", "49900", "48500", volume="0.6"))
    assert b.status == "FILLED" and a.executed_qty == D("0.1")


def test_limit_maker_rejected_when_it_would_take() -> None:
    eng = make_engine()
    ask = eng.book("BTCUSDT").best_ask
    with pytest.raises(ApiError) as e:
        eng.place(order(side="BUY", type="LIMIT_MAKER", quantity="0.01", price=str(ask)))
    assert (e.value.code, e.value.msg) == (-2010, "Order would immediately match and take.")
    ok = eng.place(order(side="BUY", type="LIMIT_MAKER", quantity="0.01", price="49000"))
    assert ok.status == "NEW"


def test_crossing_limit_takes_then_rests_and_ioc_fok() -> None:
    eng = make_engine()
    book = eng.book("BTCUSDT")
    first = book.levels("asks", 1)[0]
    # GTC at the best ask for more than it holds: takes the level, rests the rest
    gtc = eng.place(order(side="BUY", type="LIMIT", timeInForce="GTC", quantity=str(first.qty + D("0.1")), price=str(first.price)))
    assert gtc.status == "PARTIALLY_FILLED" and gtc.executed_qty == first.qty
    # the taker part paid the level price; the lock now covers only the resting 0.1
    assert eng.account.get("USDT").locked == first.price * D("0.1")
    ioc = eng.place(order(side="BUY", type="LIMIT", timeInForce="IOC", quantity=str(first.qty + D("0.1")), price=str(first.price)))
    assert ioc.status == "EXPIRED" and ioc.executed_qty == first.qty
    fok = eng.place(order(side="BUY", type="LIMIT", timeInForce="FOK", quantity=str(first.qty + D("0.1")), price=str(first.price)))
    assert fok.status == "EXPIRED" and fok.executed_qty == 0
    assert eng.account.get("USDT").locked == first.price * D("0.1")  # FOK/IOC released their locks


def test_cancel_releases_lock_and_unknown_cancel() -> None:
    eng = make_engine()
    o = eng.place(order(side="SELL", type="LIMIT", timeInForce="GTC", quantity="1", price="60000", newClientOrderId="abc"))
    assert eng.account.get("BTC").locked == D("1")
    c = eng.cancel("BTCUSDT", None, "abc", "cxl-1")
    assert c.status == "CANCELED" and c.cancel_client_id == "cxl-1"
    assert eng.account.get("BTC").locked == 0 and eng.account.free("BTC") == D("2")
    with pytest.raises(ApiError) as e:
        eng.cancel("BTCUSDT", o.order_id, None)
    assert e.value.code == -2011


def test_rejections_balance_duplicate_filters() -> None:
    eng = make_engine(usdt="100", btc="0")
    with pytest.raises(ApiError) as e:
        eng.place(order(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01", price="49000"))
    assert (e.value.code, e.value.msg) == (-2010, "Account has insufficient balance for requested action.")
    with pytest.raises(ApiError) as e:
        eng.place(order(side="SELL", type="MARKET", quantity="0.01"))
    assert e.value.code == -2010
    eng.place(order(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001", price="49000", newClientOrderId="dup"))
    with pytest.raises(ApiError) as e:
        eng.place(order(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001", price="49000", newClientOrderId="dup"))
    assert (e.value.code, e.value.msg) == (-2010, "Duplicate order sent.")
    for kw, name in [
        ({"quantity": "0.000015", "price": "49000"}, "LOT_SIZE"),
        ({"quantity": "0.001", "price": "49000.005"}, "PRICE_FILTER"),
        ({"quantity": "0.00001", "price": "49000"}, "NOTIONAL"),
        ({"quantity": "0.001", "price": "5000"}, "PERCENT_PRICE_BY_SIDE"),
    ]:
        with pytest.raises(ApiError) as e:
            eng.place(order(side="BUY", type="LIMIT", timeInForce="GTC", **kw))
        assert (e.value.code, e.value.msg) == (-1013, f"Filter failure: {name}")


def test_parameter_errors() -> None:
    cases = [
        ({"side": "BUY", "type": "LIMIT", "quantity": "1", "price": "1"}, -1102),  # no timeInForce
        ({"side": "BUY", "type": "MARKET"}, -1102),
        ({"side": "UP", "type": "MARKET", "quantity": "1"}, -1117),
        ({"side": "BUY", "type": "NOPE", "quantity": "1"}, -1116),
        ({"side": "BUY", "type": "LIMIT", "timeInForce": "XYZ", "quantity": "1", "price": "1"}, -1115),
        ({"side": "BUY", "type": "MARKET", "quantity": "1e-05"}, -1100),
        ({"side": "BUY", "type": "MARKET", "quantity": "0.000000001"}, -1111),
        ({"side": "BUY", "type": "MARKET", "quantity": "1", "price": "1"}, -1106),
    ]
    for kw, code in cases:
        with pytest.raises(ApiError) as e:
            order(**kw)
        assert e.value.code == code, kw


# -- USD-M futures --------------------------------------------------------------------------------

from simulator.futures import DEFAULT_FUTURES_SPECS, FuturesEngine, Position, parse_futures_order  # noqa: E402


def make_futures(wallet: str = "10000") -> tuple[FuturesEngine, dict[str, D]]:
    prices = {"BTCUSDT": D("60000")}
    eng = FuturesEngine({"BTCUSDT": DEFAULT_FUTURES_SPECS["BTCUSDT"]}, D(wallet), prices.__getitem__, lambda: NOW,
                        participation=D("1"))
    return eng, prices


def forder(**kw: str):  # type: ignore[no-untyped-def]
    return parse_futures_order({"symbol": "BTCUSDT", **kw})


def test_futures_position_entry_fees_and_realized_pnl() -> None:
    eng, prices = make_futures()
    o, ack = eng.place(forder(side="BUY", type="MARKET", quantity="0.1"))
    assert ack["status"] == "NEW" and o.status == "FILLED"
    pos = eng.positions["BTCUSDT"]
    assert pos.amt == D("0.1") and pos.entry == o.avg_price
    fee = o.cum_quote * D("0.0004")
    assert eng.wallet == D("10000") - fee
    prices["BTCUSDT"] = D("61000")
    assert eng.upnl(pos) == D("0.1") * (D("61000") - pos.entry)
    entry = pos.entry
    c, _ = eng.place(forder(side="SELL", type="MARKET", quantity="0.05", reduceOnly="true"))
    realized = D("0.05") * (c.avg_price - entry)
    assert c.fills[0].realized_pnl == realized
    assert pos.amt == D("0.05") and pos.entry == entry
    assert eng.wallet == D("10000") - fee + realized - c.cum_quote * D("0.0004")
    # flip: sell 0.15 closes 0.05 and opens 0.1 short at the fill price
    f, _ = eng.place(forder(side="SELL", type="MARKET", quantity="0.15"))
    assert pos.amt == D("-0.1") and pos.entry == f.fills[-1].price


def test_futures_rejections() -> None:
    eng, _ = make_futures(wallet="100")
    cases = [
        (dict(side="SELL", type="MARKET", quantity="0.01", reduceOnly="true"), -2022),  # nothing to reduce
        (dict(side="BUY", type="MARKET", quantity="1"), -2019),  # 60k notional at 20x needs 3000 USDT
        (dict(side="BUY", type="MARKET", quantity="0.0015"), -4023),
        (dict(side="BUY", type="MARKET", quantity="0.001"), -4164),  # 60 USDT < 100 min notional
        (dict(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.002", price="59000.05"), -4014),
        (dict(side="BUY", type="LIMIT", timeInForce="GTX", quantity="0.002", price="61000"), -5022),
        (dict(side="BUY", type="LIMIT", timeInForce="FOK", quantity="5", price="60010"), -5021),
    ]
    for kw, code in cases:
        if code in (-5022, -5021):  # enough margin: these fail on matching, not on money
            eng.wallet = D("100000")
        with pytest.raises(ApiError) as e:
            eng.place(forder(**kw))
        assert e.value.code == code, kw
    with pytest.raises(ApiError) as e:
        forder(side="BUY", type="STOP_MARKET", quantity="0.01")
    assert e.value.code == -4120
    with pytest.raises(ApiError) as e:
        forder(side="BUY", type="MARKET", quantity="0.01", positionSide="LONG")
    assert e.value.code == -4061


def test_futures_limit_rests_then_fills_as_maker() -> None:
    eng, prices = make_futures()
    o, _ = eng.place(forder(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01", price="59000"))
    assert o.status == "NEW" and eng.open_order_im("BTCUSDT") == D("0.01") * D("59000") / 20
    eng.on_bar(bar("59000", "60000", "59500"))
    assert o.status == "NEW"
    prices["BTCUSDT"] = D("58990")
    eng.on_bar(bar("58990", "59500", "58990"))
    assert o.status == "FILLED" and o.fills[0].maker and o.fills[0].commission == D("590") * D("0.0002")
    assert eng.positions["BTCUSDT"].amt == D("0.01") and eng.positions["BTCUSDT"].entry == D("59000")


def test_futures_margin_type_and_leverage_rules() -> None:
    eng, _ = make_futures()
    with pytest.raises(ApiError) as e:
        eng.set_margin_type("BTCUSDT", "CROSSED")
    assert e.value.code == -4046
    eng.set_leverage("BTCUSDT", 10)
    with pytest.raises(ApiError) as e:
        eng.set_leverage("BTCUSDT", 0)
    assert e.value.code == -4028
    eng.place(forder(side="BUY", type="MARKET", quantity="0.01"))
    with pytest.raises(ApiError) as e:
        eng.set_margin_type("BTCUSDT", "ISOLATED")
    assert e.value.code == -4048


def test_futures_isolated_liquidation_price_worked_example() -> None:
    # reference/binance-api.md §7: long 0.01 BTC @ 60000, isolated 10x (WB = 60), MMR 0.004 -> 54216.87
    eng, _ = make_futures()
    pos = Position("BTCUSDT", leverage=10, margin_type="ISOLATED", amt=D("0.01"), entry=D("60000"),
                   isolated_wallet=D("60"))
    assert eng.liquidation_price(pos).quantize(D("0.01")) == D("54216.87")


# -- price sources feeding the exchange ----------------------------------------------------------------

from dataclasses import dataclass as _dataclass  # noqa: E402

from simulator.prices import CandleMarketSource, RandomWalkSource  # noqa: E402
from simulator.state import SimConfig, SimExchange  # noqa: E402


@_dataclass
class _FakeCandle:
    symbol: str
    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float


class _ScriptedMarket:
    """Any object with step(open_time) -> candles plugs in (like market.synthetic.SyntheticMarket)."""

    def __init__(self, closes: list[float]) -> None:
        self.closes = closes
        self.i = 0

    def step(self, open_time: int) -> list[_FakeCandle]:
        c = self.closes[min(self.i, len(self.closes) - 1)]
        prev = self.closes[max(self.i - 1, 0)]
        self.i += 1
        return [_FakeCandle("BTCUSDT", open_time, prev, max(prev, c) + 5, min(prev, c) - 5, c, 50.0)]


def test_candle_market_adapter_drives_klines_and_fills() -> None:
    start = 1_700_000_040_000
    market = _ScriptedMarket([50_000.0] * 10 + [49_000.0])
    ex = SimExchange(SimConfig(balances={"USDT": D("100000")}), CandleMarketSource(market, start, warmup=10))
    assert list(ex.specs) == ["BTCUSDT"] and ex.engine.price("BTCUSDT") == D("50000.00")
    ks = ex.klines.klines("BTCUSDT", "1m", None, None, 5)
    assert len(ks) == 5 and ks[-1].open_time == start - 60_000 and ks[-1].close_time == start - 1
    o = ex.engine.place(order(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.1", price="49500"))
    ex.advance(1)  # the next candle falls to 49000 (low 48995): trades through 49500
    assert ex.engine.price("BTCUSDT") == D("49000.00") and o.status == "FILLED"
    assert ex.market_ms == start + 60_000


def test_random_walk_is_seeded_and_realistic() -> None:
    a = RandomWalkSource(seed=5, start_ms=1_700_000_000_000, history_minutes=30)
    b = RandomWalkSource(seed=5, start_ms=1_700_000_000_000, history_minutes=30)
    assert a.history() == b.history() and a.next_bars() == b.next_bars()
    last = {bar.symbol: bar.close for bar in a.history()[-4:]}
    assert D("30000") < last["BTCUSDT"] < D("150000") and D("50") < last["SOLUSDT"] < D("500")
    bars = a.next_bars()
    assert all(bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high for bar in bars)
    assert all(bar.close_time - bar.open_time == 999 for bar in bars)


# -- futures conditional (algo) orders -----------------------------------------------------------------

from simulator.algo import AlgoBook  # noqa: E402


def test_algo_stop_market_trigger_rules_and_close_position() -> None:
    eng, prices = make_futures()
    algo = AlgoBook(eng, lambda: NOW)
    eng.place(forder(side="BUY", type="MARKET", quantity="0.1"))
    base = {"symbol": "BTCUSDT", "algoType": "CONDITIONAL"}
    with pytest.raises(ApiError) as e:  # a SELL stop above the market would fire at once
        algo.place({**base, "side": "SELL", "type": "STOP_MARKET", "triggerPrice": "61000", "closePosition": "true"})
    assert e.value.code == -2021
    sl = algo.place({**base, "side": "SELL", "type": "STOP_MARKET", "triggerPrice": "59000", "closePosition": "true"})
    tp = algo.place({**base, "side": "SELL", "type": "TAKE_PROFIT_MARKET", "triggerPrice": "62000",
                     "quantity": "0.05", "reduceOnly": "true"})
    algo.on_bar(bar("59000.1", "61000", "60000"))
    assert sl.status == "NEW" and tp.status == "NEW"
    prices["BTCUSDT"] = D("62100")
    algo.on_bar(bar("60000", "62100", "62100"))
    assert tp.status == "FINISHED" and eng.positions["BTCUSDT"].amt == D("0.05")
    prices["BTCUSDT"] = D("58900")
    algo.on_bar(bar("58900", "62100", "58900"))
    assert sl.status == "FINISHED" and eng.positions["BTCUSDT"].amt == 0  # closePosition closed the rest
    assert eng.orders[("BTCUSDT", sl.actual_order_id)].type == "MARKET"


def test_algo_trailing_stop_follows_the_high() -> None:
    eng, prices = make_futures()
    algo = AlgoBook(eng, lambda: NOW)
    eng.place(forder(side="BUY", type="MARKET", quantity="0.1"))
    ts = algo.place({"symbol": "BTCUSDT", "algoType": "CONDITIONAL", "side": "SELL", "type": "TRAILING_STOP_MARKET",
                     "quantity": "0.1", "callbackRate": "1", "reduceOnly": "true"})
    algo.on_bar(bar("60000", "63000", "62900"))  # new high 63000; 1 % below is 62370
    assert ts.status == "NEW" and ts.extreme == D("63000")
    prices["BTCUSDT"] = D("62300")
    algo.on_bar(bar("62300", "62900", "62300"))
    assert ts.status == "FINISHED" and eng.positions["BTCUSDT"].amt == 0


def test_futures_isolated_liquidation_loses_the_isolated_wallet() -> None:
    eng, prices = make_futures()
    eng.set_margin_type("BTCUSDT", "ISOLATED")
    eng.set_leverage("BTCUSDT", 10)
    o, _ = eng.place(forder(side="BUY", type="MARKET", quantity="0.01"))
    pos = eng.positions["BTCUSDT"]
    iw, wallet_after_entry = pos.isolated_wallet, eng.wallet
    lp = eng.liquidation_price(pos)
    assert iw == o.cum_quote / 10 and lp < pos.entry
    eng.on_bar(bar(str(lp + 1), "60100", "60000"))  # not reached
    assert pos.amt == D("0.01")
    prices["BTCUSDT"] = lp - 10
    eng.on_bar(bar(str(lp - 10), "60000", str(lp - 10)))
    assert pos.amt == 0 and pos.isolated_wallet == 0
    liq = [x for x in eng.orders.values() if x.type == "LIQUIDATION"][0]
    assert liq.client_order_id.startswith("autoclose-") and liq.status == "FILLED"
    assert abs((wallet_after_entry - eng.wallet) - iw) < D("0.01")  # the whole isolated margin is gone


# -- spot stop-loss / take-profit orders --------------------------------------------------------------


def test_spot_stop_orders_wait_then_trigger() -> None:
    eng = make_engine()
    acct = eng.account
    with pytest.raises(ApiError) as e:  # a SELL stop above the market would trigger at once
        eng.place(order(side="SELL", type="STOP_LOSS", quantity="0.5", stopPrice="51000"))
    assert (e.value.code, e.value.msg) == (-2010, "Order would trigger immediately.")
    sl = eng.place(order(side="SELL", type="STOP_LOSS", quantity="0.5", stopPrice="49000"))
    tp = eng.place(order(side="SELL", type="TAKE_PROFIT_LIMIT", timeInForce="GTC", quantity="0.5",
                         price="52000", stopPrice="52000"))
    assert sl.pending and tp.pending and sl.status == "NEW" and sl.working_time == -1
    assert acct.get("BTC").locked == D("1")  # both legs hold their base
    eng.on_bar(bar("49000.01", "51999.99", "50000"))
    assert sl.pending and tp.pending
    eng.set_price("BTCUSDT", D("48900"))
    eng.on_bar(bar("48900", "50000", "48900"))  # reaches the stop: sells at market
    assert not sl.pending and sl.status == "FILLED" and all(not f.is_maker for f in sl.fills)
    assert sl.fills[0].price < D("48900")
    assert acct.get("BTC").locked == D("0.5")
    assert eng.cancel("BTCUSDT", tp.order_id, None).status == "CANCELED"
    assert acct.get("BTC").locked == 0 and acct.free("BTC") == D("1.5")


def test_spot_stop_limit_becomes_a_resting_limit() -> None:
    eng = make_engine()
    buy = eng.place(order(side="BUY", type="STOP_LOSS_LIMIT", timeInForce="GTC", quantity="0.1",
                          price="50500", stopPrice="50400"))
    assert eng.account.get("USDT").locked == D("5050")
    with pytest.raises(ApiError) as e:
        order(side="BUY", type="STOP_LOSS", quantity="0.1")
    assert e.value.code == -1102  # stopPrice is mandatory
    eng.set_price("BTCUSDT", D("50450"))
    eng.on_bar(bar("50000", "50450", "50450"))  # triggers; 50450 < 50500: takes the ask
    assert not buy.pending and buy.status == "FILLED" and buy.fills[0].price <= D("50500")
