"""The aiohttp app: REST routes from the endpoint table, WebSocket streams, admin routes.

Every REST request goes through one pipeline (``_make_handler``): fault latency -> parameters
from query string and form body (query wins) -> request weight (429/418) -> injected 5xx ->
security (SIGNED: key, timestamp/recvWindow, HMAC over the raw bytes; USER_STREAM: key only) ->
order count -> handler -> injected "status unknown" / lost response -> JSON with
``X-MBX-USED-WEIGHT-1M`` (and ``X-MBX-ORDER-COUNT-*`` on new orders).
"""
from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import AsyncIterator, Awaitable, Callable
from urllib.parse import parse_qsl

from aiohttp import web

from simulator import admin, errors
from simulator import futures_algo_api as _futures_algo_api  # noqa: F401  (registers /fapi algo routes)
from simulator import futures_api as _futures_api  # noqa: F401  (registers /fapi trading routes)
from simulator import futures_market_api as _futures_market_api  # noqa: F401  (registers /fapi market data)
from simulator import spot_api as _spot_api  # noqa: F401  (registers /api routes)
from simulator import tape_api as _tape_api  # noqa: F401  (registers the public trades routes)
from simulator.admin import STATE_KEY, WS_CLOSERS_KEY
from simulator.auth import api_key_only, authenticate
from simulator.errors import ApiError
from simulator.state_file import StateSaver
from simulator.registry import ENDPOINTS, Endpoint, Params
from simulator.state import SimExchange
from simulator.user_stream import UserStreams
from simulator.ws import StreamHub
from simulator.ws import add_routes as add_ws_routes

log = logging.getLogger(__name__)


def _json(body: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        text=json.dumps(body, separators=(",", ":")),
        status=status,
        content_type="application/json",
        charset="UTF-8",
        headers=headers,
    )


def _raw_query(request: web.Request) -> str:
    raw = request.raw_path
    return raw.split("?", 1)[1] if "?" in raw else ""


def _make_handler(ep: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    scope = "fapi" if ep.futures else "api"

    async def handle(request: web.Request) -> web.StreamResponse:
        ex = request.app[STATE_KEY]
        headers: dict[str, str] = {"x-mbx-uuid": str(uuid.uuid4())}
        ip = request.remote or "?"
        try:
            if ex.faults.latency_ms > 0:
                await asyncio.sleep(ex.faults.latency_ms / 1000)
            raw_query = _raw_query(request)
            raw_body = ""
            if request.method in ("POST", "PUT", "DELETE") and request.can_read_body:
                raw_body = await request.text()
            params: Params = dict(parse_qsl(raw_body, keep_blank_values=True))
            params.update(parse_qsl(raw_query, keep_blank_values=True))
            now = ex.now_ms()
            used = ex.limiter.charge(ip, ep.weight_of(params), now, scope)
            headers["X-MBX-USED-WEIGHT-1M"] = headers["X-MBX-USED-WEIGHT"] = str(used)
            if ex.faults.take_5xx():
                raise errors.service_unavailable()
            api_key = request.headers.get("X-MBX-APIKEY")
            if ep.signed:
                authenticate(ex.keys, api_key, params, raw_query, raw_body, now)
            elif ep.key_only:
                api_key_only(ex.keys, api_key)
            if ep.new_order:
                n_short, n_long = ex.limiter.charge_order(now, scope, ep.order_count)
                if ep.futures:
                    headers["X-MBX-ORDER-COUNT-10S"], headers["X-MBX-ORDER-COUNT-1M"] = str(n_short), str(n_long)
                else:
                    headers["X-MBX-ORDER-COUNT-10S"], headers["X-MBX-ORDER-COUNT-1D"] = str(n_short), str(n_long)
            try:
                body = ep.handler(ex, params)
            finally:
                if request.method != "GET":  # leverage, margin type etc. emit no order event
                    ex.changed()
            if ep.order_change and ex.faults.take_status_unknown():
                raise errors.status_unknown()
            if ex.faults.take_lose_response(ep.order_change):
                _lose(request)
            return _json(body, headers=headers)
        except ApiError as err:
            if "X-MBX-USED-WEIGHT-1M" not in headers:
                used = ex.limiter.used(ip, ex.now_ms(), scope)
                headers["X-MBX-USED-WEIGHT-1M"] = headers["X-MBX-USED-WEIGHT"] = str(used)
            return _json(err.body(), err.status, {**headers, **err.headers})
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a bug must still answer like Binance does
            log.exception("internal error on %s %s", request.method, request.path)
            err = errors.unknown_error()
            return _json(err.body(), err.status, headers)

    return handle


def _lose(request: web.Request) -> None:
    """Drop the connection without answering (the request was executed)."""
    if request.transport is not None:
        request.transport.abort()
    raise asyncio.CancelledError()


def create_app(ex: SimExchange, run_market: bool = True, saver: StateSaver | None = None) -> web.Application:
    """The whole server. ``saver`` (``--state-file``) keeps the accounts on disk; its cleanup runs
    after the market task's, so the final save on shutdown sees the last bar."""
    app = web.Application()
    if saver is not None:
        app.cleanup_ctx.append(saver.context)
    app[STATE_KEY] = ex
    user = UserStreams(ex)
    hub = StreamHub(ex, user)
    app[WS_CLOSERS_KEY] = [hub.close_all, user.close_all]
    add_ws_routes(app, hub)
    app.router.add_get("/ws-api/v3", user.ws_api_handler)
    for ep in ENDPOINTS:
        app.router.add_route(ep.method, ep.path, _make_handler(ep))
    admin.add_routes(app)

    if run_market:
        async def market_task(app: web.Application) -> AsyncIterator[None]:
            task = asyncio.create_task(ex.run_market())
            yield
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

        app.cleanup_ctx.append(market_task)
    return app
