"""Loopback-only admin routes: fault injection, price control, market speed, state.

    GET    /admin/faults            current faults
    POST   /admin/faults            arm faults (JSON, see faults.py) incl. rate_limit_burst, drop_ws
    DELETE /admin/faults            clear faults, rate-limit counters and bans
    POST   /admin/price             {"symbol", "price", "volume"?}: trade straight to a price
    POST   /admin/advance           {"steps": N}: step the price source N times
    POST   /admin/speed             {"speed": X}: market time per wall time (0 = paused)
    POST   /admin/premium           {"symbol", "premium"}: the futures mark's premium over the index
                                    (a fraction, 0.001 = 0.1 %), which drives the funding rate
    POST   /admin/basis             {"symbol", "basis"}: USD-M trades at spot x (1 + basis) from the next
                                    bar on (a fraction; its klines, matching and mark follow; 0 = off)
    GET    /admin/state             market time, prices, speed, faults, funding
"""
from __future__ import annotations

import ipaddress
import json
from decimal import Decimal
from typing import Any

from aiohttp import web

from simulator.filters import fmt8
from simulator.state import SimExchange

STATE_KEY = web.AppKey("sim_exchange", SimExchange)
WS_CLOSERS_KEY = web.AppKey("ws_closers", list)


def _json(body: object, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, separators=(",", ":")))


def _loopback(request: web.Request) -> None:
    try:
        ok = ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        ok = False
    if not ok:
        raise web.HTTPForbidden(text="admin endpoints are loopback-only")


async def _admin_body(request: web.Request) -> dict[str, Any]:
    _loopback(request)
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="body must be JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return body


async def admin_get_faults(request: web.Request) -> web.Response:
    _loopback(request)
    return _json(request.app[STATE_KEY].faults.as_dict())


async def admin_post_faults(request: web.Request) -> web.Response:
    ex = request.app[STATE_KEY]
    body = await _admin_body(request)
    try:
        ex.faults.update(body)
        burst = int(body.get("rate_limit_burst", 0))
    except (TypeError, ValueError) as e:
        raise web.HTTPBadRequest(text=str(e)) from None
    if burst:  # both weight buckets: spot (/api) and USD-M (/fapi)
        for scope in ("api", "fapi"):
            ex.limiter.burst(request.remote or "?", burst, ex.now_ms(), scope)
    if body.get("drop_ws"):
        for close in list(request.app.get(WS_CLOSERS_KEY, [])):
            await close()
    return _json(ex.faults.as_dict())


async def admin_delete_faults(request: web.Request) -> web.Response:
    _loopback(request)
    ex = request.app[STATE_KEY]
    ex.faults.reset()
    ex.limiter.reset()
    return _json(ex.faults.as_dict())


async def admin_price(request: web.Request) -> web.Response:
    ex = request.app[STATE_KEY]
    body = await _admin_body(request)
    sym = str(body.get("symbol", ""))
    if sym not in ex.specs:
        raise web.HTTPBadRequest(text="unknown symbol")
    try:
        price = Decimal(str(body["price"]))
        volume = Decimal(str(body["volume"])) if "volume" in body else None
    except Exception:  # noqa: BLE001
        raise web.HTTPBadRequest(text="price (and optional volume) must be numbers") from None
    bar = ex.move_price(sym, price, volume)
    return _json({"symbol": sym, "price": fmt8(bar.close), "time": bar.open_time})


async def admin_advance(request: web.Request) -> web.Response:
    ex = request.app[STATE_KEY]
    body = await _admin_body(request)
    steps = int(body.get("steps", 1))
    ex.advance(max(0, min(steps, 100_000)))
    return _json({"marketTime": ex.market_ms})


async def admin_speed(request: web.Request) -> web.Response:
    ex = request.app[STATE_KEY]
    body = await _admin_body(request)
    ex.speed = float(body.get("speed", ex.speed))
    return _json({"speed": ex.speed})


async def admin_premium(request: web.Request) -> web.Response:
    ex = request.app[STATE_KEY]
    body = await _admin_body(request)
    sym = str(body.get("symbol", ""))
    if sym not in ex.futures_specs:
        raise web.HTTPBadRequest(text="symbol: not a listed futures symbol")
    try:
        ex.funding.set_premium(sym, Decimal(str(body["premium"])))
    except KeyError:
        raise web.HTTPBadRequest(text="premium: required (a fraction, e.g. 0.001 for 0.1 %)") from None
    except (ArithmeticError, ValueError) as e:
        raise web.HTTPBadRequest(text=f"premium: {e}") from None
    return _json({"symbol": sym, "premium": str(ex.funding.premiums[sym]), "indexPrice": fmt8(ex.funding.index(sym)),
                  "markPrice": fmt8(ex.funding.mark(sym))})


async def admin_basis(request: web.Request) -> web.Response:
    ex = request.app[STATE_KEY]
    body = await _admin_body(request)
    sym = str(body.get("symbol", ""))
    if sym not in ex.futures_specs:
        raise web.HTTPBadRequest(text="symbol: not a listed futures symbol")
    try:
        basis = Decimal(str(body["basis"]))
    except KeyError:
        raise web.HTTPBadRequest(text="basis: required (a fraction, e.g. 0.01 for futures 1 % over spot)") from None
    except ArithmeticError as e:
        raise web.HTTPBadRequest(text=f"basis: {e}") from None
    if not Decimal("-0.5") < basis < Decimal("0.5"):
        raise web.HTTPBadRequest(text="basis: must be between -0.5 and 0.5")
    ex.basis[sym] = basis
    return _json({"symbol": sym, "basis": str(basis), "price": fmt8(ex.futures_price(sym))})


async def admin_state(request: web.Request) -> web.Response:
    _loopback(request)
    ex = request.app[STATE_KEY]
    return _json({
        "marketTime": ex.market_ms,
        "serverTime": ex.now_ms(),
        "speed": ex.speed,
        "prices": {s: fmt8(ex.engine.price(s)) for s in ex.specs},
        "faults": ex.faults.as_dict(),
        "openOrders": len(ex.engine.open_orders()),
        "openOrderLists": len(ex.order_lists.open_lists()),
        "funding": {"nextFundingTime": ex.funding.next_ms,
                    "premiums": {s: str(v) for s, v in ex.funding.premiums.items()},
                    "estimatedRates": {s: fmt8(ex.funding.estimate(s)) for s in ex.futures_specs}},
    })


IDENTITY = {"venue": "local", "name": "local Binance-compatible exchange (simulator)", "real_money": False}


async def local_identity(request: web.Request) -> web.Response:
    """Proof that this is the local exchange, not Binance: the worker asks before a bot trades on a venue
    configured as ``local`` (a ``local_url`` pointing at a real host is refused). Public, no secrets."""
    return _json(IDENTITY)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/local/identity", local_identity)
    app.router.add_get("/admin/faults", admin_get_faults)
    app.router.add_post("/admin/faults", admin_post_faults)
    app.router.add_delete("/admin/faults", admin_delete_faults)
    app.router.add_post("/admin/price", admin_price)
    app.router.add_post("/admin/advance", admin_advance)
    app.router.add_post("/admin/speed", admin_speed)
    app.router.add_post("/admin/premium", admin_premium)
    app.router.add_post("/admin/basis", admin_basis)
    app.router.add_get("/admin/state", admin_state)
