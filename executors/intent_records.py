"""What an order intent's record says, read and moved the same way by every executor on a venue
(``live``: market and limit orders, ``live_book``: a DCA ladder, ``protection``: stops resting on
the venue): the status moved by the order state machine, its fills as quantities and venue trades."""
from __future__ import annotations

import logging
from decimal import Decimal

from core.order_status import IllegalTransition, advance
from exchange.client import VenueTrade
from exchange.rules import ZERO, dec
from state.intents import IntentFill, IntentRecord

log = logging.getLogger("executors.live")


def advance_record(rec: IntentRecord, reported: str) -> bool:
    """Move the record's status by the order state machine (``core.order_status``: forward only; a
    stale report is ignored). A report contradicting a final outcome is logged, never applied.
    True when the status changed."""
    try:
        new = advance(rec.status, reported)
    except IllegalTransition as exc:
        log.error("order %s: %s; the record keeps %s", rec.client_order_id, exc, rec.status)
        return False
    changed = new != rec.status
    rec.status = new
    return changed


def fills_qty(rec: IntentRecord) -> Decimal:
    """The base quantity the record's fills add up to."""
    return sum((dec(f.qty) for f in rec.fills), ZERO)


def trade_of(rec: IntentRecord, f: IntentFill) -> VenueTrade:
    """A fill recorded on an intent, as the venue's trade."""
    return VenueTrade(rec.symbol, f.trade_id, rec.order_id or 0, rec.side, dec(f.price), dec(f.qty),
                      dec(f.commission), f.commission_asset, f.time)
