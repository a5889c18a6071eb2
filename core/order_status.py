"""The life of a live order (its intent record) as an explicit state machine, as nautilus_trader's
orders are: a transition table, and one function every writer of a status goes through.

    INTENT ──▶ NEW ──▶ PARTIALLY_FILLED ──▶ FILLED
       │        │             │
       │        └─────────────┴──▶ CANCELED / EXPIRED
       └──▶ REJECTED / EXPIRED (never placed) / any venue state (answered at once)

A status reported by the venue (an answer, a query, a user-data event) moves the record forward
only: the user-data stream and a REST answer may arrive in either order, so a report of an earlier
state is *stale* and leaves the record as it is. A report that contradicts a final state (a FILLED
order reported CANCELED) or a status the table does not know is an ``IllegalTransition``: the
caller keeps the record and says so, it never overwrites a final outcome.
"""
from __future__ import annotations

INTENT, NEW, PARTIALLY_FILLED = "INTENT", "NEW", "PARTIALLY_FILLED"
FILLED, CANCELED, REJECTED, EXPIRED = "FILLED", "CANCELED", "REJECTED", "EXPIRED"
FINAL = frozenset({FILLED, CANCELED, REJECTED, EXPIRED})
RESTING = frozenset({NEW, PARTIALLY_FILLED})

TRANSITIONS: dict[str, frozenset[str]] = {
    INTENT: frozenset({NEW, PARTIALLY_FILLED, FILLED, CANCELED, REJECTED, EXPIRED}),
    NEW: frozenset({PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED}),
    PARTIALLY_FILLED: frozenset({PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED}),
    FILLED: frozenset(), CANCELED: frozenset(), REJECTED: frozenset(), EXPIRED: frozenset(),
}
_RANK = {INTENT: 0, NEW: 1, PARTIALLY_FILLED: 2, FILLED: 3, CANCELED: 3, REJECTED: 3, EXPIRED: 3}
# Binance's other names for these states
VENUE_ALIASES = {"EXPIRED_IN_MATCH": EXPIRED, "PENDING_CANCEL": NEW, "PENDING_NEW": NEW}


class IllegalTransition(ValueError):
    """A reported status that contradicts the record (or that the table does not know)."""


def normalise(status: str) -> str:
    return VENUE_ALIASES.get(status, status)


def advance(current: str, reported: str) -> str:
    """The record's status once ``reported`` is applied: the new one when the table allows the move,
    ``current`` when the report is stale (an earlier or equal state). Raises IllegalTransition for
    a contradiction (a final state reported as another) or an unknown status."""
    new = normalise(reported)
    if new not in TRANSITIONS or current not in TRANSITIONS:
        raise IllegalTransition(f"unknown order status {reported!r} (record {current})")
    if new == current or new in TRANSITIONS[current]:
        return new
    if current in FINAL and new in FINAL:
        raise IllegalTransition(f"order already {current}, reported {new}")
    if _RANK[new] <= _RANK[current]:
        return current  # stale: an earlier state arriving late
    raise IllegalTransition(f"{current} -> {new} is not a transition")
