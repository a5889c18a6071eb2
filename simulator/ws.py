"""Market-data WebSocket streams on Binance's paths (reference/binance-api.md §1, §8).

Paths (an optional ``public/``, ``market/`` or ``private/`` prefix -- the USD-M split -- is
accepted everywhere; a prefixed connection gets the USD-M shapes and books):
    /ws/<stream>[/<stream>...]     raw events
    /ws, /ws/<name>                raw events after a SUBSCRIBE message (a path name without ``@``
                                   is no stream: Binance ignores it, and ccxt connects to /ws/<n>)
    /stream?streams=<a>/<b>        combined: {"stream": name, "data": event}
    /ws/<listenKey>, /private/ws?listenKey=<key>   the USD-M user-data stream (``user_stream.py``)

The streams and their events are in ``ws_events.py``. Events are pushed whenever the price source
produces a bar for the symbol (every step of the market loop): kline (marked closed when the bar
completes it), bookTicker, trade/aggTrade, markPrice, partial and diff depth on every bar; the
24 h tickers at most once a second. Live ``SUBSCRIBE`` / ``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS``
messages are answered like Binance.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from aiohttp import WSMsgType, web

from simulator import ws_events
from simulator.klines import INTERVALS_MS, valid_interval
from simulator.prices import Bar
from simulator.state import SimExchange
from simulator.user_stream import UserStreams
from simulator.ws_events import DepthDiff

log = logging.getLogger(__name__)
QUEUE_MAX = 1000
TICKER_EVERY_MS = 1000
_LISTEN_KEY_RE = re.compile(r"^[0-9a-f]{64}$")
_DEPTH_RE = re.compile(r"^depth(5|10|20)?(@(100|250|500|1000)ms)?$")


@dataclass(frozen=True, slots=True)
class Stream:
    name: str
    symbol: str
    kind: str  # kline | continuousKline | bookTicker | aggTrade | trade | markPrice | ticker | miniTicker | depth
    interval: str = ""
    levels: int = 0  # depth: 0 = diff depth, else the partial book's size


def parse_stream(name: str, symbols: set[str], supports: Callable[[str], bool] = valid_interval) -> Stream | None:
    sym_part, _, rest = name.partition("@")
    if not rest:
        return None
    perpetual = sym_part.endswith("_perpetual")
    symbol = sym_part.removesuffix("_perpetual").upper()
    if symbol not in symbols:
        return None
    if perpetual and rest.startswith("continuousKline_"):
        iv = rest.removeprefix("continuousKline_")
        return Stream(name, symbol, "continuousKline", iv) if supports(iv) else None
    if perpetual:
        return None
    if rest.startswith("kline_"):
        iv = rest.removeprefix("kline_")
        return Stream(name, symbol, "kline", iv) if supports(iv) else None
    if rest in ("bookTicker", "aggTrade", "trade", "ticker", "miniTicker"):
        return Stream(name, symbol, rest)
    if rest in ("markPrice", "markPrice@1s"):
        return Stream(name, symbol, "markPrice")
    m = _DEPTH_RE.match(rest)
    if m:
        return Stream(name, symbol, "depth", levels=int(m.group(1) or 0))
    return None


@dataclass(eq=False)
class Connection:
    ws: web.WebSocketResponse
    combined: bool
    futures: bool
    streams: dict[str, Stream] = field(default_factory=dict)
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(QUEUE_MAX))
    last_sent: dict[str, int] = field(default_factory=dict)  # throttled streams: wall ms of the last event

    def push(self, text: str) -> None:
        if self.queue.full():  # a slow reader loses the oldest events rather than stalling the market
            try:
                self.queue.get_nowait()
            except asyncio.QueueEmpty:
                pass
        self.queue.put_nowait(text)


class StreamHub:
    """Fans bars out to WebSocket connections as Binance stream events."""

    def __init__(self, ex: SimExchange, user: UserStreams | None = None) -> None:
        self.ex = ex
        self.user = user  # serves listenKey sockets (futures user data)
        self.conns: set[Connection] = set()
        self._diffs: dict[tuple[str, bool], DepthDiff] = {}  # (symbol, futures) -> diff-depth feed
        self._diff_events: dict[tuple[str, bool], tuple[int, dict[str, object] | None]] = {}
        ex.bar_listeners.append(self.on_bar)

    # -- events ---------------------------------------------------------------------------

    def event(self, stream: Stream, bar: Bar, futures: bool) -> dict[str, object] | None:
        ex = self.ex
        futures = futures and bar.symbol in ex.futures_specs
        if stream.kind in ("kline", "continuousKline"):
            return ws_events.kline(ex, bar, stream.interval, stream.kind == "continuousKline", futures)
        if stream.kind == "bookTicker":
            return ws_events.book_ticker(ex, bar.symbol, futures)
        if stream.kind in ("trade", "aggTrade"):
            return ws_events.trade(ex, bar.symbol, futures, aggregate=stream.kind == "aggTrade")
        if stream.kind == "markPrice":
            return ws_events.mark_price(ex, bar.symbol)
        if stream.kind in ("ticker", "miniTicker"):
            return ws_events.ticker(ex, bar.symbol, futures, mini=stream.kind == "miniTicker")
        if stream.levels:
            return ws_events.partial_depth(ex, bar.symbol, futures, stream.levels, ex.update_ids[bar.symbol] - 1)
        return self._depth_diff(bar.symbol, futures)

    def _start_diff(self, symbol: str, futures: bool) -> None:
        """Make sure a diff-depth feed follows this book from now on (at subscription)."""
        key = (symbol, futures)
        feed = self._diffs.get(key)
        if feed is None or feed.last_u != self.ex.update_ids[symbol]:
            self._diffs[key] = DepthDiff.start(self.ex, symbol, futures)

    def _depth_diff(self, symbol: str, futures: bool) -> dict[str, object] | None:
        """One event per book change, shared by every subscriber (computed once per bar)."""
        key = (symbol, futures)
        u = self.ex.update_ids[symbol]
        cached = self._diff_events.get(key)
        if cached is not None and cached[0] == u:
            return cached[1]
        feed = self._diffs.get(key)
        if feed is None or feed.last_u != u - 1:  # it missed a change (nobody listened): start over
            self._diffs[key] = DepthDiff.start(self.ex, symbol, futures)
            return None
        ev = feed.event(self.ex)
        self._diff_events[key] = (u, ev)
        return ev

    def on_bar(self, bar: Bar) -> None:
        now = self.ex.now_ms()
        for conn in list(self.conns):
            for stream in conn.streams.values():
                if stream.symbol != bar.symbol:
                    continue
                if stream.kind in ("ticker", "miniTicker"):  # Binance: every 1000 ms
                    if now - conn.last_sent.get(stream.name, 0) < TICKER_EVERY_MS:
                        continue
                    conn.last_sent[stream.name] = now
                data = self.event(stream, bar, conn.futures)
                if data is None:
                    continue
                payload = {"stream": stream.name, "data": data} if conn.combined else data
                conn.push(json.dumps(payload, separators=(",", ":")))

    async def close_all(self) -> None:
        for conn in list(self.conns):
            await conn.ws.close()

    # -- the socket handler ---------------------------------------------------------------

    def _add(self, conn: Connection, names: list[str]) -> list[str]:
        bad = []
        symbols = set(self.ex.specs)
        for name in names:
            st = parse_stream(name, symbols, self.ex.klines.supports)
            if st is None:
                bad.append(name)
            else:
                conn.streams[name] = st
                if st.kind == "depth" and not st.levels:
                    self._start_diff(st.symbol, conn.futures and st.symbol in self.ex.futures_specs)
        return bad

    async def handle(self, request: web.Request, prefix: str, kind: str) -> web.StreamResponse:
        combined = kind == "stream"
        if combined:
            names = [n for n in request.query.get("streams", "").split("/") if n]
        else:
            names = [n for n in (request.match_info.get("streams") or "").split("/") if n]
        listen_key = request.query.get("listenKey")
        if not listen_key and len(names) == 1 and _LISTEN_KEY_RE.match(names[0]):
            listen_key = names[0]  # the legacy /ws/<listenKey> form
        if listen_key and self.user is not None and kind == "ws":
            return await self.user.futures_handler(request, listen_key)
        # a path name without '@' names no stream (ccxt connects to /ws/<n> and then SUBSCRIBEs)
        names = [n for n in names if "@" in n or combined]
        ws = web.WebSocketResponse(heartbeat=20.0)
        conn = Connection(ws, combined, futures=bool(prefix))
        bad = self._add(conn, names)
        if bad:
            raise web.HTTPBadRequest(text=f"Invalid request: unknown stream(s) {bad}")
        await ws.prepare(request)
        self.conns.add(conn)
        writer = asyncio.create_task(self._writer(conn))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._control(conn, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.conns.discard(conn)
            writer.cancel()
        return ws

    async def _writer(self, conn: Connection) -> None:
        try:
            while True:
                text = await conn.queue.get()
                await conn.ws.send_str(text)
        except (asyncio.CancelledError, ConnectionError, RuntimeError):
            pass

    async def _control(self, conn: Connection, text: str) -> None:
        try:
            msg = json.loads(text)
            method, mid = msg.get("method"), msg.get("id")
        except (ValueError, AttributeError):
            conn.push(json.dumps({"error": {"code": 3, "msg": "Invalid JSON"}}))
            return
        params = msg.get("params") or []
        if method == "SUBSCRIBE":
            bad = self._add(conn, [str(p) for p in params])
            if bad:
                conn.push(json.dumps({"error": {"code": 2, "msg": f"Invalid request: unknown stream {bad[0]}"}, "id": mid}))
                return
            conn.push(json.dumps({"result": None, "id": mid}))
        elif method == "UNSUBSCRIBE":
            for p in params:
                conn.streams.pop(str(p), None)
            conn.push(json.dumps({"result": None, "id": mid}))
        elif method == "LIST_SUBSCRIPTIONS":
            conn.push(json.dumps({"result": list(conn.streams), "id": mid}))
        else:
            conn.push(json.dumps({"error": {"code": 2, "msg": f"Invalid request: unknown method {method}"}, "id": mid}))


def add_routes(app: web.Application, hub: StreamHub) -> None:
    def bind(prefix: str, kind: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            return await hub.handle(request, prefix, kind)
        return handler

    for prefix in ("", "public/", "market/", "private/"):
        app.router.add_get(f"/{prefix}ws", bind(prefix, "ws"))
        app.router.add_get(f"/{prefix}ws/{{streams:.+}}", bind(prefix, "ws"))
        app.router.add_get(f"/{prefix}stream", bind(prefix, "stream"))


__all__ = ["StreamHub", "add_routes", "parse_stream", "INTERVALS_MS"]
