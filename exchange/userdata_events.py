"""User-data stream events as typed, Decimal records (reference/binance-api.md §8), parsed in one place.

* ``OrderEvent`` / ``parse_event``: a spot ``executionReport`` (``order_list_id`` = ``g`` for an
  OCO leg) or a USD-M ``ORDER_TRADE_UPDATE`` (also the order a triggered algo order created: its
  ``order_id`` is the ``AlgoUpdateEvent.actual_order_id``); ``OrderEvent.trade()`` gives the fill
  as ``exchange.client.VenueTrade``, the type REST polling produces.
* ``FundingEvent`` / ``parse_funding_event``: a USD-M ``ACCOUNT_UPDATE`` with reason FUNDING_FEE.
* ``ListStatusEvent`` / ``AlgoUpdateEvent`` (``parse_protective_event``): a spot ``listStatus``
  (an order list started or ended) and a USD-M ``ALGO_UPDATE`` (a conditional order changed status,
  e.g. TRIGGERED with the id of the order it created).

Every parser takes the raw event or the WS-API wrapper ``{"subscriptionId", "event": {...}}``, returns
None / [] for an event of another kind and raises KeyError/ValueError/TypeError on a malformed one.
``exchange.userdata`` re-exports all of it.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from exchange.models import VenueTrade
from exchange.rules import ZERO, dec


def _unwrap(msg: Any) -> dict[str, Any] | None:
    if not isinstance(msg, dict):
        return None
    return msg["event"] if isinstance(msg.get("event"), dict) else msg


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One order update from the user-data stream (spot executionReport / USD-M ORDER_TRADE_UPDATE)."""

    market: str  # "spot" | "futures"
    symbol: str
    client_order_id: str  # for a cancel on spot: the ORIGINAL client id (executionReport field C when x == CANCELED, else c)
    order_id: int
    side: str  # BUY | SELL
    order_type: str  # LIMIT, MARKET, ...
    status: str  # X: NEW PARTIALLY_FILLED FILLED CANCELED EXPIRED REJECTED ...
    exec_type: str  # x: NEW TRADE CANCELED EXPIRED ...
    orig_qty: Decimal
    price: Decimal
    cum_qty: Decimal  # z
    cum_quote: Decimal  # Z on spot; on futures ap*z
    last_qty: Decimal  # l
    last_price: Decimal  # L
    commission: Decimal  # n (0 when absent)
    commission_asset: str  # N ("" when absent)
    trade_id: int  # t (-1 when there is no trade)
    event_time: int  # E (ms)
    trade_time: int  # T (ms)
    reduce_only: bool  # futures R; False on spot
    realized_pnl: Decimal  # futures rp; 0 on spot
    order_list_id: int = -1  # spot g: the order list (OCO) of a leg; -1 for none and on futures
    stop_price: Decimal = ZERO  # spot P / futures sp (0 when none)
    is_working: bool = True  # spot w: False while a stop/take-profit order waits for its trigger

    @property
    def is_trade(self) -> bool:
        return self.exec_type == "TRADE" and self.last_qty > 0

    def trade(self) -> VenueTrade | None:
        """The fill this update reports, as REST would give it (None if it reports none)."""
        if not self.is_trade:
            return None
        return VenueTrade(self.symbol, self.trade_id, self.order_id, self.side, self.last_price, self.last_qty,
                          self.commission, self.commission_asset, self.trade_time, self.realized_pnl)


@dataclass(frozen=True, slots=True)
class FundingEvent:
    """A USD-M funding settlement on the user-data stream (ACCOUNT_UPDATE, reason FUNDING_FEE).

    Binance sends one per funded position: for a cross position only the balance (so no symbol;
    ask ``ExchangeClient.funding_income`` for the per-symbol amounts), for an isolated one the
    balance and that position."""

    asset: str
    amount: Decimal  # the balance change: > 0 received, < 0 paid (bc)
    wallet_balance: Decimal  # wb after the payment
    symbol: str | None  # the isolated position's symbol; None for cross
    event_time: int  # E (ms)
    funding_time: int  # T (ms)


def parse_funding_event(msg: dict[str, Any]) -> list[FundingEvent]:
    """The funding payments in an ACCOUNT_UPDATE with reason FUNDING_FEE (one per balance entry);
    [] for any other event. Raises KeyError/ValueError on a malformed funding event."""
    if not isinstance(msg, dict) or msg.get("e") != "ACCOUNT_UPDATE":
        return []
    a = msg.get("a")
    if not isinstance(a, dict) or a.get("m") != "FUNDING_FEE":
        return []
    positions = a.get("P") or []
    symbol = str(positions[0]["s"]) if len(positions) == 1 else None
    return [FundingEvent(str(b["a"]), _d(b.get("bc")), _d(b.get("wb")), symbol, _i(msg.get("E")), _i(msg.get("T")))
            for b in a.get("B") or []]


def _d(v: Any) -> Decimal:
    # Binance sends "" / null for some absent numbers (e.g. N, n before any fill).
    return ZERO if v is None or v == "" else dec(v)


def _i(v: Any, default: int = 0) -> int:
    return default if v is None or v == "" else int(v)


def parse_event(market: str, msg: dict[str, Any]) -> OrderEvent | None:
    """Accepts the raw event or the WS-API wrapper {"subscriptionId", "event": {...}}; None for other events
    (and for an order event of the other market). Raises KeyError/ValueError on a malformed order event."""
    ev = _unwrap(msg)
    if ev is None:
        return None
    kind = ev.get("e")
    if kind == "executionReport" and market == "spot":
        exec_type = str(ev.get("x", ""))
        # On a cancel Binance puts the cancel request's id in c and the order's own id in C.
        cid = ev.get("C") if exec_type == "CANCELED" and ev.get("C") else ev.get("c")
        return OrderEvent(
            market="spot", symbol=str(ev["s"]), client_order_id=str(cid or ""), order_id=int(ev["i"]),
            side=str(ev.get("S", "")), order_type=str(ev.get("o", "")), status=str(ev.get("X", "")),
            exec_type=exec_type, orig_qty=_d(ev.get("q")), price=_d(ev.get("p")), cum_qty=_d(ev.get("z")),
            cum_quote=_d(ev.get("Z")), last_qty=_d(ev.get("l")), last_price=_d(ev.get("L")),
            commission=_d(ev.get("n")), commission_asset=str(ev.get("N") or ""), trade_id=_i(ev.get("t"), -1),
            event_time=_i(ev.get("E")), trade_time=_i(ev.get("T")), reduce_only=False, realized_pnl=ZERO,
            order_list_id=_i(ev.get("g"), -1), stop_price=_d(ev.get("P")), is_working=bool(ev.get("w", True)),
        )
    if kind == "ORDER_TRADE_UPDATE" and market == "futures" and isinstance(ev.get("o"), dict):
        o = ev["o"]
        cum_qty, avg = _d(o.get("z")), _d(o.get("ap"))
        trade_id = _i(o.get("t"), -1)
        return OrderEvent(
            market="futures", symbol=str(o["s"]), client_order_id=str(o.get("c") or ""), order_id=int(o["i"]),
            side=str(o.get("S", "")), order_type=str(o.get("o", "")), status=str(o.get("X", "")),
            exec_type=str(o.get("x", "")), orig_qty=_d(o.get("q")), price=_d(o.get("p")), cum_qty=cum_qty,
            cum_quote=avg * cum_qty, last_qty=_d(o.get("l")), last_price=_d(o.get("L")),
            commission=_d(o.get("n")), commission_asset=str(o.get("N") or ""),
            # USD-M sends t=0 on updates without a fill; trade ids proper are positive
            trade_id=trade_id if trade_id > 0 else -1,
            event_time=_i(ev.get("E")), trade_time=_i(o.get("T"), _i(ev.get("T"))),
            reduce_only=bool(o.get("R", False)), realized_pnl=_d(o.get("rp")), stop_price=_d(o.get("sp")),
        )
    return None


@dataclass(frozen=True, slots=True)
class ListLeg:
    symbol: str
    order_id: int
    client_order_id: str


@dataclass(frozen=True, slots=True)
class ListStatusEvent:
    """A spot order list (OCO) changed (``listStatus``): EXEC_STARTED/EXECUTING when placed,
    ALL_DONE/ALL_DONE when it ended (a leg traded or triggered and the other expired, or a cancel).
    The legs' own updates come as ``OrderEvent`` with ``order_list_id`` = ``order_list_id``."""

    symbol: str
    order_list_id: int  # g
    list_client_order_id: str  # C
    contingency_type: str  # c: OCO
    list_status_type: str  # l: RESPONSE | EXEC_STARTED | UPDATED | ALL_DONE
    list_order_status: str  # L: EXECUTING | ALL_DONE | REJECT
    reject_reason: str  # r: NONE unless rejected
    transaction_time: int  # T (ms)
    event_time: int  # E (ms)
    legs: tuple[ListLeg, ...]  # O

    @property
    def done(self) -> bool:
        return self.list_order_status in ("ALL_DONE", "REJECT")


@dataclass(frozen=True, slots=True)
class AlgoUpdateEvent:
    """A USD-M conditional (Algo service) order changed (``ALGO_UPDATE``). Status ``X``: NEW,
    CANCELED, TRIGGERING, TRIGGERED (``actual_order_id`` is the order it created: its fills arrive
    as ``ORDER_TRADE_UPDATE`` of that order id), FINISHED, REJECTED, EXPIRED."""

    symbol: str
    algo_id: int  # aid
    client_algo_id: str  # caid
    order_type: str  # o: STOP_MARKET, TAKE_PROFIT_MARKET, ...
    side: str  # S
    status: str  # X
    quantity: Decimal  # q (0 with closePosition)
    trigger_price: Decimal  # tp
    actual_order_id: int | None  # ai, once triggered
    actual_avg_price: Decimal  # ap
    actual_executed_qty: Decimal  # aq
    close_position: bool  # cp
    reduce_only: bool  # R
    event_time: int  # E (ms)
    transaction_time: int  # T (ms)

    @property
    def done(self) -> bool:
        return self.status in ("CANCELED", "FINISHED", "REJECTED", "EXPIRED")


def parse_protective_event(msg: Any) -> ListStatusEvent | AlgoUpdateEvent | None:
    """A ``listStatus`` (spot) or ``ALGO_UPDATE`` (USD-M) event; None for any other event."""
    ev = _unwrap(msg)
    if ev is None:
        return None
    kind = ev.get("e")
    if kind == "listStatus":
        legs = tuple(ListLeg(str(o["s"]), int(o["i"]), str(o.get("c") or "")) for o in ev.get("O") or [])
        return ListStatusEvent(
            symbol=str(ev["s"]), order_list_id=int(ev["g"]), list_client_order_id=str(ev.get("C") or ""),
            contingency_type=str(ev.get("c") or ""), list_status_type=str(ev.get("l") or ""),
            list_order_status=str(ev.get("L") or ""), reject_reason=str(ev.get("r") or "NONE"),
            transaction_time=_i(ev.get("T")), event_time=_i(ev.get("E")), legs=legs,
        )
    if kind == "ALGO_UPDATE" and isinstance(ev.get("o"), dict):
        o = ev["o"]
        ai = str(o.get("ai") or "").strip()
        return AlgoUpdateEvent(
            symbol=str(o["s"]), algo_id=int(o["aid"]), client_algo_id=str(o.get("caid") or ""),
            order_type=str(o.get("o") or ""), side=str(o.get("S") or ""), status=str(o.get("X") or ""),
            quantity=_d(o.get("q")), trigger_price=_d(o.get("tp")),
            actual_order_id=int(ai) if ai not in ("", "0") else None, actual_avg_price=_d(o.get("ap")),
            actual_executed_qty=_d(o.get("aq")), close_position=bool(o.get("cp", False)),
            reduce_only=bool(o.get("R", False)), event_time=_i(ev.get("E")), transaction_time=_i(ev.get("T")),
        )
    return None
