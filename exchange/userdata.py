"""The venue's user-data stream for live trading: order updates (and so fills) as they happen.

* `OrderEvent` / `parse_event`: one spot ``executionReport`` or USD-M ``ORDER_TRADE_UPDATE``
  (reference/binance-api.md §8) as a typed, Decimal record; `OrderEvent.trade()` gives the
  `exchange.client.VenueTrade` of a fill, the same type REST polling produces.
* `FundingEvent` / `parse_funding_event`: a USD-M ``ACCOUNT_UPDATE`` with reason FUNDING_FEE
  (a funding payment), handed to the optional `on_funding` callback.
* `UserDataStream`: a background thread with its own asyncio loop that keeps one user-data
  subscription open through python-binance (URLs from exchange.venues, like exchange/marketdata.py):
  spot over the WebSocket API (``BinanceSocketManager.user_socket()`` ->
  ``userDataStream.subscribe.signature``), futures over a listenKey socket
  (``futures_user_socket()`` -> ``/private/ws?listenKey=``; python-binance keeps the key alive).

The stream is the primary source of fills; REST polling is the fallback. Any drop or failure
ends the session and a new one is opened (fresh AsyncClient, fresh subscription) until close();
`on_resync` runs after every successful subscribe, the first included, so the consumer can poll
REST for whatever happened while no subscription was live. Callbacks run on the stream thread,
in venue order; an exception in one is logged and the stream goes on.

The API key and secret go to python-binance and nowhere else: not into repr, logs or the
exception messages this module logs.
"""
from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from binance.exceptions import ReadLoopClosed

from exchange.client import VenueTrade
from exchange.rules import ZERO, Market, dec
from exchange.venues import VenueUrls, async_client_class, force_close, socket_manager_class

log = logging.getLogger(__name__)

QUEUE_SIZE = 10_000  # python-binance kills its read loop when its queue overflows: keep it deep
POLL_S = 0.2  # how often the reader looks at the close flag (bounds close() latency)
CONNECT_TIMEOUT_S = 15.0  # client creation + subscribe; a hung venue must not hang the thread
TEARDOWN_TIMEOUT_S = 2.0
MAX_BACKOFF_S = 30.0
# Events after which the subscription is gone although the socket may still be open.
_STREAM_ENDED = frozenset({"listenKeyExpired", "eventStreamTerminated", "serverShutdown"})


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
    if not isinstance(msg, dict):
        return None
    ev = msg["event"] if isinstance(msg.get("event"), dict) else msg
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
            reduce_only=bool(o.get("R", False)), realized_pnl=_d(o.get("rp")),
        )
    return None


class UserDataStream:
    """Keeps one user-data subscription open (reconnecting forever) and hands order updates to `on_event`.

    Attributes, safe to read from any thread: `connected` (True while subscribed), `events` (user-data
    events received, any kind), `reconnects` (successful subscribes after the first), `last_event_ms`
    (wall-clock ms of the last user-data event received, 0 = none), `error` (set if the thread died).
    """

    def __init__(self, urls: VenueUrls, api_key: str, api_secret: str, market: Market,
                 on_event: Callable[[OrderEvent], None],
                 on_resync: Callable[[], None] | None = None,
                 reconnect_delay_s: float = 0.5,
                 on_funding: Callable[[FundingEvent], None] | None = None) -> None:
        if market not in ("spot", "futures"):
            raise ValueError(f"unknown market {market!r}")
        self.urls = urls
        self.market: Market = market
        self.on_event = on_event
        self.on_resync = on_resync
        self.on_funding = on_funding  # USD-M funding payments, in stream order with the order events
        self.reconnect_delay_s = reconnect_delay_s
        self._api_key = api_key
        self._api_secret = api_secret
        self.connected = False
        self.events = 0
        self.reconnects = 0
        self.last_event_ms = 0
        self.error: BaseException | None = None
        self._subscribes = 0
        self._closing = threading.Event()
        self._connected_evt = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    def __repr__(self) -> str:
        return (f"UserDataStream(market={self.market!r}, venue={self.urls.venue.value!r}, connected={self.connected}, "
                f"events={self.events}, reconnects={self.reconnects})")

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the stream thread; returns at once (see wait_connected)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"userdata-{self.market}", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Unsubscribe and stop the thread (prompt: the socket is closed under python-binance's reader)."""
        self._closing.set()
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # loop already closed: the thread is finishing
                pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def wait_connected(self, timeout: float) -> bool:
        """True once subscribed (now or within `timeout` seconds)."""
        return self._connected_evt.wait(timeout)

    # ---- internals -------------------------------------------------------------------------------
    def _redact(self, e: BaseException | str) -> str:
        text = e if isinstance(e, str) else f"{type(e).__name__}: {e}"
        for s in (self._api_secret, self._api_key):
            if s:
                text = text.replace(s, "***")
        return re.sub(r"(listenKey=|signature=)[^&\s'\"]+", r"\1***", text)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as e:  # noqa: BLE001 - surfaced through .error and the log
            self.error = e
            log.error("user-data stream thread (%s) died: %s", self.market, self._redact(e))
        finally:
            self._set_connected(False)
            loop.close()

    def _set_connected(self, up: bool) -> None:
        self.connected = up
        if up:
            self._connected_evt.set()
        else:
            self._connected_evt.clear()

    async def _main(self) -> None:
        self._wake = asyncio.Event()
        if self._closing.is_set():
            return
        failures = 0
        while not self._closing.is_set():
            subscribed = False
            try:
                subscribed = await self._session()
            except Exception as e:  # noqa: BLE001 - any failure: reconnect
                log.warning("user-data stream (%s) failed: %s; reconnecting", self.market, self._redact(e))
            self._set_connected(False)
            if self._closing.is_set():
                break
            failures = 0 if subscribed else failures + 1
            delay = min(self.reconnect_delay_s * 2 ** max(failures - 1, 0), MAX_BACKOFF_S)
            try:  # sleep, but wake at once on close()
                await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                pass

    async def _session(self) -> bool:
        """One subscription, from connect to drop/close. True if it got subscribed."""
        client = await asyncio.wait_for(
            async_client_class(self.urls).create(self._api_key, self._api_secret), CONNECT_TIMEOUT_S)
        sock: Any = None
        dropped = False
        try:
            # We own reconnection (a new subscription + on_resync). python-binance's own would
            # re-open the WS-API connection without the spot subscription (events silently stop),
            # and its sleep-then-connect would race a close().
            client.ws_api.MAX_RECONNECTS = 0
            bsm = socket_manager_class(self.urls)(client, max_queue_size=QUEUE_SIZE)
            sock = bsm.futures_user_socket() if self.market == "futures" else bsm.user_socket()
            sock.MAX_RECONNECTS = 0
            # Every drop (and our own close) makes python-binance log ERRORs ("Max reconnections 0
            # reached", "ConnectionClosedOK"); the error also reaches us as a message and is logged
            # once, as a warning, below. Its lines go to DEBUG.
            client.ws_api._log = sock._log = _BINANCE_LOG
            await asyncio.wait_for(sock.__aenter__(), CONNECT_TIMEOUT_S)
            self._subscribed()
            dropped = await self._pump(sock)
            return True
        except BaseException:
            dropped = True
            raise
        finally:
            await self._teardown(client, sock, dropped)

    def _subscribed(self) -> None:
        self._subscribes += 1
        if self._subscribes > 1:
            self.reconnects += 1
        log.info("user-data stream (%s) subscribed%s", self.market,
                 f" again (reconnect {self.reconnects})" if self.reconnects else "")
        # on_resync before `connected`: once wait_connected() says yes, the first resync is done.
        # Events arriving meanwhile wait in the socket's queue and follow in order.
        if self.on_resync is not None:
            try:
                self.on_resync()
            except Exception:  # noqa: BLE001 - a consumer bug must not kill the stream
                log.exception("user-data on_resync handler failed")
        self._set_connected(True)

    async def _pump(self, sock: Any) -> bool:
        """Deliver messages until close() (-> False) or the stream is gone (-> True)."""
        while not self._closing.is_set():
            try:
                msg = await asyncio.wait_for(sock.recv(), POLL_S)
            except asyncio.TimeoutError:
                continue
            except ReadLoopClosed:
                # The reader ended (after a drop); what it queued before that is still ours.
                while not sock._queue.empty():
                    if self._handle(sock._queue.get_nowait()):
                        break
                return True
            if self._handle(msg):
                return True
        return False

    def _handle(self, msg: Any) -> bool:
        """Process one message; True when it says the subscription is gone."""
        if not isinstance(msg, dict):
            return False
        ev = msg["event"] if isinstance(msg.get("event"), dict) else msg
        kind = ev.get("e")
        if kind == "error":
            # python-binance reports a dropped connection (BinanceWebsocketClosed,
            # ConnectionClosed*, ...) by putting this into the socket's queue.
            log.warning("user-data stream (%s) interrupted: %s", self.market,
                        self._redact(f"{ev.get('type')} {ev.get('m', '')}".strip()))
            return True
        self.events += 1
        self.last_event_ms = int(time.time() * 1000)
        if kind in _STREAM_ENDED:
            log.warning("user-data stream (%s) ended by the venue (%s)", self.market, kind)
            return True
        try:
            order = parse_event(self.market, ev)
            funding = parse_funding_event(ev) if self.on_funding is not None else []
        except (KeyError, TypeError, ValueError) as e:
            log.warning("user-data stream (%s): unreadable %s event skipped (%s)", self.market, kind, e)
            return False
        for payment in funding:
            try:
                self.on_funding(payment)  # type: ignore[misc]
            except Exception:  # noqa: BLE001 - a consumer bug must not kill the stream
                log.exception("user-data on_funding handler failed")
        if order is not None:
            try:
                self.on_event(order)
            except Exception:  # noqa: BLE001 - a consumer bug must not kill the stream
                log.exception("user-data on_event handler failed")
        return False

    async def _teardown(self, client: Any, sock: Any, dropped: bool) -> None:
        """Leave the socket and close the client, in bounded time whatever state python-binance is in."""
        try:
            if sock is not None:
                if self.market == "spot" and dropped:
                    # The venue forgot the subscription with the connection; unsubscribing would
                    # only open a new WS-API connection to be told so.
                    sock._subscription_id = None
                if self.market == "futures":
                    await force_close(sock)
                try:
                    await asyncio.wait_for(sock.__aexit__(None, None, None), TEARDOWN_TIMEOUT_S)
                except Exception as e:  # noqa: BLE001 - best effort on the way out
                    log.debug("user-data socket exit: %s", self._redact(e))
            await force_close(client.ws_api)
        finally:
            try:
                await asyncio.wait_for(client.close_connection(), TEARDOWN_TIMEOUT_S)
            except Exception as e:  # noqa: BLE001
                log.debug("user-data client close: %s", self._redact(e))


class _DebugLog:
    """A logger stand-in that writes everything at DEBUG (for python-binance's socket objects)."""

    def __init__(self, name: str) -> None:
        self._log = logging.getLogger(name)

    def _debug(self, msg: object, *args: object, **kw: Any) -> None:
        kw.pop("exc_info", None)
        self._log.debug(msg, *args, **kw)

    debug = info = warning = error = exception = critical = _debug


_BINANCE_LOG = _DebugLog(f"{__name__}.binance")
