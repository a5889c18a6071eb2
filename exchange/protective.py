"""Protective orders resting on the venue, placed, queried and canceled through an ExchangeClient.

``ProtectiveOrders(client)`` works on one ``ExchangeClient`` (its market, limiter, rules cache and
error typing):

* spot: an OCO exit of a long (``prepare_oco_exit`` / ``place_oco_exit``: a LIMIT_MAKER
  take-profit above, a STOP_LOSS_LIMIT below, ``POST /api/v3/orderList/oco``), or a lone
  STOP_LOSS_LIMIT (``prepare_stop_limit`` / ``place_stop_limit``); ``get_order_list``,
  ``cancel_order_list``, ``open_order_lists``, ``get_stop_limit``, ``cancel_stop_limit``,
  ``open_stop_limits``;
* USD-M: STOP_MARKET / TAKE_PROFIT_MARKET on the Algo service (``prepare_algo`` / ``place_algo``;
  python-binance's ``futures_create_order`` routes them to ``/fapi/v1/algoOrder``), reduce-only
  with a quantity or ``closePosition``; ``get_algo`` (with the order a trigger created and its
  trades), ``cancel_algo``, ``open_algos``.

Rounding (Decimal, through exchange/rules.py): quantity floored to the lot step; the take-profit
price up for a SELL (down for a BUY) so it is never worse than asked; a trigger price towards the
market (up for a SELL stop, down for a BUY stop: it fires no later than asked; a USD-M
take-profit trigger the same way, never worse than asked); the spot stop's limit price down (a
SELL that still fills). Problems found before sending raise ``FilterError`` and send nothing.

Errors (exchange/errors.py): placing is sent exactly once -- ``AmbiguousError`` on a 5xx or a lost
answer (query with ``get_*`` by the same client id before anything else), ``WouldTriggerError``
(the market is already through a level: nothing placed), ``DuplicateOrderError`` (the client id
is open already), ``InsufficientBalanceError``, ``FilterError``, other ``FinalError``,
``RetryableError`` (not executed). Queries and cancels are safe to repeat and are retried on
transient failures; ``get_*`` returns None for a client id the venue has never seen; ``cancel_*``
cancels whatever of it still works and returns its final state (None if never seen), so an
execution that raced the cancel is never lost.
"""
from __future__ import annotations

import logging
import re
from decimal import Decimal
from typing import Any, Literal

from exchange.client import ExchangeClient
from exchange.errors import FilterError, FinalError, NotFoundError
from exchange.protective_models import PreparedProtective, ProtectiveLeg, ProtectiveOrder
from exchange.rules import SymbolRules, dec, fmt

log = logging.getLogger(__name__)

_SPOT_ID = re.compile(r"^[a-zA-Z0-9\-_]{1,36}$")  # newClientOrderId / listClientOrderId
_FUTURES_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")  # clientAlgoId
AlgoKind = Literal["stop_market", "take_profit_market"]
WorkingType = Literal["CONTRACT_PRICE", "MARK_PRICE"]


class ProtectiveOrders:
    def __init__(self, client: ExchangeClient) -> None:
        self.client = client

    # ---- shared ------------------------------------------------------------------------------
    def _need(self, market: str) -> None:
        if self.client.market != market:
            raise FinalError(f"a {market} protective order on a {self.client.market} client")

    def _check_ids(self, *ids: str) -> None:
        rule = _FUTURES_ID if self.client.futures else _SPOT_ID
        for cid in ids:
            if not rule.match(cid):
                raise FinalError(f"client id {cid!r} breaks the venue's rule {rule.pattern} (not sent)", code=-1100)
        if len(set(ids)) != len(ids):
            raise FinalError(f"client ids must differ: {ids} (not sent)", code=-1100)

    def _mutate(self, fn: Any) -> Any:
        return self.client.call(fn, weight=1, safe=False, mutating=True)

    def _read(self, fn: Any, weight: int) -> Any:
        return self.client.call(fn, weight=weight)

    @staticmethod
    def _price_problems(rules: SymbolRules, name: str, price: Decimal) -> list[str]:
        out = []
        if price <= 0:
            out.append(f"{name} {fmt(price)} <= 0")
        if rules.min_price > 0 and price < rules.min_price:
            out.append(f"{name} {fmt(price)} < minPrice {fmt(rules.min_price)}")
        if rules.max_price > 0 and price > rules.max_price:
            out.append(f"{name} {fmt(price)} > maxPrice {fmt(rules.max_price)}")
        return out

    # ---- spot: preparing -----------------------------------------------------------------------
    def prepare_oco_exit(self, symbol: str, quantity: Decimal | str, take_profit_price: Decimal | str,
                         stop_price: Decimal | str, stop_limit_price: Decimal | str) -> PreparedProtective:
        """A SELL OCO closing a spot long: take profit (LIMIT_MAKER) above the market, stop
        (STOP_LOSS_LIMIT: trigger ``stop_price``, limit ``stop_limit_price`` <= trigger) below."""
        self._need("spot")
        rules = self.client.rules(symbol)
        qty = rules.round_qty(quantity, market_order=False)
        tp = rules.round_price(take_profit_price, mode="up")
        stop = rules.round_price(stop_price, mode="up")
        limit = rules.round_price(stop_limit_price, mode="down")
        problems = rules.problems(qty, tp, market_order=False) + rules.problems(qty, limit, market_order=False)
        problems += self._price_problems(rules, "stop price", stop)
        if not tp > stop:
            problems.append(f"take-profit price {fmt(tp)} must be above the stop price {fmt(stop)}")
        if limit > stop:
            problems.append(f"stop limit price {fmt(limit)} must not be above the stop price {fmt(stop)}")
        return PreparedProtective("spot", "oco", symbol, "SELL", qty, tp, stop, limit,
                                  problems=tuple(dict.fromkeys(problems)))

    def prepare_stop_limit(self, symbol: str, quantity: Decimal | str, stop_price: Decimal | str,
                           stop_limit_price: Decimal | str) -> PreparedProtective:
        """A lone SELL STOP_LOSS_LIMIT closing a spot long (no take-profit)."""
        self._need("spot")
        rules = self.client.rules(symbol)
        qty = rules.round_qty(quantity, market_order=False)
        stop = rules.round_price(stop_price, mode="up")
        limit = rules.round_price(stop_limit_price, mode="down")
        problems = rules.problems(qty, limit, market_order=False) + self._price_problems(rules, "stop price", stop)
        if limit > stop:
            problems.append(f"stop limit price {fmt(limit)} must not be above the stop price {fmt(stop)}")
        return PreparedProtective("spot", "stop_limit", symbol, "SELL", qty, None, stop, limit,
                                  problems=tuple(dict.fromkeys(problems)))

    # ---- spot: placing -------------------------------------------------------------------------
    def place_oco_exit(self, prepared: PreparedProtective, list_client_id: str, take_profit_client_id: str,
                       stop_client_id: str) -> ProtectiveOrder:
        """Send a prepared OCO exactly once (``POST /api/v3/orderList/oco``, weight 1, counts as 2
        orders). Returns the list with both legs (NEW; the stop leg waits for its trigger)."""
        if prepared.kind != "oco" or prepared.market != "spot":
            raise FinalError(f"place_oco_exit needs a prepared spot oco, got {prepared.market} {prepared.kind}")
        if not prepared.ok:
            raise FilterError("; ".join(prepared.problems), code=-1013)
        self._check_ids(list_client_id, take_profit_client_id, stop_client_id)
        p = prepared
        assert p.take_profit_price is not None and p.stop_price is not None and p.stop_limit_price is not None
        params = {
            "symbol": p.symbol, "side": p.side, "quantity": fmt(p.quantity), "listClientOrderId": list_client_id,
            "aboveType": "LIMIT_MAKER", "abovePrice": fmt(p.take_profit_price), "aboveClientOrderId": take_profit_client_id,
            "belowType": "STOP_LOSS_LIMIT", "belowStopPrice": fmt(p.stop_price), "belowPrice": fmt(p.stop_limit_price),
            "belowTimeInForce": "GTC", "belowClientOrderId": stop_client_id, "newOrderRespType": "RESULT",
        }
        log.info("sending spot OCO SELL %s qty=%s tp=%s stop=%s/%s list=%s", p.symbol, params["quantity"],
                 params["abovePrice"], params["belowStopPrice"], params["belowPrice"], list_client_id)
        resp = self._mutate(lambda: self.client.raw.create_oco_order(**params))
        return _from_list(resp, resp.get("orderReports") or [], {})

    def place_stop_limit(self, prepared: PreparedProtective, client_order_id: str) -> ProtectiveOrder:
        """Send a prepared lone STOP_LOSS_LIMIT exactly once (``POST /api/v3/order``)."""
        if prepared.kind != "stop_limit" or prepared.market != "spot":
            raise FinalError(f"place_stop_limit needs a prepared spot stop_limit, got {prepared.kind}")
        if not prepared.ok:
            raise FilterError("; ".join(prepared.problems), code=-1013)
        self._check_ids(client_order_id)
        p = prepared
        assert p.stop_price is not None and p.stop_limit_price is not None
        params = {"symbol": p.symbol, "side": p.side, "type": "STOP_LOSS_LIMIT", "timeInForce": "GTC",
                  "quantity": fmt(p.quantity), "price": fmt(p.stop_limit_price), "stopPrice": fmt(p.stop_price),
                  "newClientOrderId": client_order_id, "newOrderRespType": "RESULT"}
        log.info("sending spot STOP_LOSS_LIMIT SELL %s qty=%s stop=%s/%s id=%s", p.symbol, params["quantity"],
                 params["stopPrice"], params["price"], client_order_id)
        return _from_single(self._mutate(lambda: self.client.raw.create_order(**params)))

    # ---- spot: queries and cancels -------------------------------------------------------------
    def _leg_trades(self, symbol: str, order: dict[str, Any]) -> tuple[Any, ...]:
        if dec(order.get("executedQty", "0")) <= 0:
            return ()
        return tuple(self.client.trades(symbol, int(order["orderId"])))

    def _spot_order(self, symbol: str, **ref: Any) -> dict[str, Any] | None:
        try:
            return self._read(lambda: self.client.raw.get_order(symbol=symbol, **ref), 4)
        except NotFoundError:
            return None

    def _list(self, **ref: Any) -> dict[str, Any] | None:
        try:
            return self._read(lambda: self.client.raw.v3_get_order_list(**ref), 4)
        except NotFoundError:
            return None

    def _full_list(self, lst: dict[str, Any]) -> ProtectiveOrder:
        symbol = lst["symbol"]
        legs = [self._spot_order(symbol, orderId=int(o["orderId"])) for o in lst.get("orders", [])]
        found = [o for o in legs if o is not None]
        return _from_list(lst, found, {int(o["orderId"]): self._leg_trades(symbol, o) for o in found})

    def get_order_list(self, symbol: str, list_client_id: str) -> ProtectiveOrder | None:
        """The OCO with this listClientOrderId, both legs' statuses, executed quantities and the
        trades of a leg that traded; None if the venue has never seen it. Weight 4 + 8 (+5 a traded leg)."""
        self._need("spot")
        lst = self._list(origClientOrderId=list_client_id)
        if lst is None or lst.get("symbol") != symbol:
            return None
        return self._full_list(lst)

    def cancel_order_list(self, symbol: str, list_client_id: str) -> ProtectiveOrder | None:
        """Cancel the OCO (both legs) and return its final state; a stop leg that triggered (the
        list is then ALL_DONE and the venue refuses to cancel the list) is canceled as an order.
        None if the venue has never seen the list."""
        self._need("spot")
        try:
            self.client.call(lambda: self.client.raw.v3_delete_order_list(
                symbol=symbol, listClientOrderId=list_client_id), weight=1, safe=True)
        except NotFoundError:
            current = self.get_order_list(symbol, list_client_id)
            if current is None:
                return None
            for leg in current.legs:
                if leg.open:
                    self.client.cancel(symbol, leg.client_order_id)
        return self.get_order_list(symbol, list_client_id)

    def open_order_lists(self, symbol: str | None = None) -> list[ProtectiveOrder]:
        """The OCOs the venue still works: lists EXECUTING, and lists whose stop leg triggered and
        still works as an order (ALL_DONE with an open leg). ``openOrderList`` (6) + ``openOrders``
        (6, 80 for all symbols) + ``orderList`` (4) per triggered list."""
        self._need("spot")
        lists = self._read(lambda: self.client.raw.get_open_oco_orders(), 6)
        params = {"symbol": symbol} if symbol else {}
        orders = self._read(lambda: self.client.raw.get_open_orders(**params), 6 if symbol else 80)
        by_list: dict[int, list[dict[str, Any]]] = {}
        for o in orders:
            if int(o.get("orderListId", -1)) >= 0:
                by_list.setdefault(int(o["orderListId"]), []).append(o)
        out = []
        for lst in lists:
            if symbol is None or lst["symbol"] == symbol:
                out.append(self._full_list(lst))
                by_list.pop(int(lst["orderListId"]), None)
        for list_id in by_list:  # a triggered leg of a finished list
            lst = self._list(orderListId=list_id)
            if lst is not None:
                out.append(self._full_list(lst))
        return out

    def get_stop_limit(self, symbol: str, client_order_id: str) -> ProtectiveOrder | None:
        """A lone stop-limit by its client id (with its trades once it traded); None if never seen."""
        self._need("spot")
        o = self._spot_order(symbol, origClientOrderId=client_order_id)
        return None if o is None else _from_single(o, self._leg_trades(symbol, o))

    def cancel_stop_limit(self, symbol: str, client_order_id: str) -> ProtectiveOrder | None:
        """Cancel a lone stop-limit (triggered or not) and return its final state; None if never seen."""
        self._need("spot")
        self.client.cancel(symbol, client_order_id)  # None when already done: the query below says how
        return self.get_stop_limit(symbol, client_order_id)

    def open_stop_limits(self, symbol: str | None = None) -> list[ProtectiveOrder]:
        """Open lone (not in a list) SELL STOP_LOSS_LIMIT orders."""
        self._need("spot")
        params = {"symbol": symbol} if symbol else {}
        orders = self._read(lambda: self.client.raw.get_open_orders(**params), 6 if symbol else 80)
        return [_from_single(o) for o in orders
                if o.get("type") == "STOP_LOSS_LIMIT" and int(o.get("orderListId", -1)) < 0]

    # ---- USD-M: the Algo service ---------------------------------------------------------------
    def prepare_algo(self, kind: AlgoKind, symbol: str, side: str, trigger_price: Decimal | str,
                     quantity: Decimal | str | None = None, close_position: bool = False,
                     working_type: WorkingType = "CONTRACT_PRICE") -> PreparedProtective:
        """A STOP_MARKET (``kind="stop_market"``) or TAKE_PROFIT_MARKET closing a USD-M position:
        ``side`` SELL closes a long, BUY a short; either reduce-only ``quantity`` or ``close_position``
        (the whole position, whatever its size when it fires)."""
        self._need("futures")
        if side not in ("BUY", "SELL") or kind not in ("stop_market", "take_profit_market"):
            raise FinalError(f"bad protective order: kind {kind!r}, side {side!r}")
        if close_position == (quantity is not None):
            raise FinalError("give either a quantity or close_position=True (not both, not neither)")
        rules = self.client.rules(symbol)
        trigger = rules.round_price(trigger_price, side, mode="passive")
        problems = self._price_problems(rules, "trigger price", trigger)
        qty = Decimal(0)
        if quantity is not None:
            qty = rules.round_qty(quantity, market_order=True)
            problems += [p for p in rules.problems(qty, None, market_order=True, check_notional=False)]
        return PreparedProtective("futures", kind, symbol, side, qty, None, trigger, None, close_position,
                                  working_type, tuple(problems))

    def place_algo(self, prepared: PreparedProtective, client_algo_id: str) -> ProtectiveOrder:
        """Send a prepared USD-M conditional order exactly once (``POST /fapi/v1/algoOrder``)."""
        p = prepared
        if p.market != "futures" or p.kind not in ("stop_market", "take_profit_market"):
            raise FinalError(f"place_algo needs a prepared USD-M stop/take-profit, got {p.market} {p.kind}")
        if not p.ok:
            raise FilterError("; ".join(p.problems), code=-1013)
        self._check_ids(client_algo_id)
        assert p.stop_price is not None
        params: dict[str, Any] = {
            "symbol": p.symbol, "side": p.side, "type": "STOP_MARKET" if p.kind == "stop_market" else "TAKE_PROFIT_MARKET",
            "stopPrice": fmt(p.stop_price), "clientAlgoId": client_algo_id, "workingType": p.working_type,
        }
        if p.close_position:
            params["closePosition"] = "true"
        else:
            params.update(quantity=fmt(p.quantity), reduceOnly="true")
        log.info("sending USD-M %s %s %s trigger=%s %s id=%s", params["type"], p.side, p.symbol, params["stopPrice"],
                 "closePosition" if p.close_position else f"qty={params['quantity']}", client_algo_id)
        return _from_algo(self._mutate(lambda: self.client.raw.futures_create_order(**params)))

    def get_algo(self, symbol: str, client_algo_id: str) -> ProtectiveOrder | None:
        """The algo order with this clientAlgoId; once triggered, with the order it created
        (``ProtectiveLeg.actual_order_id``), its executed quantity and its trades. None if never seen."""
        self._need("futures")
        try:
            a = self._read(lambda: self.client.raw.futures_get_order(symbol=symbol, clientAlgoId=client_algo_id), 1)
        except NotFoundError:
            return None
        return self._resolve_algo(a)

    def _resolve_algo(self, a: dict[str, Any]) -> ProtectiveOrder:
        raw_id = str(a.get("actualOrderId") or "").strip()
        if raw_id in ("", "0"):
            return _from_algo(a)
        symbol, order_id = a["symbol"], int(raw_id)
        actual = self._read(lambda: self.client.raw.futures_get_order(symbol=symbol, orderId=order_id), 1)
        trades = tuple(self.client.trades(symbol, order_id)) if dec(actual.get("executedQty", "0")) > 0 else ()
        return _from_algo(a, actual, trades)

    def cancel_algo(self, symbol: str, client_algo_id: str) -> ProtectiveOrder | None:
        """Cancel an algo order and return its final state (a trigger that raced the cancel shows as
        WORKING/FILLED with its trades); None if the venue has never seen it."""
        self._need("futures")
        try:
            self.client.call(lambda: self.client.raw.futures_cancel_order(
                symbol=symbol, clientAlgoId=client_algo_id), weight=1, safe=True)
        except NotFoundError:
            pass  # done already (or never placed): the query says which
        return self.get_algo(symbol, client_algo_id)

    def open_algos(self, symbol: str | None = None) -> list[ProtectiveOrder]:
        """Open (not yet triggered) USD-M algo orders: ``openAlgoOrders`` (1 with a symbol, else 40)."""
        self._need("futures")
        params = {"symbol": symbol} if symbol else {}
        rows = self._read(lambda: self.client.raw.futures_get_open_orders(conditional=True, **params),
                          1 if symbol else 40)
        return [_from_algo(a) for a in rows]


# ---- JSON -> records ---------------------------------------------------------------------------
def _from_list(lst: dict[str, Any], reports: list[dict[str, Any]],
               trades: dict[int, tuple[Any, ...]]) -> ProtectiveOrder:
    legs = tuple(ProtectiveLeg.from_spot_order(o, trades.get(int(o["orderId"]), ())) for o in reports)
    side = str(reports[0].get("side", "SELL")) if reports else "SELL"
    return ProtectiveOrder("spot", "oco", lst["symbol"], side, str(lst.get("listClientOrderId", "")),
                           int(lst["orderListId"]), str(lst.get("listOrderStatus", "")),
                           tuple(sorted(legs, key=lambda x: x.role != "take_profit")))


def _from_single(o: dict[str, Any], trades: tuple[Any, ...] = ()) -> ProtectiveOrder:
    leg = ProtectiveLeg.from_spot_order(o, trades)
    return ProtectiveOrder("spot", "stop_limit", o["symbol"], str(o.get("side", "")), leg.client_order_id,
                           leg.order_id, leg.status, (leg,))


def _from_algo(a: dict[str, Any], actual: dict[str, Any] | None = None, trades: tuple[Any, ...] = ()) -> ProtectiveOrder:
    leg = ProtectiveLeg.from_algo(a, actual, trades)
    kind: Any = "stop_market" if leg.role == "stop" else "take_profit_market"
    return ProtectiveOrder("futures", kind, a["symbol"], str(a.get("side", "")), leg.client_order_id, leg.order_id,
                           leg.status, (leg,), close_position=bool(a.get("closePosition", False)),
                           reduce_only=bool(a.get("reduceOnly", False)))
