"""Spot REST handlers: Binance's ``/api/v3/*`` paths, parameters and JSON shapes (§2.1)."""
from __future__ import annotations

from decimal import Decimal

from simulator import errors, responses
from simulator.book import Level
from simulator.filters import fmt8
from simulator.klines import valid_interval
from simulator.order_list_api import order_list_canceled
from simulator.params import int_param, parse_new_order, str_param
from simulator.registry import Params, endpoint, limit_param, symbol_param, symbols_list
from simulator.state import SimExchange
from simulator.tickers import stats_24h

# -- market data ---------------------------------------------------------------------------------


@endpoint("GET", "/api/v3/ping")
def ping(ex: SimExchange, params: Params) -> object:
    return {}


@endpoint("GET", "/api/v3/time")
def server_time(ex: SimExchange, params: Params) -> object:
    return {"serverTime": ex.now_ms()}


def _symbol_info(ex: SimExchange, sym: str) -> dict[str, object]:
    spec = ex.specs[sym]
    return {
        "symbol": sym,
        "status": "TRADING",
        "baseAsset": spec.base_asset,
        "baseAssetPrecision": spec.base_precision,
        "quoteAsset": spec.quote_asset,
        "quotePrecision": spec.quote_precision,
        "quoteAssetPrecision": spec.quote_precision,
        "baseCommissionPrecision": spec.base_precision,
        "quoteCommissionPrecision": spec.quote_precision,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
                       "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": False,
        "ocoAllowed": True,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": False,
        "amendAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": spec.filters_json(),
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


@endpoint("GET", "/api/v3/exchangeInfo", weight=20)
def exchange_info(ex: SimExchange, params: Params) -> object:
    syms = symbols_list(ex, params)
    one = symbol_param(ex, params, required=False)
    selected = [one] if one else syms if syms is not None else list(ex.specs)
    return {
        "timezone": "UTC",
        "serverTime": ex.now_ms(),
        "rateLimits": ex.limiter.limits.exchange_info(),
        "exchangeFilters": [],
        "symbols": [_symbol_info(ex, s) for s in selected],
    }


@endpoint("GET", "/api/v3/klines", weight=2)
def klines(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params)
    assert sym is not None
    interval = str_param(params, "interval", True)
    assert interval is not None
    if not valid_interval(interval) or not ex.klines.supports(interval):
        raise errors.invalid_interval()
    start = int_param(params, "startTime")
    end = int_param(params, "endTime")
    limit = limit_param(params, 500, 1000)
    return [k.to_json() for k in ex.klines.klines(sym, interval, start, end, limit)]


def _ticker_weight(params: Params) -> int:
    return 2 if params.get("symbol") else 4


@endpoint("GET", "/api/v3/ticker/price", weight=_ticker_weight)
def ticker_price(ex: SimExchange, params: Params) -> object:
    one = symbol_param(ex, params, required=False)
    if one:
        return {"symbol": one, "price": fmt8(ex.engine.price(one))}
    syms = symbols_list(ex, params) or list(ex.specs)
    return [{"symbol": s, "price": fmt8(ex.engine.price(s))} for s in syms]


def _book_ticker(ex: SimExchange, sym: str) -> dict[str, object]:
    book = ex.engine.book(sym)
    bid, ask = book.levels("bids", 1)[0], book.levels("asks", 1)[0]
    return {
        "symbol": sym,
        "bidPrice": fmt8(bid.price), "bidQty": fmt8(bid.qty),
        "askPrice": fmt8(ask.price), "askQty": fmt8(ask.qty),
    }


@endpoint("GET", "/api/v3/ticker/bookTicker", weight=_ticker_weight)
def book_ticker(ex: SimExchange, params: Params) -> object:
    one = symbol_param(ex, params, required=False)
    if one:
        return _book_ticker(ex, one)
    syms = symbols_list(ex, params) or list(ex.specs)
    return [_book_ticker(ex, s) for s in syms]


@endpoint("GET", "/api/v3/avgPrice", weight=2)
def avg_price(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params)
    assert sym is not None
    avg = ex.klines.avg_price(sym) or ex.engine.price(sym)
    return {"mins": 5, "price": fmt8(avg), "closeTime": ex.market_ms - 1}


@endpoint("GET", "/api/v3/ticker/24hr", weight=lambda p: 2 if p.get("symbol") else 80)
def ticker_24hr(ex: SimExchange, params: Params) -> object:
    one = symbol_param(ex, params, required=False)
    syms = [one] if one else symbols_list(ex, params) or list(ex.specs)
    out = []
    for sym in syms:
        s = stats_24h(ex.klines, ex.tape, sym, ex.market_ms, ex.engine.price(sym))
        bt = _book_ticker(ex, sym)
        out.append({
            "symbol": sym,
            "priceChange": fmt8(s.change),
            "priceChangePercent": s.change_percent,
            "weightedAvgPrice": fmt8(s.weighted_avg),
            "prevClosePrice": fmt8(s.open),
            "lastPrice": fmt8(s.last),
            "lastQty": fmt8(s.last_qty),
            "bidPrice": bt["bidPrice"], "bidQty": bt["bidQty"],
            "askPrice": bt["askPrice"], "askQty": bt["askQty"],
            "openPrice": fmt8(s.open),
            "highPrice": fmt8(s.high),
            "lowPrice": fmt8(s.low),
            "volume": fmt8(s.volume),
            "quoteVolume": fmt8(s.quote_volume),
            "openTime": s.open_time,
            "closeTime": s.close_time,
            "firstId": s.first_id, "lastId": s.last_id,
            "count": s.count,
        })
    return out[0] if one else out


def _depth_weight(params: Params) -> int:
    try:
        limit = int(params.get("limit") or 100)
    except ValueError:
        return 5
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


@endpoint("GET", "/api/v3/depth", weight=_depth_weight)
def depth(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params)
    assert sym is not None
    limit = limit_param(params, 100, 5000)
    book = ex.engine.book(sym)

    def rows(levels: list[Level]) -> list[list[str]]:
        return [[fmt8(lv.price), fmt8(lv.qty)] for lv in levels]

    return {"lastUpdateId": ex.update_ids[sym], "bids": rows(book.levels("bids", limit)), "asks": rows(book.levels("asks", limit))}


# -- account and trading -------------------------------------------------------------------------


@endpoint("GET", "/api/v3/account", weight=20, signed=True)
def account(ex: SimExchange, params: Params) -> object:
    omit = (params.get("omitZeroBalances") or "").lower() == "true"
    return responses.account(ex.account, omit)


@endpoint("GET", "/api/v3/account/commission", weight=20, signed=True)
def account_commission(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params)
    assert sym is not None
    return responses.account_commission(ex.account, sym)


@endpoint("POST", "/api/v3/order", weight=1, signed=True, order_change=True, new_order=True)
def new_order(ex: SimExchange, params: Params) -> object:
    symbol_param(ex, params)
    req = parse_new_order(params)
    order = ex.engine.place(req)
    return responses.new_order(order, req.resp_type)


@endpoint("POST", "/api/v3/order/test", weight=lambda p: 20 if p.get("computeCommissionRates") == "true" else 1,
          signed=True)
def test_order(ex: SimExchange, params: Params) -> object:
    symbol_param(ex, params)
    req = parse_new_order(params)
    ex.engine.check(req)
    if (params.get("computeCommissionRates") or "").lower() == "true":
        zero = fmt8(Decimal(0))
        return {
            "standardCommissionForOrder": {"maker": fmt8(ex.account.maker_rate), "taker": fmt8(ex.account.taker_rate)},
            "specialCommissionForOrder": {"maker": zero, "taker": zero},
            "taxCommissionForOrder": {"maker": zero, "taker": zero},
            "discount": {"enabledForAccount": False, "enabledForSymbol": False, "discountAsset": "BNB",
                         "discount": "0.75000000"},
        }
    return {}


def _order_ref(params: Params) -> tuple[int | None, str | None]:
    oid = int_param(params, "orderId")
    cid = str_param(params, "origClientOrderId")
    if oid is None and cid is None:
        raise errors.one_of_missing("origClientOrderId", "orderId")
    return oid, cid


@endpoint("GET", "/api/v3/order", weight=4, signed=True)
def get_order(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params)
    assert sym is not None
    oid, cid = _order_ref(params)
    order = ex.engine.find(sym, oid, cid)
    if order is None:
        raise errors.order_does_not_exist()
    return responses.order_query(order)


@endpoint("DELETE", "/api/v3/order", weight=1, signed=True, order_change=True)
def cancel_order(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params)
    assert sym is not None
    oid, cid = _order_ref(params)
    order = ex.engine.cancel(sym, oid, cid, str_param(params, "newClientOrderId"))
    return responses.order_canceled(order, ex.now_ms())


@endpoint("GET", "/api/v3/openOrders", weight=lambda p: 6 if p.get("symbol") else 80, signed=True)
def open_orders(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params, required=False)
    return [responses.order_query(o) for o in ex.engine.open_orders(sym)]


@endpoint("DELETE", "/api/v3/openOrders", weight=1, signed=True, order_change=True)
def cancel_open_orders(ex: SimExchange, params: Params) -> object:
    """Every open order of the symbol; a working order list comes back once, as a list (Binance)."""
    sym = symbol_param(ex, params)
    assert sym is not None
    now = ex.now_ms()
    working = {lst.order_list_id: lst for lst in ex.order_lists.open_lists() if lst.symbol == sym}
    out: list[object] = []
    listed: set[int] = set()
    for o in ex.engine.cancel_all(sym):
        if o.order_list_id not in working:
            out.append(responses.order_canceled(o, now))
        elif o.order_list_id not in listed:
            listed.add(o.order_list_id)
            out.append(order_list_canceled(ex, working[o.order_list_id]))
    return out


@endpoint("GET", "/api/v3/allOrders", weight=20, signed=True)
def all_orders(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params)
    assert sym is not None
    from_id = int_param(params, "orderId")
    start, end = int_param(params, "startTime"), int_param(params, "endTime")
    limit = limit_param(params, 500, 1000)
    orders = sorted((o for (s, _), o in ex.engine.orders.items() if s == sym), key=lambda o: o.order_id)
    if from_id is not None:
        orders = [o for o in orders if o.order_id >= from_id]
    if start is not None:
        orders = [o for o in orders if o.time >= start]
    if end is not None:
        orders = [o for o in orders if o.time <= end]
    orders = orders[:limit] if from_id is not None or start is not None else orders[-limit:]
    return [responses.order_query(o) for o in orders]


@endpoint("GET", "/api/v3/myTrades", weight=lambda p: 5 if p.get("orderId") else 20, signed=True)
def my_trades(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params)
    assert sym is not None
    oid = int_param(params, "orderId")
    start, end = int_param(params, "startTime"), int_param(params, "endTime")
    from_id = int_param(params, "fromId")
    limit = limit_param(params, 500, 1000)
    trades = list(ex.engine.trades.get(sym, []))
    if oid is not None:
        trades = [t for t in trades if t.order_id == oid]
    if from_id is not None:
        trades = [t for t in trades if t.id >= from_id]
    if start is not None:
        trades = [t for t in trades if t.time >= start]
    if end is not None:
        trades = [t for t in trades if t.time <= end]
    trades = trades[:limit] if from_id is not None or start is not None else trades[-limit:]
    orders = ex.engine.orders
    return [responses.my_trade(t, orders[(sym, t.order_id)].order_list_id) for t in trades]
