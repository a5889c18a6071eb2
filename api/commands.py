"""Command routes: pause, resume, flatten, halt, reduce_only (per bot, per mode, global),
set_limit, emergency stop, resume all. Each posts one command onto the worker's stream
(``state.commands.post_command``, user ``api:<token name>``) and answers with the worker's
``CommandResult`` once applied: 200 applied or duplicate, 409 rejected, 504 not yet answered (the
command stays queued and is applied when the worker reads it). Nothing is posted for a request
that fails authentication, scope, validation or the bot lookup.
"""
from __future__ import annotations

import hashlib
from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from api.auth import Caller, operator_scope, read_scope
from api.reads import known_bot
from risk.limits import RiskLimits, limits_view
from state.commands import MODES, CommandName, Scope, await_result, new_command, post_command, seen
from state.models import CommandResult
from state.reader import StateReader

router = APIRouter(prefix="/api/v1", tags=["commands"])
STATE_ACTIONS: tuple[CommandName, ...] = ("pause", "resume", "flatten", "halt", "reduce_only")
LIMITS = tuple(limits_view(RiskLimits()))  # every limit a bot has (the execution facts are not limits)
_WHAT = {"pause": "no new entries; exits keep running", "resume": "back to ACTIVE",
         "flatten": "close every position at market, then PAUSED", "halt": "no orders at all",
         "reduce_only": "only orders that shrink exposure"}


class CommandBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=500, description="recorded in the audit")


class SetLimitBody(CommandBody):
    limit: str = Field(description="a bots[].risk key, e.g. max_position_pct")
    value: str = Field(min_length=1, max_length=64, description="the new, lower value ('22,2' for hours, "
                                                               "'BTCUSDT,ETHUSDT' for symbols)")

    @field_validator("limit")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in LIMITS:
            raise ValueError(f"unknown limit {v!r}; known: {', '.join(LIMITS)}")
        return v

    @field_validator("value", mode="before")
    @classmethod
    def _text(cls, v: object) -> object:
        return str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v


class CommandAnswer(BaseModel):
    status: Literal["applied", "duplicate", "rejected", "queued"]
    message: str
    nonce: str
    entry_id: str = ""
    time: int = 0


def _nonce(caller: Caller, key: str | None) -> str | None:
    """An Idempotency-Key makes the nonce: a retried request is the same command."""
    if not key:
        return None
    if len(key) > 200:
        raise HTTPException(422, "Idempotency-Key: at most 200 characters")
    return "api-" + hashlib.sha256(f"{caller.name}:{key}".encode()).hexdigest()[:40]


def _answer(result: CommandResult) -> JSONResponse:
    body = CommandAnswer(status=result.status, message=result.message, nonce=result.nonce, entry_id=result.entry_id,
                         time=result.time).model_dump()
    return JSONResponse(body, status_code=409 if result.status == "rejected" else 200)


def send(request: Request, caller: Caller, cmd: CommandName, scope: Scope, target: str = "", reason: str = "",
         limit: str = "", value: str = "", idempotency_key: str | None = None) -> JSONResponse:
    """Post the command and wait for the worker's answer (the one path every command route takes)."""
    r = request.app.state.r
    nonce = _nonce(caller, idempotency_key)
    if nonce is not None and seen(r, nonce):
        result = StateReader(r).command_result(nonce)
        if result is not None:
            return _answer(result)
    try:
        command = new_command(cmd, scope, target, user=caller.user, reason=reason, limit=limit, value=value,
                              nonce=nonce)
    except ValidationError as exc:  # the command's own rules (e.g. a limit's value): nothing is posted
        raise HTTPException(422, "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: "
                                           f"{str(e['msg']).removeprefix('Value error, ')}"
                                           for e in exc.errors())) from None
    entry_id = post_command(r, command)
    result = await_result(r, command.nonce, request.app.state.settings.command_timeout_s)
    if result is None:
        timeout = request.app.state.settings.command_timeout_s
        body = CommandAnswer(status="queued", nonce=command.nonce, entry_id=entry_id,
                             message=f"the worker has not applied {command.label} within {timeout:g} s: it is still "
                                     "queued and is applied when the worker reads it; follow it at "
                                     f"/api/v1/commands/{command.nonce}").model_dump()
        return JSONResponse(body, status_code=504)
    return _answer(result)


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": CommandAnswer, "description": "applied (or a duplicate of one applied)"},
    409: {"model": CommandAnswer, "description": "the worker rejected it (the message says why)"},
    504: {"model": CommandAnswer, "description": "not answered in time: still queued"},
}


def _route(path: str, cmd: CommandName, scope: Scope, summary: str) -> None:
    def handler(request: Request, body: CommandBody | None = None, caller: Caller = Depends(operator_scope),
                idempotency_key: str | None = Header(None)) -> JSONResponse:
        target = request.path_params.get("bot") or request.path_params.get("mode") or ""
        if scope == "bot":
            known_bot(request, target)
        if scope == "mode" and target not in MODES:
            raise HTTPException(404, f"no mode {target!r}; modes: {', '.join(MODES)}")
        return send(request, caller, cmd, scope, target, (body or CommandBody()).reason,
                    idempotency_key=idempotency_key)

    handler.__name__ = f"{cmd}_{scope}"
    router.add_api_route(path, handler, methods=["POST"], summary=summary, responses=_RESPONSES,
                         response_model=CommandAnswer)


for _cmd in STATE_ACTIONS:
    _route(f"/bots/{{bot}}/{_cmd}", _cmd, "bot", f"{_cmd} one bot: {_WHAT[_cmd]}")
    _route(f"/modes/{{mode}}/{_cmd}", _cmd, "mode", f"{_cmd} every bot of a mode (ghost, paper, live)")
    _route(f"/global/{_cmd}", _cmd, "global", f"{_cmd} everything (the global state)")
_route("/emergency_stop", "emergency_stop", "global",
       "Emergency stop: every bot in every mode closes its positions at market and is paused")
_route("/resume_all", "resume_all", "global", "Resume all: the global state, every mode and every bot to ACTIVE")


@router.post("/bots/{bot}/set_limit", response_model=CommandAnswer, responses=_RESPONSES,
             summary="Lower one risk limit of a bot at once (raising is refused: it needs a restart)")
def set_limit(request: Request, bot: str, body: SetLimitBody, caller: Caller = Depends(operator_scope),
              idempotency_key: str | None = Header(None)) -> JSONResponse:
    known_bot(request, bot)
    return send(request, caller, "set_limit", "bot", bot, body.reason, body.limit, body.value, idempotency_key)


@router.get("/commands/{nonce}", response_model=CommandAnswer, dependencies=[Depends(read_scope)],
            summary="The worker's answer to a command (404 while it is queued or unknown)")
def command_result(request: Request, nonce: str) -> JSONResponse:
    result = StateReader(request.app.state.r).command_result(nonce)
    if result is None:
        raise HTTPException(404, f"no answer for {nonce!r} yet: queued, or unknown")
    return _answer(result)
