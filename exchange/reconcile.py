"""Reconciliation: what the venue says vs what the bot believes, as a drift report.

Compared:
  * spot balances (free + locked) of the assets the bot tracks vs its expected holdings,
  * USD-M positions vs the expected signed amounts (any venue position on a tracked symbol
    the bot does not expect is drift too),
  * open orders on the tracked symbols vs the bot's known client order ids (an open order the
    bot never recorded = placed behind its back; a known open intent the venue no longer lists
    as open = finished without the bot noticing).
The caller (the worker) decides what drift means: pause, audit, banner (adopt / ignore / flatten).
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from core.order_status import RESTING
from exchange.client import Balance, ExchangeClient, FuturesPosition, VenueOrder
from exchange.rules import dec, fmt


@dataclass(frozen=True, slots=True)
class Drift:
    kind: str  # balance | position | unknown_open_order | intent_not_open
    key: str  # asset, symbol or client order id
    expected: str
    actual: str
    detail: str


@dataclass(slots=True)
class ReconcileReport:
    venue: str
    market: str
    time_ms: int
    drifts: list[Drift] = field(default_factory=list)
    # What the venue showed while comparing (for the Live tab, without asking again).
    balances: dict[str, Balance] = field(default_factory=dict)
    positions: list[FuturesPosition] = field(default_factory=list)
    open_orders: list[VenueOrder] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.drifts

    def summary(self) -> str:
        return "no drift" if self.ok else "; ".join(d.detail for d in self.drifts)


def reconcile(client: ExchangeClient, symbols: Iterable[str], expected_holdings: Mapping[str, Decimal] | None = None,
              expected_positions: Mapping[str, Decimal] | None = None,
              intents: Mapping[str, tuple[str, str]] | None = None,
              tolerance: Decimal | str = "0", balances: Mapping[str, Balance] | None = None) -> ReconcileReport:
    """One comparison. `expected_holdings`: asset -> total (spot); `expected_positions`: symbol ->
    signed amount (futures; missing = flat); `intents`: the bot's recorded orders, client order id ->
    (symbol, status) (any status);
    `tolerance`: absolute difference ignored (dust, rounding); `balances`: spot balances the caller
    has just fetched (else they are fetched here)."""
    tol = dec(tolerance)
    syms = list(symbols)
    rep = ReconcileReport(client.urls.venue.value, client.market, int(time.time() * 1000))

    if not client.futures and (expected_holdings or balances is not None):
        bals = dict(balances) if balances is not None else client.balances()
        rep.balances = bals
        for asset, want in (expected_holdings or {}).items():
            have = bals[asset].total if asset in bals else Decimal(0)
            if abs(have - dec(want)) > tol:
                rep.drifts.append(Drift("balance", asset, fmt(want), fmt(have),
                                        f"{asset}: venue holds {fmt(have)}, bot expects {fmt(want)}"))

    if client.futures:
        expected = {s: dec(v) for s, v in (expected_positions or {}).items()}
        rep.positions = client.positions()
        actual = {p.symbol: p.amount for p in rep.positions}
        for sym in sorted(set(syms) | set(expected)):
            want, have = expected.get(sym, Decimal(0)), actual.get(sym, Decimal(0))
            if abs(have - want) > tol:
                rep.drifts.append(Drift("position", sym, fmt(want), fmt(have),
                                        f"{sym}: venue position {fmt(have)}, bot expects {fmt(want)}"))

    known = dict(intents or {})
    venue_open: set[str] = set()
    for sym in syms:
        for o in client.open_orders(sym):
            rep.open_orders.append(o)
            venue_open.add(o.client_order_id)
            if o.client_order_id not in known:
                rep.drifts.append(Drift("unknown_open_order", o.client_order_id, "", o.status,
                                        f"open order {o.client_order_id} ({o.side} {fmt(o.orig_qty)} {sym} {o.type}) "
                                        "was not placed by this bot"))
    for coid, (symbol, status) in known.items():
        if symbol in syms and status in RESTING and coid not in venue_open:
            rep.drifts.append(Drift("intent_not_open", coid, status, "not open",
                                    f"order {coid} is {status} for the bot but not open on the venue"))
    return rep
