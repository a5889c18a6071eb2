"""The venue's user-data stream for live trading: order updates (and so fills) as they happen.

The events are parsed in exchange/userdata_events.py (re-exported here):
* `OrderEvent` / `parse_event`: one spot ``executionReport`` or USD-M ``ORDER_TRADE_UPDATE``
  (reference/binance-api.md §8) as a typed, Decimal record; `OrderEvent.trade()` gives the
  `exchange.client.VenueTrade` of a fill, the same type REST polling produces. An OCO leg's
  update carries its ``order_list_id``.
* `FundingEvent` / `parse_funding_event`: a USD-M ``ACCOUNT_UPDATE`` with reason FUNDING_FEE
  (a funding payment), handed to the optional `on_funding` callback.
* `ListStatusEvent` / `AlgoUpdateEvent` (`parse_protective_event`): a spot order list's
  ``listStatus`` and a USD-M ``ALGO_UPDATE``, handed to the optional `on_protective` callback
  (protective orders: exchange/protective.py).
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
from typing import Any

from binance.exceptions import ReadLoopClosed

from exchange.rules import Market
from exchange.userdata_events import (  # noqa: F401  (re-exported: callers import the events from here)
    AlgoUpdateEvent, FundingEvent, ListLeg, ListStatusEvent, OrderEvent, parse_event, parse_funding_event,
    parse_protective_event,
)
from exchange.venues import VenueUrls, async_client_class, force_close, socket_manager_class

log = logging.getLogger(__name__)

QUEUE_SIZE = 10_000  # python-binance kills its read loop when its queue overflows: keep it deep
POLL_S = 0.2  # how often the reader looks at the close flag (bounds close() latency)
CONNECT_TIMEOUT_S = 15.0  # client creation + subscribe; a hung venue must not hang the thread
TEARDOWN_TIMEOUT_S = 2.0
MAX_BACKOFF_S = 30.0
# Events after which the subscription is gone although the socket may still be open.
_STREAM_ENDED = frozenset({"listenKeyExpired", "eventStreamTerminated", "serverShutdown"})


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
                 on_funding: Callable[[FundingEvent], None] | None = None,
                 on_protective: Callable[[ListStatusEvent | AlgoUpdateEvent], None] | None = None) -> None:
        if market not in ("spot", "futures"):
            raise ValueError(f"unknown market {market!r}")
        self.urls = urls
        self.market: Market = market
        self.on_event = on_event
        self.on_resync = on_resync
        self.on_funding = on_funding  # USD-M funding payments, in stream order with the order events
        self.on_protective = on_protective  # listStatus / ALGO_UPDATE, in stream order with the order events
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
            protective = parse_protective_event(ev) if self.on_protective is not None else None
        except (KeyError, TypeError, ValueError) as e:
            log.warning("user-data stream (%s): unreadable %s event skipped (%s)", self.market, kind, e)
            return False
        calls: list[tuple[str, Callable[[Any], None] | None, Any]] = [("on_funding", self.on_funding, p) for p in funding]
        calls += [("on_protective", self.on_protective, protective), ("on_event", self.on_event, order)]
        for name, handler, item in calls:
            if handler is None or item is None:
                continue
            try:
                handler(item)
            except Exception:  # noqa: BLE001 - a consumer bug must not kill the stream
                log.exception("user-data %s handler failed", name)
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
