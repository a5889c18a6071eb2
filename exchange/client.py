"""A thin typed wrapper over python-binance's sync Client, for one market (spot or USD-M futures).

Decimal in and out; exchangeInfo cached; quantities/prices rounded to the symbol's filters and
formatted without exponents; the notional checked before sending; every call through the rate
limiter; reads retried with backoff, order placement never (see exchange/limiter.py).

The API secret is handed to python-binance and kept nowhere else; `repr()` never shows it.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from decimal import Decimal
from typing import Any, Callable

from binance.client import Client

from core.types import Candle
from exchange.errors import ExchangeError, FilterError, FinalError, NotFoundError
from exchange.limiter import RateLimiter, RetryPolicy, call_with_retry
from exchange.models import (  # noqa: F401  (re-exported: callers import the records from here)
    FINAL_STATUSES, Balance, FundingIncome, FuturesPosition, PreparedOrder, Side, VenueOrder, VenueTrade,
)
from exchange.rules import Market, SymbolRules, dec, fmt, parse_exchange_info
from exchange.venues import VenueUrls, client_class

log = logging.getLogger(__name__)


class ExchangeClient:
    """One venue, one market. Thread-safe for the worker's trading and reconciliation threads
    (python-binance's Client keeps the last response on the instance, so calls are serialised)."""

    def __init__(self, urls: VenueUrls, api_key: str = "", api_secret: str = "", market: Market = "spot",
                 limiter: RateLimiter | None = None, info_ttl_s: float = 3600.0, timeout_s: float = 10.0,
                 retry: RetryPolicy = RetryPolicy(), client_factory: Callable[..., Client] | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.urls = urls
        self.market: Market = market
        self.limiter = limiter or RateLimiter(limit=6000 if market == "spot" else 2400)
        self.retry = retry
        self.info_ttl_s = info_ttl_s
        self._monotonic = monotonic
        self.last_ok_ms = 0  # wall ms of the last successful request
        self.error_times: deque[float] = deque()
        factory = client_factory or client_class(urls)
        # ping=False: constructing must not do I/O (preflight reports reachability properly).
        self.raw: Client = factory(api_key or None, api_secret or None, requests_params={"timeout": timeout_s},
                                   ping=False)
        self._lock = threading.RLock()
        self._rules: dict[str, SymbolRules] = {}
        self._rules_at = -1e18

    def __repr__(self) -> str:  # never the key or secret
        return f"ExchangeClient(venue={self.urls.venue.value}, market={self.market})"

    @property
    def futures(self) -> bool:
        return self.market == "futures"
    # ---- plumbing ------------------------------------------------------------------------------
    def _headers(self) -> Any:
        resp = getattr(self.raw, "response", None)
        return getattr(resp, "headers", None)

    def call(self, fn: Callable[[], Any], weight: int = 1, safe: bool = True, mutating: bool = False) -> Any:
        """Run one python-binance call under the limiter with typed errors (public for preflight)."""
        with self._lock:
            try:
                out = call_with_retry(fn, safe=safe, mutating=mutating, limiter=self.limiter, weight=weight,
                                      headers=self._headers, policy=self.retry)
            except Exception:
                self.error_times.append(self._monotonic())  # for the risk engine's API-error rule
                raise
            self.last_ok_ms = int(time.time() * 1000)
            return out

    def health(self) -> dict[str, Any]:
        """What the venue looks like from here: last successful request (wall ms), weight used of the
        limit in this minute, blocked until (wall ms, after a 429/418; 0 when not), errors in the last
        minute."""
        lim = self.limiter
        blocked = lim.blocked_until - lim.clock()
        return {"last_ok_ms": self.last_ok_ms, "weight_used": lim.used, "weight_limit": lim.limit,
                "blocked_until_ms": int(time.time() * 1000 + blocked * 1000) if blocked > 0 else 0,
                "errors_last_minute": self.errors_last_minute()}

    def errors_last_minute(self) -> int:
        now = self._monotonic()
        while self.error_times and self.error_times[0] < now - 60:
            self.error_times.popleft()
        return len(self.error_times)

    def spread_bps(self, symbol: str) -> float | None:
        """Best ask minus best bid, in basis points of the mid."""
        fn = self.raw.futures_orderbook_ticker if self.futures else self.raw.get_orderbook_ticker
        t = self.call(lambda: fn(symbol=symbol), weight=2)
        bid, ask = float(t["bidPrice"]), float(t["askPrice"])
        return 10_000 * (ask - bid) / ((ask + bid) / 2) if bid > 0 and ask > 0 else None

    def margin(self) -> tuple[float, float]:
        """Futures: (initial margin in use, margin balance) of the account."""
        a = self.account()
        return float(a.get("totalInitialMargin", 0)), float(a.get("totalMarginBalance", 0))

    # ---- public market data -------------------------------------------------------------------
    def ping(self) -> None:
        self.call(self.raw.futures_ping if self.futures else self.raw.ping)

    def server_time(self) -> int:
        r = self.call(self.raw.futures_time if self.futures else self.raw.get_server_time)
        return int(r["serverTime"])

    def exchange_info(self, refresh: bool = False) -> dict[str, SymbolRules]:
        if refresh or not self._rules or self._monotonic() - self._rules_at > self.info_ttl_s:
            info = self.call(self.raw.futures_exchange_info if self.futures else self.raw.get_exchange_info,
                             weight=1 if self.futures else 20)
            self._rules = parse_exchange_info(info, self.market)
            self._rules_at = self._monotonic()
        return self._rules

    def rules(self, symbol: str) -> SymbolRules:
        rules = self.exchange_info().get(symbol)
        if rules is None:
            rules = self.exchange_info(refresh=True).get(symbol)  # listed since the last fetch?
        if rules is None:
            raise FinalError(f"unknown symbol {symbol}", code=-1121)
        return rules

    def price(self, symbol: str) -> Decimal:
        fn = self.raw.futures_symbol_ticker if self.futures else self.raw.get_symbol_ticker
        return dec(self.call(lambda: fn(symbol=symbol), weight=2)["price"])

    def klines(self, symbol: str, interval: str, start_ms: int | None = None, end_ms: int | None = None,
               limit: int = 500) -> list[Candle]:
        """Klines as core Candles (the last one may still be open: callers filter by close time)."""
        params: dict[str, Any] = {"symbol": symbol, "interval": interval, "limit": limit}
        if start_ms is not None:
            params["startTime"] = start_ms
        if end_ms is not None:
            params["endTime"] = end_ms
        fn = self.raw.futures_klines if self.futures else self.raw.get_klines
        rows = self.call(lambda: fn(**params), weight=2 if limit <= 100 else 5)
        return [Candle(symbol, int(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5]), interval,
                       self.market) for r in rows]

    # ---- account ---------------------------------------------------------------------------------
    def account(self) -> dict[str, Any]:
        if self.futures:
            return self.call(self.raw.futures_account, weight=5)
        return self.call(lambda: self.raw.get_account(omitZeroBalances="true"), weight=20)

    def balances(self) -> dict[str, Balance]:
        if self.futures:
            rows = self.call(self.raw.futures_account_balance, weight=5)
            return {r["asset"]: Balance(r["asset"], dec(r.get("availableBalance", r["balance"])),
                                        dec(r["balance"]) - dec(r.get("availableBalance", r["balance"])))
                    for r in rows}
        acct = self.account()
        return {b["asset"]: Balance(b["asset"], dec(b["free"]), dec(b["locked"])) for b in acct["balances"]}

    def positions(self) -> list[FuturesPosition]:
        """Open USD-M positions (empty on spot)."""
        if not self.futures:
            return []
        rows = self.call(lambda: self.raw.futures_position_information(version=2), weight=5)
        out = []
        for p in rows:
            amt = dec(p["positionAmt"])
            if amt == 0:
                continue
            out.append(FuturesPosition(p["symbol"], amt, dec(p["entryPrice"]), dec(p.get("markPrice", "0")),
                                       dec(p.get("unRealizedProfit", "0")), dec(p.get("liquidationPrice", "0")),
                                       int(p["leverage"]) if p.get("leverage") else None,
                                       str(p.get("marginType", ""))))
        return out

    def funding_income(self, start_ms: int, end_ms: int | None = None,
                       symbol: str | None = None) -> list[FundingIncome]:
        """USD-M funding payments from ``start_ms`` on (inclusive), oldest first, every page of them
        (the venue gives at most 1000 a call; a page ends on a time the next starts from, and
        records seen twice are dropped by transaction id). Empty on spot."""
        if not self.futures:
            return []
        out: dict[int, FundingIncome] = {}
        cursor = start_ms
        for _ in range(1000):  # a bound, not a limit anyone reaches: 1000 pages of 1000
            params: dict[str, Any] = {"incomeType": "FUNDING_FEE", "startTime": cursor, "limit": 1000}
            if end_ms is not None:
                params["endTime"] = end_ms
            if symbol is not None:
                params["symbol"] = symbol
            rows = self.call(lambda: self.raw.futures_income_history(**params), weight=30)
            fresh = [r for r in rows if int(r["tranId"]) not in out]
            for r in fresh:
                out[int(r["tranId"])] = FundingIncome(r["symbol"], dec(r["income"]), r["asset"], int(r["time"]),
                                                      int(r["tranId"]))
            if len(rows) < 1000 or not fresh:
                break
            cursor = max(int(r["time"]) for r in rows)
        return sorted(out.values(), key=lambda f: (f.time, f.tran_id))

    # ---- orders ----------------------------------------------------------------------------------
    def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        params = {"symbol": symbol} if symbol else {}
        if self.futures:
            rows = self.call(lambda: self.raw.futures_get_open_orders(**params), weight=1 if symbol else 40)
        else:
            rows = self.call(lambda: self.raw.get_open_orders(**params), weight=6 if symbol else 80)
        return [VenueOrder.parse(o) for o in rows]

    def get_order(self, symbol: str, client_order_id: str) -> VenueOrder | None:
        """The venue's order with this client id, or None if the venue has never seen it (-2013).
        A query is safe to repeat, so transient failures are retried here."""
        fn = self.raw.futures_get_order if self.futures else self.raw.get_order
        try:
            o = self.call(lambda: fn(symbol=symbol, origClientOrderId=client_order_id), weight=1 if self.futures else 4)
        except NotFoundError:
            return None
        return VenueOrder.parse(o)

    def trades(self, symbol: str, order_id: int) -> list[VenueTrade]:
        if self.futures:
            rows = self.call(lambda: self.raw.futures_account_trades(symbol=symbol, orderId=order_id), weight=5)
        else:
            rows = self.call(lambda: self.raw.get_my_trades(symbol=symbol, orderId=order_id), weight=5)
        out = []
        for t in rows:
            if int(t["orderId"]) != order_id:
                continue
            side = t.get("side") or ("BUY" if t.get("isBuyer") else "SELL")
            out.append(VenueTrade(t["symbol"], int(t["id"]), int(t["orderId"]), side, dec(t["price"]), dec(t["qty"]),
                                  dec(t.get("commission", "0")), t.get("commissionAsset", ""), int(t["time"]),
                                  dec(t.get("realizedPnl", "0"))))
        return sorted(out, key=lambda x: x.trade_id)

    def prepare_market(self, symbol: str, side: str, quantity: Decimal | float | str,
                       ref_price: Decimal | float | str, reduce_only: bool = False) -> PreparedOrder:
        """Round a market order to the filters and check it (no I/O beyond cached exchangeInfo)."""
        rules = self.rules(symbol)
        qty = rules.round_qty(quantity, market_order=True)
        ref = dec(ref_price)
        problems = rules.problems(qty, ref if ref > 0 else None, market_order=True, check_notional=not reduce_only)
        return PreparedOrder(symbol, side, qty, fmt(qty), ref, tuple(problems))

    def prepare_limit(self, symbol: str, side: str, quantity: Decimal | float | str,
                      price: Decimal | float | str, reduce_only: bool = False) -> PreparedOrder:
        """Round a resting LIMIT order to the filters: quantity floored to LOT_SIZE, price to the
        tick on the passive side (a buy never rounds up, a sell never down) and check it."""
        rules = self.rules(symbol)
        qty = rules.round_qty(quantity, market_order=False)
        px = rules.round_price(price, side, mode="passive")
        problems = rules.problems(qty, px, market_order=False, check_notional=not reduce_only)
        return PreparedOrder(symbol, side, qty, fmt(qty), px, tuple(problems))

    def place_market(self, prepared: PreparedOrder, client_order_id: str, reduce_only: bool = False) -> VenueOrder:
        """Send a prepared MARKET order exactly once. Raises FilterError (not sent), FinalError
        (refused), RetryableError (not executed), AmbiguousError (outcome unknown: query it)."""
        return self._send(prepared, client_order_id, reduce_only, {"type": "MARKET"})

    def place_limit(self, prepared: PreparedOrder, client_order_id: str, reduce_only: bool = False) -> VenueOrder:
        """Send a prepared GTC LIMIT order exactly once (`prepared.ref_price` is the limit price).
        Errors as place_market: FilterError, FinalError, RetryableError, AmbiguousError."""
        return self._send(prepared, client_order_id, reduce_only,
                          {"type": "LIMIT", "timeInForce": "GTC", "price": fmt(prepared.ref_price)})

    def _send(self, prepared: PreparedOrder, client_order_id: str, reduce_only: bool,
              typed: dict[str, Any]) -> VenueOrder:
        if not prepared.ok:
            raise FilterError("; ".join(prepared.problems), code=-1013)
        if len(client_order_id) > 36:
            raise FinalError(f"client order id longer than 36 characters: {client_order_id}", code=-1100)
        params: dict[str, Any] = {"symbol": prepared.symbol, "side": prepared.side, **typed,
                                  "quantity": prepared.quantity_text, "newClientOrderId": client_order_id}
        if self.futures:
            params["newOrderRespType"] = "RESULT"  # ACK would show the state before matching
            if reduce_only:
                params["reduceOnly"] = "true"
            fn: Callable[..., Any] = self.raw.futures_create_order
        else:
            if reduce_only:
                raise FinalError("reduce-only is a futures flag; spot sells are bounded by the balance")
            params["newOrderRespType"] = "FULL"
            fn = self.raw.create_order
        log.info("sending %s %s %s %s qty=%s%s id=%s", self.market, typed["type"], prepared.side, prepared.symbol,
                 prepared.quantity_text, f" @ {typed['price']}" if "price" in typed else "", client_order_id)
        o = self.call(lambda: fn(**params), weight=1, safe=False, mutating=True)
        return VenueOrder.parse(o)

    def cancel(self, symbol: str, client_order_id: str) -> VenueOrder | None:
        """Cancel by client order id. None when the venue does not know it as open (-2011: filled,
        canceled or never placed): the caller asks get_order() which one. A cancel is safe to repeat."""
        fn = self.raw.futures_cancel_order if self.futures else self.raw.cancel_order
        try:
            # Not "mutating" for the error mapping: repeating a cancel cannot change more than the
            # first one did, so a 5xx is retried instead of being reported as ambiguous.
            o = self.call(lambda: fn(symbol=symbol, origClientOrderId=client_order_id), weight=1, safe=True)
        except NotFoundError:
            return None
        return VenueOrder.parse(o)

    # ---- the venue itself ----------------------------------------------------------------------------
    def is_local_exchange(self) -> bool:
        """Does this venue prove to be the local exchange (``simulator``'s ``GET /local/identity``)? Binance
        and anything else answer no (404, another body, unreachable)."""
        import requests

        base = self.urls.spot_rest.removesuffix("/api")
        try:
            resp = requests.get(f"{base}/local/identity", timeout=5)
            return resp.status_code == 200 and resp.json().get("venue") == "local" and not resp.json().get("real_money")
        except (requests.RequestException, ValueError, AttributeError):
            return False

    # ---- futures account settings ------------------------------------------------------------------
    def set_isolated(self, symbol: str) -> None:
        """Futures: isolated margin for ``symbol`` (a position can lose its own margin only, and its
        liquidation price is its own). Already isolated is fine."""
        try:
            self.call(lambda: self.raw.futures_change_margin_type(symbol=symbol, marginType="ISOLATED"),
                      safe=False, mutating=True)
        except ExchangeError as exc:
            if getattr(exc, "code", None) != -4046:  # "No need to change margin type"
                raise

    def set_leverage(self, symbol: str, leverage: int) -> None:
        """Futures: the leverage the venue applies to new positions of ``symbol``."""
        self.call(lambda: self.raw.futures_change_leverage(symbol=symbol, leverage=leverage), safe=False,
                  mutating=True)

