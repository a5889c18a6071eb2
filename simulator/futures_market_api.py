"""USD-M market data on Binance's ``/fapi/*`` paths (reference/binance-api.md §2.2): ping, time,
exchangeInfo, klines, ticker/price (v1, v2), ticker/bookTicker, ticker/24hr, depth, and funding:
premiumIndex, fundingRate (history), fundingInfo (``funding.py`` computes them).
"""
from __future__ import annotations

from simulator import errors
from simulator.book import Level
from simulator.filters import fmt8, fmt_fixed
from simulator.funding import FUNDING_EVERY_MS, INTEREST_RATE
from simulator.klines import valid_interval
from simulator.params import int_param, str_param
from simulator.registry import Params, endpoint, limit_param, symbol_param
from simulator.state import SimExchange
from simulator.tickers import stats_24h


# -- market data ---------------------------------------------------------------------------------


@endpoint("GET", "/fapi/v1/ping")
def ping(ex: SimExchange, params: Params) -> object:
    return {}


@endpoint("GET", "/fapi/v1/time")
def server_time(ex: SimExchange, params: Params) -> object:
    return {"serverTime": ex.now_ms()}


@endpoint("GET", "/fapi/v1/exchangeInfo")
def exchange_info(ex: SimExchange, params: Params) -> object:
    symbols = []
    for sym, spec in ex.futures_specs.items():
        symbols.append({
            "symbol": sym, "pair": sym, "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
            "onboardDate": 1569398400000, "status": "TRADING",
            "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
            "baseAsset": spec.base_asset, "quoteAsset": spec.quote_asset, "marginAsset": spec.quote_asset,
            "pricePrecision": spec.price_precision, "quantityPrecision": spec.quantity_precision,
            "baseAssetPrecision": 8, "quotePrecision": 8,
            "underlyingType": "COIN", "underlyingSubType": [], "settlePlan": 0, "triggerProtect": "0.0500",
            "liquidationFee": "0.012500", "marketTakeBound": "0.05", "maxMoveOrderLimit": 10000,
            "filters": spec.filters_json(),
            # the conditional types are placed through the Algo service (futures_algo_api.py)
            "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
                           "TRAILING_STOP_MARKET"],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
            "permissionSets": ["GRID", "COPY"],
        })
    return {
        "timezone": "UTC",
        "serverTime": ex.now_ms(),
        "futuresType": "U_MARGINED",
        "rateLimits": ex.limiter.limits.futures_exchange_info(),
        "exchangeFilters": [],
        "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
        "symbols": symbols,
    }


def _klines_weight(params: Params) -> int:
    try:
        limit = int(params.get("limit") or 500)
    except ValueError:
        return 1
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


@endpoint("GET", "/fapi/v1/klines", weight=_klines_weight)
def klines(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params)
    assert sym is not None
    interval = str_param(params, "interval", True)
    assert interval is not None
    if not valid_interval(interval) or not ex.klines.supports(interval):
        raise errors.invalid_interval()
    limit = limit_param(params, 500, 1500)
    rows = ex.futures_klines.klines(sym, interval, int_param(params, "startTime"), int_param(params, "endTime"), limit)
    return [k.to_json() for k in rows]


def _premium(ex: SimExchange, sym: str) -> dict[str, object]:
    fund = ex.funding
    index = fmt8(fund.index(sym))
    return {
        "symbol": sym, "markPrice": fmt8(fund.mark(sym)), "indexPrice": index, "estimatedSettlePrice": index,
        "lastFundingRate": fmt8(fund.estimate(sym)), "interestRate": fmt8(INTEREST_RATE),
        "nextFundingTime": fund.next_ms, "time": ex.now_ms(),
    }


@endpoint("GET", "/fapi/v1/premiumIndex", weight=lambda p: 1 if p.get("symbol") else 10)
def premium_index(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params, required=False)
    if sym:
        return _premium(ex, sym)
    return [_premium(ex, s) for s in ex.futures_specs]


@endpoint("GET", "/fapi/v1/fundingRate")
def funding_rate_history(ex: SimExchange, params: Params) -> object:
    """Settled rates, ascending: from ``startTime`` the first ``limit``, else the most recent ``limit``."""
    sym = symbol_param(ex, params, required=False)
    start, end = int_param(params, "startTime"), int_param(params, "endTime")
    limit = limit_param(params, 100, 1000)
    hist = ex.funding.history
    rows = sorted((r for s in ([sym] if sym else list(hist)) for r in hist.get(s, [])),
                  key=lambda r: (r.time, r.symbol))
    rows = [r for r in rows if (start is None or r.time >= start) and (end is None or r.time <= end)]
    rows = rows[:limit] if start is not None else rows[-limit:]
    return [{"symbol": r.symbol, "fundingRate": fmt8(r.rate), "fundingTime": r.time,
             "markPrice": fmt8(r.mark_price)} for r in rows]


@endpoint("GET", "/fapi/v1/fundingInfo")
def funding_info(ex: SimExchange, params: Params) -> object:
    """Every symbol (Binance lists only those with adjusted caps; here every cap is the simulator's)."""
    return [{"symbol": s, "adjustedFundingRateCap": fmt8(ex.funding.cap(s)),
             "adjustedFundingRateFloor": fmt8(-ex.funding.cap(s)),
             "fundingIntervalHours": FUNDING_EVERY_MS // 3_600_000, "disclaimer": False} for s in ex.futures_specs]


def _ticker(ex: SimExchange, sym: str) -> dict[str, object]:
    spec = ex.futures_specs[sym]
    return {"symbol": sym, "price": spec.fmt_price(ex.futures.mark(sym)), "time": ex.now_ms()}


@endpoint("GET", "/fapi/v1/ticker/price", weight=lambda p: 1 if p.get("symbol") else 2)
@endpoint("GET", "/fapi/v2/ticker/price", weight=lambda p: 1 if p.get("symbol") else 2)
def ticker_price(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params, required=False)
    if sym:
        return _ticker(ex, sym)
    return [_ticker(ex, s) for s in ex.futures_specs]


def _ticker_24hr(ex: SimExchange, sym: str) -> dict[str, object]:
    spec = ex.futures_specs[sym]
    s = stats_24h(ex.futures_klines, ex.tape, sym, ex.market_ms, ex.futures.mark(sym))
    return {
        "symbol": sym, "priceChange": spec.fmt_price(s.change), "priceChangePercent": s.change_percent,
        "weightedAvgPrice": spec.fmt_price(s.weighted_avg), "lastPrice": spec.fmt_price(s.last),
        "lastQty": spec.fmt_qty(s.last_qty), "openPrice": spec.fmt_price(s.open), "highPrice": spec.fmt_price(s.high),
        "lowPrice": spec.fmt_price(s.low), "volume": spec.fmt_qty(s.volume), "quoteVolume": fmt_fixed(s.quote_volume, 2),
        "openTime": s.open_time, "closeTime": s.close_time, "firstId": s.first_id, "lastId": s.last_id,
        "count": s.count,
    }


@endpoint("GET", "/fapi/v1/ticker/24hr", weight=lambda p: 1 if p.get("symbol") else 40)
def ticker_24hr(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params, required=False)
    if sym:
        return _ticker_24hr(ex, sym)
    return [_ticker_24hr(ex, s) for s in ex.futures_specs]


def _book_ticker(ex: SimExchange, sym: str) -> dict[str, object]:
    spec = ex.futures_specs[sym]
    book = ex.futures.book(sym)
    bid, ask = book.levels("bids", 1)[0], book.levels("asks", 1)[0]
    return {
        "symbol": sym, "bidPrice": spec.fmt_price(bid.price), "bidQty": spec.fmt_qty(bid.qty),
        "askPrice": spec.fmt_price(ask.price), "askQty": spec.fmt_qty(ask.qty),
        "time": ex.now_ms(), "lastUpdateId": ex.update_ids[sym],
    }


@endpoint("GET", "/fapi/v1/ticker/bookTicker", weight=lambda p: 2 if p.get("symbol") else 5)
def book_ticker(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params, required=False)
    if sym:
        return _book_ticker(ex, sym)
    return [_book_ticker(ex, s) for s in ex.futures_specs]


def _depth_weight(params: Params) -> int:
    try:
        limit = int(params.get("limit") or 500)
    except ValueError:
        return 2
    return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20


@endpoint("GET", "/fapi/v1/depth", weight=_depth_weight)
def depth(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params)
    assert sym is not None
    spec = ex.futures_specs[sym]
    limit = limit_param(params, 500, 1000)
    book = ex.futures.book(sym)
    now = ex.now_ms()

    def rows(levels: list[Level]) -> list[list[str]]:
        return [[spec.fmt_price(lv.price), spec.fmt_qty(lv.qty)] for lv in levels]

    return {"lastUpdateId": ex.update_ids[sym], "E": now, "T": now,
            "bids": rows(book.levels("bids", limit)), "asks": rows(book.levels("asks", limit))}


