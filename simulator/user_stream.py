"""User-data streams: spot over the WebSocket API, USD-M over a listenKey socket (§0.2, §0.3, §8).

* Spot: ``/ws-api/v3``. python-binance 1.0.37 sends ``userDataStream.subscribe.signature`` with
  ``apiKey``, ``timestamp`` and ``signature`` = HMAC(urlencode(sorted params)); the answer is
  ``{"id", "status": 200, "result": {"subscriptionId": N}}`` and events then arrive as
  ``{"subscriptionId": N, "event": {...}}``: ``executionReport`` for every order update (``g`` =
  the order list of a leg, else -1), ``outboundAccountPosition`` after each fill, and
  ``listStatus`` when an order list (OCO) starts and when it ends. Also answered: ``ping``, ``time``,
  ``userDataStream.unsubscribe``. Other WS-API methods (order placement etc.) get an error.
* USD-M: ``/private/ws?listenKey=<key>`` (or ``/ws/<key>``) with the key from
  ``POST /fapi/v1/listenKey``; raw ``ORDER_TRADE_UPDATE`` events, then ``ACCOUNT_UPDATE``
  (reason ORDER) after fills, ``ALGO_UPDATE`` for conditional orders, and one ``ACCOUNT_UPDATE``
  (reason FUNDING_FEE) per funded position at each funding time: the balance only (``bc`` = the
  fee) for a cross position, the balance and that position for an isolated one, as Binance
  documents. An unknown or expired key is refused (HTTP 400). Not sent: MARGIN_CALL,
  listenKeyExpired, TRADE_LITE.
"""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from aiohttp import WSMsgType, web

from simulator import auth, errors
from simulator.algo import AlgoOrder
from simulator.errors import ApiError
from simulator.filters import fmt8
from simulator.funding import FundingPayment, Settlement
from simulator.futures import FuturesOrder, FuturesTrade, Position
from simulator.matching import SpotOrder, TradeRecord
from simulator.order_lists import OrderList
from simulator.state import SimExchange

log = logging.getLogger(__name__)

QUEUE_MAX = 1000
ZERO = Decimal(0)


@dataclass(eq=False)
class _Conn:
    ws: web.WebSocketResponse
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(QUEUE_MAX))
    subscriptions: set[int] = field(default_factory=set)

    def push(self, payload: object) -> None:
        if self.queue.full():
            try:
                self.queue.get_nowait()
            except asyncio.QueueEmpty:
                pass
        self.queue.put_nowait(json.dumps(payload, separators=(",", ":")))


def _exec_type(status: str, trade: object | None) -> str:
    if trade is not None:
        return "TRADE"
    return {"CANCELED": "CANCELED", "EXPIRED": "EXPIRED", "REJECTED": "REJECTED"}.get(status, "NEW")


class UserStreams:
    def __init__(self, ex: SimExchange) -> None:
        self.ex = ex
        self.spot_conns: set[_Conn] = set()
        self.futures_conns: set[_Conn] = set()
        self._next_subscription = 0
        ex.engine.listeners.append(self.on_spot)
        ex.order_lists.listeners.append(self.on_order_list)
        ex.futures.listeners.append(self.on_futures)
        ex.algo.listeners.append(self.on_algo)
        ex.funding.listeners.append(self.on_funding)

    # -- spot events -----------------------------------------------------------------------------

    def execution_report(self, o: SpotOrder, t: TradeRecord | None) -> dict[str, object]:
        now = self.ex.now_ms()
        canceled = o.status == "CANCELED" and t is None
        return {
            "e": "executionReport", "E": now, "s": o.symbol,
            "c": (o.cancel_client_id or o.client_order_id) if canceled else o.client_order_id,
            "S": o.side, "o": o.type, "f": o.time_in_force, "q": fmt8(o.orig_qty), "p": fmt8(o.price),
            "P": fmt8(o.stop_price), "F": fmt8(ZERO), "g": o.order_list_id, "C": o.client_order_id if canceled else "",
            "x": _exec_type(o.status, t), "X": o.status, "r": "NONE", "i": o.order_id,
            "l": fmt8(t.qty if t else ZERO), "z": fmt8(o.executed_qty), "L": fmt8(t.price if t else ZERO),
            "n": fmt8(t.commission if t else ZERO), "N": t.commission_asset if t else None,
            "T": t.time if t else o.update_time, "t": t.id if t else -1, "I": 0,
            "w": o.is_open and o.type != "MARKET" and not o.pending, "m": bool(t and t.is_maker),
            "M": False, "O": o.time, "Z": fmt8(o.cum_quote), "Y": fmt8(t.quote_qty if t else ZERO),
            "Q": fmt8(o.orig_quote_qty), "W": o.working_time, "V": "EXPIRE_MAKER",
        }

    def account_position(self, assets: list[str]) -> dict[str, object]:
        acct = self.ex.account
        return {
            "e": "outboundAccountPosition", "E": self.ex.now_ms(), "u": acct.update_time,
            "B": [{"a": a, "f": fmt8(acct.get(a).free), "l": fmt8(acct.get(a).locked)} for a in assets],
        }

    def on_spot(self, order: SpotOrder, trade: TradeRecord | None) -> None:
        if not self.spot_conns:
            return
        events = [self.execution_report(order, trade)]
        spec = self.ex.specs[order.symbol]
        if trade is not None or order.status in ("NEW", "CANCELED", "EXPIRED") and order.type != "MARKET":
            events.append(self.account_position([spec.base_asset, spec.quote_asset]))
        self._push_spot(events)

    def _push_spot(self, events: list[dict[str, object]]) -> None:
        for conn in list(self.spot_conns):
            for sub in conn.subscriptions:
                for ev in events:
                    conn.push({"subscriptionId": sub, "event": ev})

    def list_status(self, lst: OrderList) -> dict[str, object]:
        legs = self.ex.order_lists.legs(lst)
        return {
            "e": "listStatus", "E": self.ex.now_ms(), "s": lst.symbol, "g": lst.order_list_id,
            "c": lst.contingency_type, "l": lst.list_status_type, "L": lst.list_order_status, "r": "NONE",
            "C": lst.list_client_order_id, "T": lst.transaction_time,
            "O": [{"s": o.symbol, "i": o.order_id, "c": o.client_order_id} for o in legs],
        }

    def on_order_list(self, lst: OrderList) -> None:
        if self.spot_conns:
            self._push_spot([self.list_status(lst)])

    # -- futures events --------------------------------------------------------------------------

    def order_trade_update(self, o: FuturesOrder, t: FuturesTrade | None) -> dict[str, object]:
        f, spec = self.ex.futures, self.ex.futures_specs[o.symbol]
        now = self.ex.now_ms()
        bids, asks = f.open_notional(o.symbol)
        return {
            "e": "ORDER_TRADE_UPDATE", "E": now, "T": t.time if t else o.update_time,
            "o": {
                "s": o.symbol, "c": o.client_order_id, "S": o.side, "o": o.type, "f": o.time_in_force,
                "q": spec.fmt_qty(o.orig_qty), "p": spec.fmt_price(o.price), "ap": fmt8(o.avg_price), "sp": "0",
                "x": "CALCULATED" if o.type == "LIQUIDATION" else _exec_type(o.status, t), "X": o.status,
                "i": o.order_id, "l": spec.fmt_qty(t.qty if t else ZERO), "z": spec.fmt_qty(o.executed_qty),
                "L": spec.fmt_price(t.price if t else ZERO), "N": "USDT", "n": fmt8(t.commission if t else ZERO),
                "T": t.time if t else o.update_time, "t": t.id if t else 0, "b": fmt8(bids), "a": fmt8(asks),
                "m": bool(t and t.maker), "R": o.reduce_only, "wt": "CONTRACT_PRICE", "ot": o.type, "ps": "BOTH",
                "cp": False, "rp": fmt8(t.realized_pnl if t else ZERO), "pP": False, "si": 0, "ss": 0,
                "V": "EXPIRE_MAKER", "pm": "NONE", "gtd": 0,
            },
        }

    def _balance(self) -> dict[str, object]:
        f = self.ex.futures
        isolated = sum((p.isolated_wallet for p in f.positions.values() if p.margin_type == "ISOLATED"), ZERO)
        return {"a": "USDT", "wb": fmt8(f.wallet), "cw": fmt8(f.wallet - isolated), "bc": "0"}

    def _position(self, p: Position) -> dict[str, object]:
        f = self.ex.futures
        realized = sum((t.realized_pnl for t in f.trades[p.symbol]), ZERO)
        return {
            "s": p.symbol, "pa": self.ex.futures_specs[p.symbol].fmt_qty(p.amt), "ep": fmt8(p.entry),
            "bep": fmt8(p.entry), "cr": fmt8(realized), "up": fmt8(f.upnl(p)),
            "mt": "isolated" if p.margin_type == "ISOLATED" else "cross",
            "iw": fmt8(p.isolated_wallet), "ps": "BOTH",
        }

    def account_update(self, symbol: str) -> dict[str, object]:
        now = self.ex.now_ms()
        return {"e": "ACCOUNT_UPDATE", "E": now, "T": now,
                "a": {"m": "ORDER", "B": [self._balance()], "P": [self._position(self.ex.futures.positions[symbol])]}}

    def funding_update(self, pay: FundingPayment) -> dict[str, object]:
        """Binance: a cross position's funding pushes only the balance; an isolated one adds that position."""
        p = self.ex.futures.positions[pay.symbol]
        return {"e": "ACCOUNT_UPDATE", "E": self.ex.now_ms(), "T": pay.income.time,
                "a": {"m": "FUNDING_FEE", "B": [{"a": "USDT", "wb": fmt8(pay.wallet_after),
                                                 "cw": fmt8(pay.cross_wallet_after), "bc": fmt8(pay.income.amount)}],
                      "P": [self._position(p)] if pay.isolated else []}}

    def on_funding(self, settlement: Settlement) -> None:
        if not self.futures_conns:
            return
        events = [self.funding_update(pay) for pay in settlement.payments]
        for conn in list(self.futures_conns):
            for ev in events:
                conn.push(ev)

    def on_futures(self, order: FuturesOrder, trade: FuturesTrade | None) -> None:
        if not self.futures_conns:
            return
        events = [self.order_trade_update(order, trade)]
        if trade is not None:
            events.append(self.account_update(order.symbol))
        for conn in list(self.futures_conns):
            for ev in events:
                conn.push(ev)

    def on_algo(self, a: AlgoOrder) -> None:
        if not self.futures_conns:
            return
        spec = self.ex.futures_specs[a.symbol]
        actual = self.ex.futures.orders.get((a.symbol, a.actual_order_id)) if a.actual_order_id else None
        now = self.ex.now_ms()
        event = {
            "e": "ALGO_UPDATE", "T": now, "E": now,
            "o": {
                "caid": a.client_algo_id, "aid": a.algo_id, "at": "CONDITIONAL", "o": a.type, "s": a.symbol,
                "S": a.side, "ps": "BOTH", "f": a.time_in_force, "q": spec.fmt_qty(a.quantity), "X": a.status,
                "ai": str(a.actual_order_id or ""), "ap": fmt8(actual.avg_price) if actual else "0",
                "aq": spec.fmt_qty(actual.executed_qty) if actual else "0", "act": actual.type if actual else "",
                "tp": spec.fmt_price(a.trigger_price), "p": spec.fmt_price(a.price), "V": "EXPIRE_MAKER",
                "wt": a.working_type, "pm": "NONE", "cp": a.close_position, "pP": a.price_protect,
                "R": a.reduce_only, "tt": a.trigger_time, "gtd": 0,
            },
        }
        for conn in list(self.futures_conns):
            conn.push(event)

    # -- sockets ---------------------------------------------------------------------------------

    async def _serve(self, request: web.Request, conn_set: set[_Conn], ws_api: bool) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20.0)
        await ws.prepare(request)
        conn = _Conn(ws)
        conn_set.add(conn)
        writer = asyncio.create_task(self._writer(conn))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT and ws_api:
                    self._ws_api_request(conn, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            conn_set.discard(conn)
            writer.cancel()
        return ws

    async def _writer(self, conn: _Conn) -> None:
        try:
            while True:
                await conn.ws.send_str(await conn.queue.get())
        except (asyncio.CancelledError, ConnectionError, RuntimeError):
            pass

    async def futures_handler(self, request: web.Request, listen_key: str) -> web.StreamResponse:
        if not self.ex.listen_keys.valid(listen_key, self.ex.now_ms()):
            raise web.HTTPBadRequest(text="Invalid listenKey")
        return await self._serve(request, self.futures_conns, ws_api=False)

    async def ws_api_handler(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, self.spot_conns, ws_api=True)

    def _ws_api_request(self, conn: _Conn, text: str) -> None:
        try:
            msg = json.loads(text)
            rid, method, params = msg.get("id"), msg.get("method"), msg.get("params") or {}
        except (ValueError, AttributeError):
            conn.push({"id": None, "status": 400, "error": {"code": -1102, "msg": "Malformed request."}})
            return
        if not isinstance(params, dict):
            conn.push({"id": rid, "status": 400, "error": {"code": -1102, "msg": "Malformed request."}})
            return
        try:
            result = self._dispatch(conn, str(method), params)
            conn.push({"id": rid, "status": 200, "result": result,
                       "rateLimits": []})
        except ApiError as err:
            conn.push({"id": rid, "status": err.status, "error": err.body()})
        except Exception:  # noqa: BLE001 - a bug answers -1000 (as REST does) instead of killing the socket
            log.exception("internal error on WS-API %s", method)
            err = errors.unknown_error()
            conn.push({"id": rid, "status": err.status, "error": err.body()})

    def _dispatch(self, conn: _Conn, method: str, params: dict[str, Any]) -> object:
        if method == "ping":
            return {}
        if method == "time":
            return {"serverTime": self.ex.now_ms()}
        if method == "userDataStream.subscribe.signature":
            self._check_ws_signature(params)
            sub = self._next_subscription
            self._next_subscription += 1
            conn.subscriptions.add(sub)
            return {"subscriptionId": sub}
        if method == "userDataStream.unsubscribe":
            sid = params.get("subscriptionId")
            if sid is not None:
                try:
                    sid = int(sid)
                except (TypeError, ValueError, OverflowError):
                    raise errors.illegal_chars_int("subscriptionId") from None
            ended = set(conn.subscriptions) if sid is None else {sid} & conn.subscriptions
            conn.subscriptions -= ended
            for sub in sorted(ended):  # Binance ends each stopped stream with eventStreamTerminated
                conn.push({"subscriptionId": sub, "event": {"e": "eventStreamTerminated", "E": self.ex.now_ms()}})
            return {}
        raise ApiError(-1000, f"WS-API method {method!r} is not implemented by the local simulator.", 400)

    def _check_ws_signature(self, params: dict[str, Any]) -> None:
        secret = self.ex.keys.secret_for(params.get("apiKey"))
        signature = params.get("signature")
        auth.check_request_time(params, self.ex.now_ms())  # the REST rule and errors (-1100/-1102/-1131/-1021)
        payload = urlencode(sorted((k, v) for k, v in params.items() if k != "signature"))
        if not auth.verify_signature(secret, payload, signature):
            raise errors.bad_signature()

    async def close_all(self) -> None:
        for conn in list(self.spot_conns | self.futures_conns):
            await conn.ws.close()
