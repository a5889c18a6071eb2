"""Protective orders as the venue holds them: typed, Decimal records built from Binance's JSON.

A *protective order* is what keeps a live position's exit on the exchange itself:

* spot ``oco``: an order list (OCO) of a LIMIT_MAKER take-profit leg and a STOP_LOSS_LIMIT stop
  leg (``client_id`` = ``listClientOrderId``, ``venue_id`` = ``orderListId``);
* spot ``stop_limit``: a lone STOP_LOSS_LIMIT (``client_id`` = ``clientOrderId``);
* USD-M ``stop_market`` / ``take_profit_market``: an Algo-service conditional order
  (``client_id`` = ``clientAlgoId``, ``venue_id`` = ``algoId``); when it fires, the venue creates
  an ordinary order (``ProtectiveLeg.actual_order_id``) whose fills close the position.

``ProtectiveOrder.status`` folds the venue's statuses into one of ``STATUSES``:

    OPEN      resting, nothing triggered or executed
    WORKING   a leg went off (triggered, or partly filled) and its order still works at the venue
    FILLED    a leg filled completely (the position is closed by it)
    CANCELED  ended by a cancel (``executed_qty`` may still be > 0: book it)
    EXPIRED   ended otherwise without a full fill (a triggered market order found no liquidity or
              funds; an algo order REJECTED/EXPIRED, e.g. nothing left to close)

``executed_qty`` and ``trades`` (``exchange.client.VenueTrade``, as REST polling gives them) are
what must be booked as an exit.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from exchange.models import FINAL_STATUSES, VenueTrade
from exchange.rules import ZERO, dec

Kind = Literal["oco", "stop_limit", "stop_market", "take_profit_market"]
Role = Literal["take_profit", "stop"]
STATUSES = ("OPEN", "WORKING", "FILLED", "CANCELED", "EXPIRED")
_STOP_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "STOP", "STOP_MARKET")
_CONDITIONAL = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")


def _d(v: Any) -> Decimal:
    return ZERO if v is None or v == "" else dec(v)


@dataclass(frozen=True, slots=True)
class ProtectiveLeg:
    role: Role  # take_profit | stop
    client_order_id: str  # spot: the leg's clientOrderId; USD-M: the clientAlgoId
    order_id: int  # spot: orderId; USD-M: algoId
    order_type: str  # LIMIT_MAKER, STOP_LOSS_LIMIT, STOP_MARKET, TAKE_PROFIT_MARKET, ...
    status: str  # the venue's: spot order status (NEW ... EXPIRED); USD-M algoStatus (NEW ... FINISHED)
    quantity: Decimal  # origQty (USD-M closePosition: 0, the whole position)
    executed_qty: Decimal
    cum_quote: Decimal  # quote traded so far
    price: Decimal  # limit price (0 for a market leg)
    stop_price: Decimal  # trigger price (0 for LIMIT_MAKER)
    triggered: bool  # the trigger fired (a stop leg works as an order now / the algo created its order)
    open: bool  # the venue still works this leg (waiting for its trigger, resting, or its order is open)
    filled: bool  # the leg's order filled completely
    actual_order_id: int | None = None  # USD-M: the order the trigger created
    trades: tuple[VenueTrade, ...] = ()

    @property
    def avg_price(self) -> Decimal:
        return self.cum_quote / self.executed_qty if self.executed_qty > 0 else ZERO

    @classmethod
    def from_spot_order(cls, o: dict[str, Any], trades: tuple[VenueTrade, ...] = ()) -> "ProtectiveLeg":
        """A spot order object (GET order, orderReports, cancel reports)."""
        otype, status, executed = str(o.get("type", "")), str(o.get("status", "")), _d(o.get("executedQty"))
        working = o.get("isWorking")
        if working is None:  # placement/cancel reports: workingTime is -1 until a stop triggers
            working = int(o.get("workingTime", -1) or -1) > 0
        triggered = otype in _CONDITIONAL and (bool(working) or executed > 0)
        return cls(
            role="stop" if otype in _STOP_TYPES else "take_profit", client_order_id=str(o.get("clientOrderId", "")),
            order_id=int(o["orderId"]), order_type=otype, status=status, quantity=_d(o.get("origQty")),
            executed_qty=executed, cum_quote=_d(o.get("cummulativeQuoteQty")), price=_d(o.get("price")),
            stop_price=_d(o.get("stopPrice")), triggered=triggered, open=status not in FINAL_STATUSES,
            filled=status == "FILLED", trades=trades,
        )

    @classmethod
    def from_algo(cls, a: dict[str, Any], actual: dict[str, Any] | None = None,
                  trades: tuple[VenueTrade, ...] = ()) -> "ProtectiveLeg":
        """A USD-M algo order object, with the order its trigger created (futures_get_order) if any."""
        otype, status = str(a.get("orderType") or a.get("type", "")), str(a.get("algoStatus", ""))
        actual_id = int(a["actualOrderId"]) if str(a.get("actualOrderId") or "").strip() not in ("", "0") else None
        executed = _d(actual.get("executedQty")) if actual else ZERO
        cum = _d(actual.get("cumQuote")) if actual else ZERO
        if actual and cum == 0 and executed > 0:
            cum = _d(actual.get("avgPrice")) * executed
        actual_open = actual is not None and str(actual.get("status", "")) not in FINAL_STATUSES
        return cls(
            role="stop" if otype in _STOP_TYPES else "take_profit", client_order_id=str(a.get("clientAlgoId", "")),
            order_id=int(a["algoId"]), order_type=otype, status=status, quantity=_d(a.get("quantity")),
            executed_qty=executed, cum_quote=cum, price=_d(a.get("price")), stop_price=_d(a.get("triggerPrice")),
            triggered=status in ("TRIGGERING", "TRIGGERED", "FINISHED") or actual_id is not None,
            open=status in ("NEW", "TRIGGERING") or (status == "TRIGGERED" and (actual is None or actual_open)),
            filled=actual is not None and str(actual.get("status", "")) == "FILLED",
            actual_order_id=actual_id, trades=trades,
        )


@dataclass(frozen=True, slots=True)
class ProtectiveOrder:
    market: Literal["spot", "futures"]
    kind: Kind
    symbol: str
    side: str  # the exit's side: SELL closes a long, BUY a short
    client_id: str  # listClientOrderId (oco) / clientOrderId (stop_limit) / clientAlgoId (USD-M)
    venue_id: int  # orderListId / orderId / algoId
    venue_status: str  # oco: listOrderStatus (EXECUTING / ALL_DONE); else the single leg's status
    legs: tuple[ProtectiveLeg, ...]
    close_position: bool = False  # USD-M closePosition=true (the whole position, no quantity)
    reduce_only: bool = False  # USD-M

    @property
    def status(self) -> str:
        """One of STATUSES (module docstring)."""
        if any(leg.open for leg in self.legs):
            went_off = any(leg.triggered or leg.executed_qty > 0 for leg in self.legs)
            if went_off or (self.kind == "oco" and self.venue_status != "EXECUTING"):
                return "WORKING"
            return "OPEN"
        if any(leg.filled for leg in self.legs):
            return "FILLED"
        if any(leg.status == "CANCELED" for leg in self.legs):
            return "CANCELED"
        return "EXPIRED"

    @property
    def is_active(self) -> bool:
        """The venue still holds something of it (OPEN or WORKING): cancel it before replacing."""
        return self.status in ("OPEN", "WORKING")

    @property
    def executed_qty(self) -> Decimal:
        return sum((leg.executed_qty for leg in self.legs), ZERO)

    @property
    def executed_leg(self) -> ProtectiveLeg | None:
        """The leg that traded (at most one of an OCO can), or None."""
        return next((leg for leg in self.legs if leg.executed_qty > 0), None)

    @property
    def trades(self) -> tuple[VenueTrade, ...]:
        return tuple(t for leg in self.legs for t in leg.trades)

    def leg(self, role: Role) -> ProtectiveLeg | None:
        return next((leg for leg in self.legs if leg.role == role), None)


@dataclass(frozen=True, slots=True)
class PreparedProtective:
    """A protective order after rounding to the symbol's filters: what will be sent, or why not.

    Prices are ``None`` where the kind has none (a lone stop has no take-profit; a USD-M order no
    limit price). ``quantity`` is 0 with ``close_position``."""

    market: Literal["spot", "futures"]
    kind: Kind
    symbol: str
    side: str
    quantity: Decimal
    take_profit_price: Decimal | None
    stop_price: Decimal | None  # the trigger (USD-M: the triggerPrice of either kind)
    stop_limit_price: Decimal | None
    close_position: bool = False
    working_type: str = "CONTRACT_PRICE"
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems
