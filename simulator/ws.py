"""Market-data WebSocket streams on Binance's paths (reference/binance-api.md §1, §8).

Paths (an optional ``public/``, ``market/`` or ``private/`` prefix -- the USD-M split -- is
accepted everywhere):
    /ws/<stream>[/<stream>...]     raw events
    /ws                            raw events after a SUBSCRIBE message
    /stream?streams=<a>/<b>        combined: {"stream": name, "data": event}

Streams (symbol lower-case):
    <s>@kline_<interval>                       spot-style kline event (``k.x`` = closed)
    <s>@bookTicker                             best bid/ask (futures paths add e/E/T)
    <s>@aggTrade                               one aggregate trade per market step (futures: no M)
    <s>_perpetual@continuousKline_<interval>   futures continuous kline event
    <s>@markPrice[@1s]                         markPriceUpdate (mark = last price, funding 0.0001)

Events are pushed whenever the price source produces a bar for the symbol (every step of the
market loop), and a kline event is marked closed when that bar completes the kline. Live
``SUBSCRIBE`` / ``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` messages are answered like Binance.
A ``listenKey`` socket (``/private/ws?listenKey=...``) is handed to ``user_stream.py``.
Not implemented: trade/aggTrade/depth/ticker streams.
"""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from aiohttp import WSMsgType, web

from simulator.filters import fmt8
from simulator.futures import FUNDING_RATE, next_funding_ms
from simulator.klines import INTERVALS_MS, bucket, valid_interval
from simulator.prices import Bar
from simulator.state import SimExchange
from simulator.user_stream import UserStreams

log = logging.getLogger(__name__)
QUEUE_MAX = 1000


@dataclass(frozen=True, slots=True)
class Stream:
    name: str
    symbol: str
    kind: str  # kline | bookTicker | aggTrade | continuousKline | markPrice
    interval: str = ""


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
    if rest == "bookTicker":
        return Stream(name, symbol, "bookTicker")
    if rest == "aggTrade":
        return Stream(name, symbol, "aggTrade")
    if rest in ("markPrice", "markPrice@1s"):
        return Stream(name, symbol, "markPrice")
    return None


@dataclass(eq=False)
class Connection:
    ws: web.WebSocketResponse
    combined: bool
    futures: bool
    streams: dict[str, Stream] = field(default_factory=dict)
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(QUEUE_MAX))

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
        self._agg_id = 0
        ex.bar_listeners.append(self.on_bar)

    # -- events ---------------------------------------------------------------------------

    def _kline(self, bar: Bar, interval: str) -> dict[str, object]:
        ks = self.ex.klines.klines(bar.symbol, interval, bucket(bar.open_time, interval)[0], None, 1)
        k = ks[0]
        closed = bar.close_time >= k.close_time
        return {
            "t": k.open_time, "T": k.close_time, "s": bar.symbol, "i": interval,
            "f": 100, "L": 100 + k.trades - 1 if k.trades else 99,
            "o": fmt8(k.open), "c": fmt8(k.close), "h": fmt8(k.high), "l": fmt8(k.low),
            "v": fmt8(k.volume), "n": k.trades, "x": closed, "q": fmt8(k.quote_volume),
            "V": fmt8(k.taker_buy_base), "Q": fmt8(k.taker_buy_quote), "B": "0",
        }

    def event(self, stream: Stream, bar: Bar, futures: bool) -> dict[str, object]:
        now = self.ex.now_ms()
        if stream.kind == "kline":
            return {"e": "kline", "E": now, "s": bar.symbol, "k": self._kline(bar, stream.interval)}
        if stream.kind == "continuousKline":
            k = self._kline(bar, stream.interval)
            k.pop("s")
            return {"e": "continuous_kline", "E": now, "ps": bar.symbol, "ct": "PERPETUAL", "k": k}
        if stream.kind == "bookTicker":
            if futures and bar.symbol in self.ex.futures_specs:
                # The futures book, on the futures tick and step (as /fapi/v1/ticker/bookTicker).
                spec = self.ex.futures_specs[bar.symbol]
                book = self.ex.futures.book(bar.symbol)
                bid, ask = book.levels("bids", 1)[0], book.levels("asks", 1)[0]
                return {"e": "bookTicker", "u": self.ex.update_id, "s": bar.symbol,
                        "b": spec.fmt_price(bid.price), "B": spec.fmt_qty(bid.qty),
                        "a": spec.fmt_price(ask.price), "A": spec.fmt_qty(ask.qty), "E": now, "T": now}
            book = self.ex.engine.book(bar.symbol)
            bid, ask = book.levels("bids", 1)[0], book.levels("asks", 1)[0]
            return {"u": self.ex.update_id, "s": bar.symbol,
                    "b": fmt8(bid.price), "B": fmt8(bid.qty), "a": fmt8(ask.price), "A": fmt8(ask.qty)}
        if stream.kind == "aggTrade":
            # The market's step as one aggregate trade: at the step's close, for its volume; the
            # taker side follows the step's direction (buyer is maker when the price went down).
            self._agg_id += 1
            ev = {"e": "aggTrade", "E": now, "s": bar.symbol, "a": self._agg_id, "p": fmt8(bar.close),
                  "q": fmt8(bar.volume), "f": self._agg_id * 10, "l": self._agg_id * 10 + 9,
                  "T": bar.close_time, "m": bar.close < bar.open}
            if not futures:
                ev["M"] = True
            return ev
        # markPrice
        price = fmt8(self.ex.engine.price(bar.symbol))
        return {
            "e": "markPriceUpdate", "E": now, "s": bar.symbol, "p": price, "ap": price, "P": price,
            "i": price, "r": FUNDING_RATE, "T": next_funding_ms(now),
        }

    def on_bar(self, bar: Bar) -> None:
        for conn in list(self.conns):
            for stream in conn.streams.values():
                if stream.symbol != bar.symbol:
                    continue
                data = self.event(stream, bar, conn.futures)
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
        return bad

    async def handle(self, request: web.Request, prefix: str, kind: str) -> web.StreamResponse:
        combined = kind == "stream"
        if combined:
            names = [n for n in request.query.get("streams", "").split("/") if n]
        else:
            names = [n for n in (request.match_info.get("streams") or "").split("/") if n]
        listen_key = request.query.get("listenKey") or (names[0] if len(names) == 1 and "@" not in names[0] else None)
        if listen_key and self.user is not None and kind == "ws":
            return await self.user.futures_handler(request, listen_key)
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
