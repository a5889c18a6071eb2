"""The FastAPI application: routers, the body-size limit, error shapes, the access log.

Every error answers ``{"detail": "<field or reason>: <rule>"}``: 401 (token), 403 (scope),
404 (unknown bot or result), 413 (body over ``BOT_API_MAX_BODY_BYTES``), 422 (each bad field
named), 409 (the worker rejected the command), 504 (the worker has not answered yet; the command
stays queued). The access log has method, path, status and token name, never a query string or
a header (a secret put there by mistake would be logged).
"""
from __future__ import annotations

import logging
import re
import time
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import TokenStore
from api.settings import ApiSettings, WebhookSettings

log = logging.getLogger("api")
access = logging.getLogger("api.access")

DESCRIPTION = """Read the bots' state and send them commands, through the same Redis command stream
and audit as the dashboard. Authenticate with `Authorization: Bearer <token>` (tokens from
`BOT_API_TOKENS`: scope `read` for GETs and the validate-trade dry run, `operator` for commands).
Commands answer with the worker's result once applied (200 applied/duplicate, 409 rejected) or 504
after `BOT_API_COMMAND_TIMEOUT_S` (still queued: `GET /api/v1/commands/{nonce}` follows it).
An `Idempotency-Key` header makes a retried command apply once.

`POST /webhook/{bot}` takes trading signals (TradingView alerts or plain JSON) authenticated by
the bot's webhook secret instead of a token: see docs/operations.md."""


class BodyLimit:
    """413 for a body over ``limit`` bytes, before the route runs (declared or streamed)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._too_large(send)
            return
        chunks, size, more = [], 0, True
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body = msg.get("body", b"")
            size += len(body)
            if size > self.limit:
                await self._too_large(send)
                return
            chunks.append(body)
            more = msg.get("more_body", False)
        whole = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": whole, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        resp = JSONResponse({"detail": f"request body over {self.limit} bytes"}, status_code=413)
        await resp({"type": "http"}, _nothing, send)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def create_app(r: redis.Redis, settings: ApiSettings, tokens: TokenStore, webhook: WebhookSettings | None = None,
               webhook_secrets: dict[str, bytes] | None = None, fees: tuple[float, float] = (0.1, 2.0)) -> FastAPI:
    """The app over Redis client ``r`` (decode_responses=True). ``fees``: the paper (fee %, slippage bps)
    the validate-trade dry run charges as the worker does."""
    from api import commands, reads, validate
    from api import webhook as webhook_routes

    app = FastAPI(title="Trading bot API", version="1", description=DESCRIPTION, docs_url="/docs",
                  redoc_url=None)
    app.state.r = r
    app.state.settings = settings
    app.state.tokens = tokens
    app.state.fees = fees
    app.state.webhook = webhook_routes.WebhookGate(webhook or WebhookSettings(), webhook_secrets or {})

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for e in exc.errors():
            field, rule = _field(e["loc"]), str(e["msg"]).removeprefix("Value error, ")
            named = re.match(r"^(\w+): (.*)$", rule, re.S)
            if field == "body" and named:  # a model-level rule that names its field itself
                field, rule = named.groups()
            errors.append({"field": field, "rule": rule})
        return JSONResponse({"detail": "; ".join(f"{e['field']}: {e['rule']}" for e in errors), "errors": errors},
                            status_code=422)

    @app.middleware("http")
    async def _access_log(request: Request, call_next):  # type: ignore[no-untyped-def]
        t0 = time.monotonic()
        response = await call_next(request)
        caller = getattr(request.state, "caller", None)
        access.info("%s %s %d %.0f ms %s", request.method, request.url.path, response.status_code,
                    1000 * (time.monotonic() - t0), caller.name if caller else "-")
        return response

    app.include_router(reads.router)
    app.include_router(validate.router)
    app.include_router(commands.router)
    app.include_router(webhook_routes.router)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app
