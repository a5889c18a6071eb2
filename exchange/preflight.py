"""Pre-flight checks before a live bot starts; a failed check refuses the start with its reason.

Checks, in order (later ones are skipped when the venue is unreachable or the key is refused):
  reachable     ping answers
  clock_skew    |venue time - local time| (midpoint of the round trip) <= max_skew_ms (-1021 otherwise)
  api_key       a signed account call is accepted
  can_trade     the account may trade
  symbol        the symbol exists and is TRADING
  balance       free quote (spot) / available margin (futures) >= the bot's configured maximum
  positions     informational: open futures positions (pass, listed)
  open_orders   informational: open orders on the symbol (pass, listed)
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable

from exchange.client import ExchangeClient, FuturesPosition, VenueOrder
from exchange.errors import AuthError, ExchangeError
from exchange.rules import dec, fmt


@dataclass(slots=True)
class Check:
    name: str
    ok: bool
    reason: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class PreflightReport:
    venue: str
    market: str
    symbol: str
    checks: list[Check] = field(default_factory=list)
    positions: list[FuturesPosition] = field(default_factory=list)
    open_orders: list[VenueOrder] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def summary(self) -> str:
        """One line per check, for the log and the dashboard (no secrets: none are known here)."""
        return "\n".join(f"[{'ok' if c.ok else 'FAIL'}] {c.name}: {c.reason}" for c in self.checks)


def run_preflight(client: ExchangeClient, symbol: str, required_quote: Decimal | float | str,
                  max_skew_ms: int = 1000, wall_ms: Callable[[], int] = lambda: int(time.time() * 1000)
                  ) -> PreflightReport:
    rep = PreflightReport(client.urls.venue.value, client.market, symbol)
    add = rep.checks.append

    def skip(*names: str, why: str) -> PreflightReport:
        for n in names:
            add(Check(n, False, f"skipped: {why}"))
        return rep

    rest = ("clock_skew", "api_key", "can_trade", "symbol", "balance", "positions", "open_orders")
    try:
        client.ping()
        add(Check("reachable", True, f"{client.urls.venue.value} {client.market} answers"))
    except ExchangeError as e:
        add(Check("reachable", False, f"venue unreachable: {e}"))
        return skip(*rest, why="venue unreachable")

    try:
        t0 = wall_ms()
        server = client.server_time()
        t1 = wall_ms()
        skew = server - (t0 + t1) // 2
        ok = abs(skew) <= max_skew_ms
        add(Check("clock_skew", ok, f"local clock {'behind' if skew > 0 else 'ahead of'} the venue by {abs(skew)} ms"
                  + ("" if ok else f" (> {max_skew_ms} ms: signed requests would fail with -1021)"),
                  {"skew_ms": skew, "rtt_ms": t1 - t0}))
    except ExchangeError as e:
        add(Check("clock_skew", False, f"server time unavailable: {e}"))

    try:
        account = client.account()
        add(Check("api_key", True, "API key accepted"))
    except AuthError as e:
        add(Check("api_key", False, f"API key refused: {e.message} (code {e.code})"))
        return skip("can_trade", "symbol", "balance", "positions", "open_orders", why="API key refused")
    except ExchangeError as e:
        add(Check("api_key", False, f"account unavailable: {e}"))
        return skip("can_trade", "symbol", "balance", "positions", "open_orders", why="account unavailable")
    can = bool(account.get("canTrade", False))
    add(Check("can_trade", can, "account may trade" if can else "the account or key is not allowed to trade"))

    quote = ""
    try:
        rules = client.rules(symbol)
        quote = rules.quote_asset
        add(Check("symbol", rules.trading, f"{symbol} is {rules.status}", {"status": rules.status}))
    except ExchangeError as e:
        add(Check("symbol", False, f"{symbol}: {e}"))

    need = dec(required_quote)
    try:
        bal = client.balances().get(quote or "USDT")
        have = bal.free if bal is not None else Decimal(0)
        what = "available margin" if client.futures else "free balance"
        ok = have >= need
        add(Check("balance", ok,
                  f"{what} {fmt(have)} {quote or 'USDT'} {'>=' if ok else '<'} configured maximum {fmt(need)}",
                  {"have": fmt(have), "need": fmt(need), "asset": quote or "USDT"}))
    except ExchangeError as e:
        add(Check("balance", False, f"balances unavailable: {e}"))

    try:
        rep.positions = client.positions()
        listed = ", ".join(f"{p.symbol} {fmt(p.amount)} @ {fmt(p.entry_price)}" for p in rep.positions) or "none"
        add(Check("positions", True, f"open positions: {listed}", {"count": len(rep.positions)}))
    except ExchangeError as e:
        add(Check("positions", False, f"positions unavailable: {e}"))
    try:
        rep.open_orders = client.open_orders(symbol)
        listed = ", ".join(f"{o.client_order_id} {o.side} {fmt(o.orig_qty)} {o.type}" for o in rep.open_orders) or "none"
        add(Check("open_orders", True, f"open orders on {symbol}: {listed}", {"count": len(rep.open_orders)}))
    except ExchangeError as e:
        add(Check("open_orders", False, f"open orders unavailable: {e}"))
    return rep
