"""Public trades REST on Binance's paths, spot and USD-M: ``/api/v3/trades``, ``/api/v3/aggTrades``,
``/fapi/v1/trades``, ``/fapi/v1/aggTrades`` (the tape is ``tape.py``: one trade per market bar)."""
from __future__ import annotations

from simulator.filters import fmt8
from simulator.params import int_param
from simulator.registry import Params, endpoint, limit_param, symbol_param
from simulator.state import SimExchange
from simulator.tape import MarketTrade


def _select(ex: SimExchange, params: Params, with_times: bool) -> tuple[str, list[MarketTrade]]:
    sym = symbol_param(ex, params)
    assert sym is not None
    limit = limit_param(params, 500, 1000)
    start = int_param(params, "startTime") if with_times else None
    end = int_param(params, "endTime") if with_times else None
    return sym, ex.tape.recent(sym, limit, int_param(params, "fromId"), start, end)


def _price(ex: SimExchange, sym: str, futures: bool, t: MarketTrade) -> tuple[str, str]:
    if futures:
        spec = ex.futures_specs[sym]
        return spec.fmt_price(t.price), spec.fmt_qty(t.qty)
    return fmt8(t.price), fmt8(t.qty)


def _trades(ex: SimExchange, params: Params, futures: bool) -> list[dict[str, object]]:
    sym, rows = _select(ex, params, with_times=False)
    out = []
    for t in rows:
        price, qty = _price(ex, sym, futures, t)
        row: dict[str, object] = {"id": t.id, "price": price, "qty": qty, "quoteQty": fmt8(t.price * t.qty),
                                  "time": t.time, "isBuyerMaker": t.buyer_maker}
        if not futures:
            row["isBestMatch"] = True
        out.append(row)
    return out


def _agg_trades(ex: SimExchange, params: Params, futures: bool) -> list[dict[str, object]]:
    sym, rows = _select(ex, params, with_times=True)
    out = []
    for t in rows:
        price, qty = _price(ex, sym, futures, t)
        row: dict[str, object] = {"a": t.id, "p": price, "q": qty, "f": t.id, "l": t.id, "T": t.time,
                                  "m": t.buyer_maker}
        if not futures:
            row["M"] = True
        out.append(row)
    return out


@endpoint("GET", "/api/v3/trades", weight=25)
def spot_trades(ex: SimExchange, params: Params) -> object:
    return _trades(ex, params, futures=False)


@endpoint("GET", "/fapi/v1/trades", weight=5)
def futures_trades(ex: SimExchange, params: Params) -> object:
    return _trades(ex, params, futures=True)


@endpoint("GET", "/api/v3/aggTrades", weight=4)
def spot_agg_trades(ex: SimExchange, params: Params) -> object:
    return _agg_trades(ex, params, futures=False)


@endpoint("GET", "/fapi/v1/aggTrades", weight=20)
def futures_agg_trades(ex: SimExchange, params: Params) -> object:
    return _agg_trades(ex, params, futures=True)
