"""USD-M trading and account REST handlers on Binance's ``/fapi/*`` paths (reference/binance-api.md
§2.2, §7): order POST/GET/DELETE, openOrders, allOpenOrders DELETE, allOrders, userTrades,
positionRisk v2 and v3, account v2 (v3 alias), balance v2/v3, income, leverage, marginType,
symbolConfig, accountConfig, positionSide/dual GET, commissionRate, leverageBracket, listenKey
POST/PUT/DELETE. Market data is in ``futures_market_api.py``, the Algo service in
``futures_algo_api.py``.
"""
from __future__ import annotations

from decimal import Decimal

from simulator import errors
from simulator.errors import ApiError
from simulator.filters import fmt_fixed as _fmt
from simulator.futures import FuturesEngine, FuturesOrder, FuturesTrade, Position, parse_futures_order
from simulator.income import INCOME_TYPES
from simulator.params import int_param, str_param
from simulator.registry import Params, endpoint, limit_param, symbol_param
from simulator.state import SimExchange

ZERO = Decimal(0)


# -- orders --------------------------------------------------------------------------------------


def order_json(ex: SimExchange, o: FuturesOrder, with_time: bool = False) -> dict[str, object]:
    spec = ex.futures_specs[o.symbol]
    out: dict[str, object] = {
        "orderId": o.order_id, "symbol": o.symbol, "status": o.status, "clientOrderId": o.client_order_id,
        "price": spec.fmt_price(o.price), "avgPrice": _fmt(o.avg_price, max(5, spec.price_precision)),
        "origQty": spec.fmt_qty(o.orig_qty), "executedQty": spec.fmt_qty(o.executed_qty),
        "cumQty": spec.fmt_qty(o.executed_qty), "cumQuote": _fmt(o.cum_quote, 5),
        "timeInForce": o.time_in_force, "type": o.type, "reduceOnly": o.reduce_only, "closePosition": False,
        "side": o.side, "positionSide": "BOTH", "stopPrice": "0", "workingType": "CONTRACT_PRICE",
        "priceProtect": False, "origType": o.type, "priceMatch": "NONE",
        "selfTradePreventionMode": "EXPIRE_MAKER", "goodTillDate": 0, "updateTime": o.update_time,
    }
    if with_time:
        out["time"] = o.time
    return out


@endpoint("POST", "/fapi/v1/order", weight=0, signed=True, order_change=True, new_order=True)
def new_order(ex: SimExchange, params: Params) -> object:
    symbol_param(ex, params)
    req = parse_futures_order(params)
    order, ack = ex.futures.place(req)
    body = order_json(ex, order)
    if req.resp_type == "ACK":  # the state at acceptance, as Binance answers before matching
        spec = ex.futures_specs[order.symbol]
        body.update(status=ack["status"], executedQty=spec.fmt_qty(ZERO), cumQty=spec.fmt_qty(ZERO),
                    cumQuote=_fmt(ZERO, 5), avgPrice=_fmt(ZERO, max(5, spec.price_precision)),
                    updateTime=order.time)
    return body


def _order_ref(params: Params) -> tuple[int | None, str | None]:
    oid = int_param(params, "orderId")
    cid = str_param(params, "origClientOrderId")
    if oid is None and cid is None:
        raise errors.one_of_missing("orderId", "origClientOrderId")
    return oid, cid


@endpoint("GET", "/fapi/v1/order", weight=1, signed=True)
def get_order(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params)
    assert sym is not None
    order = ex.futures.find(sym, *_order_ref(params))
    if order is None:
        raise errors.order_does_not_exist()
    return order_json(ex, order, with_time=True)


@endpoint("DELETE", "/fapi/v1/order", weight=1, signed=True, order_change=True)
def cancel_order(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params)
    assert sym is not None
    return order_json(ex, ex.futures.cancel(sym, *_order_ref(params)))


@endpoint("GET", "/fapi/v1/openOrders", weight=lambda p: 1 if p.get("symbol") else 40, signed=True)
def open_orders(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params, required=False)
    return [order_json(ex, o, with_time=True) for o in ex.futures.open_orders(sym)]


@endpoint("DELETE", "/fapi/v1/allOpenOrders", weight=1, signed=True, order_change=True)
def cancel_all(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params)
    assert sym is not None
    ex.futures.cancel_all(sym)
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


@endpoint("GET", "/fapi/v1/allOrders", weight=5, signed=True)
def all_orders(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params)
    assert sym is not None
    limit = limit_param(params, 500, 1000)
    orders = sorted((o for (s, _), o in ex.futures.orders.items() if s == sym), key=lambda o: o.order_id)
    oid = int_param(params, "orderId")
    if oid is not None:
        orders = [o for o in orders if o.order_id >= oid][:limit]
    else:
        orders = orders[-limit:]
    return [order_json(ex, o, with_time=True) for o in orders]


def trade_json(ex: SimExchange, t: FuturesTrade) -> dict[str, object]:
    spec = ex.futures_specs[t.symbol]
    return {
        "buyer": t.side == "BUY", "commission": _fmt(t.commission), "commissionAsset": "USDT", "id": t.id,
        "maker": t.maker, "orderId": t.order_id, "price": spec.fmt_price(t.price), "qty": spec.fmt_qty(t.qty),
        "quoteQty": _fmt(t.quote_qty, 5), "realizedPnl": _fmt(t.realized_pnl), "side": t.side,
        "positionSide": "BOTH", "symbol": t.symbol, "time": t.time,
    }


@endpoint("GET", "/fapi/v1/userTrades", weight=5, signed=True)
def user_trades(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params)
    assert sym is not None
    trades = list(ex.futures.trades[sym])
    oid = int_param(params, "orderId")
    if oid is not None:
        trades = [t for t in trades if t.order_id == oid]
    from_id = int_param(params, "fromId")
    if from_id is not None:
        trades = [t for t in trades if t.id >= from_id]
    limit = limit_param(params, 500, 1000)
    return [trade_json(ex, t) for t in (trades[:limit] if from_id is not None else trades[-limit:])]


# -- positions and account -----------------------------------------------------------------------


def _position_v3(ex: SimExchange, p: Position) -> dict[str, object]:
    f = ex.futures
    mark = f.mark(p.symbol)
    notional = p.amt * mark
    upnl = f.upnl(p)
    im = f.position_im(p)
    oo_im = f.open_order_im(p.symbol)
    bids, asks = f.open_notional(p.symbol)
    return {
        "symbol": p.symbol, "positionSide": "BOTH", "positionAmt": ex.futures_specs[p.symbol].fmt_qty(p.amt),
        "entryPrice": _fmt(p.entry), "breakEvenPrice": _fmt(p.entry), "markPrice": _fmt(mark),
        "unRealizedProfit": _fmt(upnl), "liquidationPrice": _fmt(f.liquidation_price(p)),
        "isolatedMargin": _fmt(p.isolated_wallet + upnl if p.margin_type == "ISOLATED" else ZERO),
        "notional": _fmt(notional), "marginAsset": "USDT",
        "isolatedWallet": _fmt(p.isolated_wallet if p.margin_type == "ISOLATED" else ZERO),
        "initialMargin": _fmt(im + oo_im), "maintMargin": _fmt(f.maint_margin(p)),
        "positionInitialMargin": _fmt(im), "openOrderInitialMargin": _fmt(oo_im), "adl": 0,
        "bidNotional": _fmt(bids), "askNotional": _fmt(asks), "updateTime": p.update_time,
    }


def _position_v2(ex: SimExchange, p: Position) -> dict[str, object]:
    f = ex.futures
    mark = f.mark(p.symbol)
    return {
        "symbol": p.symbol, "positionAmt": ex.futures_specs[p.symbol].fmt_qty(p.amt),
        "entryPrice": _fmt(p.entry), "breakEvenPrice": _fmt(p.entry), "markPrice": _fmt(mark),
        "unRealizedProfit": _fmt(f.upnl(p)), "liquidationPrice": _fmt(f.liquidation_price(p)),
        "leverage": str(p.leverage), "maxNotionalValue": "1000000", "marginType": p.margin_type.lower()
        if p.margin_type == "ISOLATED" else "cross", "isolatedMargin": _fmt(
            p.isolated_wallet + f.upnl(p) if p.margin_type == "ISOLATED" else ZERO),
        "isAutoAddMargin": "false", "positionSide": "BOTH", "notional": _fmt(p.amt * mark),
        "isolatedWallet": _fmt(p.isolated_wallet if p.margin_type == "ISOLATED" else ZERO),
        "updateTime": p.update_time,
    }


def _filter_positions(ex: SimExchange, params: Params, only_active: bool) -> list[Position]:
    sym = symbol_param(ex, params, required=False)
    ps = [ex.futures.positions[sym]] if sym else list(ex.futures.positions.values())
    if only_active:
        ps = [p for p in ps if p.amt or ex.futures.open[p.symbol]]
    return ps


@endpoint("GET", "/fapi/v3/positionRisk", weight=5, signed=True)
def position_risk_v3(ex: SimExchange, params: Params) -> object:
    return [_position_v3(ex, p) for p in _filter_positions(ex, params, only_active=True)]


@endpoint("GET", "/fapi/v2/positionRisk", weight=5, signed=True)
def position_risk_v2(ex: SimExchange, params: Params) -> object:
    return [_position_v2(ex, p) for p in _filter_positions(ex, params, only_active=False)]


def _totals(f: FuturesEngine) -> dict[str, Decimal]:
    ps = list(f.positions.values())
    upnl = sum((f.upnl(p) for p in ps), ZERO)
    pos_im = sum((f.position_im(p) for p in ps), ZERO)
    oo_im = sum((f.open_order_im(p.symbol) for p in ps), ZERO)
    mm = sum((f.maint_margin(p) for p in ps), ZERO)
    avail = f.available()
    return {
        "wallet": f.wallet, "upnl": upnl, "margin_balance": f.wallet + upnl, "pos_im": pos_im, "oo_im": oo_im,
        "im": pos_im + oo_im, "mm": mm, "cross_upnl": f.cross_upnl(), "available": avail,
        "max_withdraw": max(ZERO, min(avail, f.wallet)),
    }


@endpoint("GET", "/fapi/v2/account", weight=5, signed=True)
@endpoint("GET", "/fapi/v3/account", weight=5, signed=True)
def account(ex: SimExchange, params: Params) -> object:
    f = ex.futures
    t = _totals(f)
    asset = {
        "asset": "USDT", "walletBalance": _fmt(t["wallet"]), "unrealizedProfit": _fmt(t["upnl"]),
        "marginBalance": _fmt(t["margin_balance"]), "maintMargin": _fmt(t["mm"]), "initialMargin": _fmt(t["im"]),
        "positionInitialMargin": _fmt(t["pos_im"]), "openOrderInitialMargin": _fmt(t["oo_im"]),
        "crossWalletBalance": _fmt(t["wallet"]), "crossUnPnl": _fmt(t["cross_upnl"]),
        "availableBalance": _fmt(t["available"]), "maxWithdrawAmount": _fmt(t["max_withdraw"]),
        "marginAvailable": True, "updateTime": f.update_time,
    }
    positions = []
    for p in f.positions.values():
        v3 = _position_v3(ex, p)
        positions.append({
            "symbol": p.symbol, "initialMargin": v3["initialMargin"], "maintMargin": v3["maintMargin"],
            "unrealizedProfit": v3["unRealizedProfit"], "positionInitialMargin": v3["positionInitialMargin"],
            "openOrderInitialMargin": v3["openOrderInitialMargin"], "leverage": str(p.leverage),
            "isolated": p.margin_type == "ISOLATED", "entryPrice": v3["entryPrice"],
            "breakEvenPrice": v3["breakEvenPrice"], "maxNotional": "1000000",
            "bidNotional": v3["bidNotional"], "askNotional": v3["askNotional"], "positionSide": "BOTH",
            "positionAmt": v3["positionAmt"], "updateTime": p.update_time,
        })
    return {
        "feeTier": 0, "feeBurn": False, "canTrade": True, "canDeposit": True, "canWithdraw": True,
        "updateTime": 0, "multiAssetsMargin": False, "tradeGroupId": -1,
        "totalInitialMargin": _fmt(t["im"]), "totalMaintMargin": _fmt(t["mm"]),
        "totalWalletBalance": _fmt(t["wallet"]), "totalUnrealizedProfit": _fmt(t["upnl"]),
        "totalMarginBalance": _fmt(t["margin_balance"]), "totalPositionInitialMargin": _fmt(t["pos_im"]),
        "totalOpenOrderInitialMargin": _fmt(t["oo_im"]), "totalCrossWalletBalance": _fmt(t["wallet"]),
        "totalCrossUnPnl": _fmt(t["cross_upnl"]), "availableBalance": _fmt(t["available"]),
        "maxWithdrawAmount": _fmt(t["max_withdraw"]), "assets": [asset], "positions": positions,
    }


@endpoint("GET", "/fapi/v2/balance", weight=5, signed=True)
@endpoint("GET", "/fapi/v3/balance", weight=5, signed=True)
def balance(ex: SimExchange, params: Params) -> object:
    t = _totals(ex.futures)
    return [{
        "accountAlias": "SgsR", "asset": "USDT", "balance": _fmt(t["wallet"]),
        "crossWalletBalance": _fmt(t["wallet"]), "crossUnPnl": _fmt(t["cross_upnl"]),
        "availableBalance": _fmt(t["available"]), "maxWithdrawAmount": _fmt(t["max_withdraw"]),
        "marginAvailable": True, "updateTime": ex.futures.update_time,
    }]


# Binance's income types; the ones the simulator never produces simply select nothing
BINANCE_INCOME_TYPES = frozenset(INCOME_TYPES) | {
    "WELCOME_BONUS", "REFERRAL_KICKBACK", "COMMISSION_REBATE", "API_REBATE", "CONTEST_REWARD",
    "CROSS_COLLATERAL_TRANSFER", "OPTIONS_PREMIUM_FEE", "OPTIONS_SETTLE_PROFIT", "INTERNAL_TRANSFER",
    "AUTO_EXCHANGE", "DELIVERED_SETTELMENT", "COIN_SWAP_DEPOSIT", "COIN_SWAP_WITHDRAW",
    "POSITION_LIMIT_INCREASE_FEE", "STRATEGY_UMFUTURES_TRANSFER", "FEE_RETURN", "BFUSD_REWARD",
}


@endpoint("GET", "/fapi/v1/income", weight=30, signed=True)
def income(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params, required=False)
    kind = str_param(params, "incomeType")
    if kind is not None and kind not in BINANCE_INCOME_TYPES:
        raise errors.illegal_param(f"Invalid incomeType {kind!r}; one of {', '.join(sorted(BINANCE_INCOME_TYPES))}.")
    page = int_param(params, "page") or 1
    if page < 1:
        raise errors.illegal_param("Illegal value for parameter 'page'.")
    rows = ex.futures.income.query(ex.now_ms(), sym, kind, int_param(params, "startTime"),
                                   int_param(params, "endTime"), limit_param(params, 100, 1000), page)
    return [{"symbol": r.symbol, "incomeType": r.income_type, "income": _fmt(r.amount), "asset": r.asset,
             "info": r.income_type, "time": r.time, "tranId": r.tran_id,
             "tradeId": str(r.trade_id) if r.trade_id else ""} for r in rows]


@endpoint("POST", "/fapi/v1/leverage", weight=1, signed=True)
def leverage(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params)
    assert sym is not None
    lev = int_param(params, "leverage", True)
    assert lev is not None
    ex.futures.set_leverage(sym, lev)
    return {"leverage": lev, "maxNotionalValue": "1000000", "symbol": sym}


@endpoint("POST", "/fapi/v1/marginType", weight=1, signed=True)
def margin_type(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params)
    assert sym is not None
    mt = str_param(params, "marginType", True)
    assert mt is not None
    ex.futures.set_margin_type(sym, mt.upper())
    return {"code": 200, "msg": "success"}


@endpoint("GET", "/fapi/v1/symbolConfig", weight=5, signed=True)
def symbol_config(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params, required=False)
    ps = [ex.futures.positions[sym]] if sym else list(ex.futures.positions.values())
    return [{"symbol": p.symbol, "marginType": p.margin_type, "isAutoAddMargin": False, "leverage": p.leverage,
             "maxNotionalValue": "1000000"} for p in ps]


@endpoint("GET", "/fapi/v1/accountConfig", weight=5, signed=True)
def account_config(ex: SimExchange, params: Params) -> object:
    return {"feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": True, "dualSidePosition": False,
            "updateTime": 0, "multiAssetsMargin": False, "tradeGroupId": -1}


@endpoint("GET", "/fapi/v1/positionSide/dual", weight=30, signed=True)
def position_mode(ex: SimExchange, params: Params) -> object:
    return {"dualSidePosition": False}


@endpoint("POST", "/fapi/v1/positionSide/dual", weight=1, signed=True)
def change_position_mode(ex: SimExchange, params: Params) -> object:
    """One-way mode is the only mode here: asking for it is Binance's -4059; hedge mode is refused."""
    value = (str_param(params, "dualSidePosition", True) or "").lower()
    if value not in ("true", "false"):
        raise errors.illegal_param("Parameter 'dualSidePosition' must be true or false.")
    if value == "false":
        raise ApiError(-4059, "No need to change position side.")
    # (a simulator limit, not a Binance error: -1000 with the reason, as for other features it lacks)
    raise ApiError(-1000, "Hedge mode (dualSidePosition=true) is not supported by the local exchange; "
                          "it trades in one-way mode only.", 400)


@endpoint("GET", "/fapi/v1/commissionRate", weight=20, signed=True)
def commission_rate(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params)
    return {"symbol": sym, "makerCommissionRate": str(ex.futures.maker_rate),
            "takerCommissionRate": str(ex.futures.taker_rate), "rpiCommissionRate": "0"}


@endpoint("GET", "/fapi/v1/leverageBracket", weight=1, signed=True)
def leverage_bracket(ex: SimExchange, params: Params) -> object:
    sym = symbol_param(ex, params, required=False)
    syms = [sym] if sym else list(ex.futures_specs)
    out = [{"symbol": s, "notionalCoef": 1.0, "brackets": [{
        "bracket": 1, "initialLeverage": 125, "notionalCap": 1_000_000_000, "notionalFloor": 0,
        "maintMarginRatio": float(ex.futures_specs[s].maint_margin_ratio), "cum": 0.0}]} for s in syms]
    return out[0] if sym else out


@endpoint("POST", "/fapi/v1/listenKey", weight=1, key_only=True)
def listen_key_create(ex: SimExchange, params: Params) -> object:
    return {"listenKey": ex.listen_keys.create(ex.now_ms())}


@endpoint("PUT", "/fapi/v1/listenKey", weight=1, key_only=True)
def listen_key_keepalive(ex: SimExchange, params: Params) -> object:
    return {"listenKey": ex.listen_keys.keepalive(params.get("listenKey"), ex.now_ms())}


@endpoint("DELETE", "/fapi/v1/listenKey", weight=1, key_only=True)
def listen_key_close(ex: SimExchange, params: Params) -> object:
    ex.listen_keys.close(params.get("listenKey"), ex.now_ms())
    return {}



