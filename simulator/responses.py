"""JSON shapes of spot orders, trades and the account, exactly as Binance returns them.

Numbers are strings with 8 decimals; ids and times are integers (binance-spot-api-docs rest-api.md).
"""
from __future__ import annotations

from decimal import Decimal

from simulator.accounts import Account
from simulator.filters import fmt8
from simulator.matching import SpotOrder, TradeRecord

STP_MODE = "EXPIRE_MAKER"


def order_ack(o: SpotOrder) -> dict[str, object]:
    return {
        "symbol": o.symbol,
        "orderId": o.order_id,
        "orderListId": o.order_list_id,
        "clientOrderId": o.client_order_id,
        "transactTime": o.time,
    }


def order_result(o: SpotOrder) -> dict[str, object]:
    extra: dict[str, object] = {"stopPrice": fmt8(o.stop_price)} if o.stop_price else {}
    return {
        **order_ack(o),
        "price": fmt8(o.price),
        "origQty": fmt8(o.orig_qty),
        "executedQty": fmt8(o.executed_qty),
        "origQuoteOrderQty": fmt8(o.orig_quote_qty),
        "cummulativeQuoteQty": fmt8(o.cum_quote),
        "status": o.status,
        "timeInForce": o.time_in_force,
        "type": o.type,
        "side": o.side,
        "workingTime": o.working_time,
        "selfTradePreventionMode": STP_MODE,
        **extra,
    }


def fill_json(t: TradeRecord) -> dict[str, object]:
    return {
        "price": fmt8(t.price),
        "qty": fmt8(t.qty),
        "commission": fmt8(t.commission),
        "commissionAsset": t.commission_asset,
        "tradeId": t.id,
    }


def order_full(o: SpotOrder) -> dict[str, object]:
    return {**order_result(o), "fills": [fill_json(t) for t in o.fills]}


def new_order(o: SpotOrder, resp_type: str) -> dict[str, object]:
    if resp_type == "ACK":
        return order_ack(o)
    if resp_type == "RESULT":
        return order_result(o)
    return order_full(o)


def order_query(o: SpotOrder) -> dict[str, object]:
    return {
        "symbol": o.symbol,
        "orderId": o.order_id,
        "orderListId": o.order_list_id,
        "clientOrderId": o.client_order_id,
        "price": fmt8(o.price),
        "origQty": fmt8(o.orig_qty),
        "executedQty": fmt8(o.executed_qty),
        "cummulativeQuoteQty": fmt8(o.cum_quote),
        "status": o.status,
        "timeInForce": o.time_in_force,
        "type": o.type,
        "side": o.side,
        "stopPrice": fmt8(o.stop_price),
        "icebergQty": fmt8(Decimal(0)),
        "time": o.time,
        "updateTime": o.update_time,
        "isWorking": o.type != "MARKET" and not o.pending and o.working_time > 0,
        "workingTime": o.working_time,
        "origQuoteOrderQty": fmt8(o.orig_quote_qty),
        "selfTradePreventionMode": STP_MODE,
    }


def order_canceled(o: SpotOrder, now: int) -> dict[str, object]:
    return {
        "symbol": o.symbol,
        "origClientOrderId": o.orig_client_order_id or o.client_order_id,
        "orderId": o.order_id,
        "orderListId": o.order_list_id,
        "clientOrderId": o.cancel_client_id or o.client_order_id,
        "transactTime": now,
        "price": fmt8(o.price),
        "origQty": fmt8(o.orig_qty),
        "executedQty": fmt8(o.executed_qty),
        "origQuoteOrderQty": fmt8(o.orig_quote_qty),
        "cummulativeQuoteQty": fmt8(o.cum_quote),
        "status": o.status,
        "timeInForce": o.time_in_force,
        "type": o.type,
        "side": o.side,
        "selfTradePreventionMode": STP_MODE,
    }


def my_trade(t: TradeRecord, order_list_id: int = -1) -> dict[str, object]:
    return {
        "symbol": t.symbol,
        "id": t.id,
        "orderId": t.order_id,
        "orderListId": order_list_id,
        "price": fmt8(t.price),
        "qty": fmt8(t.qty),
        "quoteQty": fmt8(t.quote_qty),
        "commission": fmt8(t.commission),
        "commissionAsset": t.commission_asset,
        "time": t.time,
        "isBuyer": t.is_buyer,
        "isMaker": t.is_maker,
        "isBestMatch": True,
    }


def commission_rates(account: Account) -> dict[str, str]:
    return {
        "maker": fmt8(account.maker_rate),
        "taker": fmt8(account.taker_rate),
        "buyer": fmt8(Decimal(0)),
        "seller": fmt8(Decimal(0)),
    }


def account(acct: Account, omit_zero: bool, uid: int = 1) -> dict[str, object]:
    return {
        "makerCommission": int(acct.maker_rate * 10000),
        "takerCommission": int(acct.taker_rate * 10000),
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": commission_rates(acct),
        "canTrade": True,
        "canWithdraw": True,
        "canDeposit": True,
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": acct.update_time,
        "accountType": "SPOT",
        "balances": [
            {"asset": a, "free": fmt8(b.free), "locked": fmt8(b.locked)}
            for a, b in acct.snapshot(omit_zero)
        ],
        "permissions": ["SPOT"],
        "uid": uid,
    }


def account_commission(acct: Account, symbol: str) -> dict[str, object]:
    zero = fmt8(Decimal(0))
    return {
        "symbol": symbol,
        "standardCommission": commission_rates(acct),
        "specialCommission": {"maker": zero, "taker": zero, "buyer": zero, "seller": zero},
        "taxCommission": {"maker": zero, "taker": zero, "buyer": zero, "seller": zero},
        "discount": {
            "enabledForAccount": False,
            "enabledForSymbol": False,
            "discountAsset": "BNB",
            "discount": "0.75000000",
        },
    }
