"""Read-only routes: health, status, bots with state and P&L, positions, trades, equity, risk,
denials, audit, events. Everything comes through ``state.reader`` and ``state.events``."""
from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.auth import read_scope
from state.events import EVENT_KINDS, Event, read_audit, read_events
from state.models import (AuditRecord, BotMeta, BotSnapshot, ControlRecord, EquityRecord, Heartbeat, PositionView,
                          RiskDecisionRecord, RiskView, TradeRecord)
from state.notifier_store import NotifierStatus, read_notifier_status
from state.reader import StateReader

router = APIRouter(prefix="/api/v1")
Read = Depends(read_scope)


def reader(request: Request) -> StateReader:
    return StateReader(request.app.state.r)


def known_bot(request: Request, bot: str) -> BotMeta:
    """The bot's meta, or 404 naming the bots there are."""
    bots = reader(request).bots()
    if bot not in bots:
        raise HTTPException(404, f"no bot named {bot!r}; bots: {', '.join(bots) or 'none'}")
    return bots[bot]


class BotView(BaseModel):
    name: str
    mode: str
    kind: str
    symbol: str
    strategy: str
    market: str
    state: str  # effective: the most restrictive of global, mode and bot
    control: ControlRecord  # the bot's own state record (who set it, when, why)
    starting_balance: float = 0.0
    equity: float = 0.0
    pnl: float = 0.0
    pnl_pct: float = 0.0
    realized_pnl: float = 0.0
    unrealized_pnl: float = 0.0
    trade_count: int = 0
    win_rate_pct: float = 0.0
    open_positions: int = 0
    updated_at: int = 0


class BotDetail(BotView):
    positions: list[PositionView]
    risk: RiskView
    denials: dict[str, int]


def _view(m: BotMeta, s: BotSnapshot | None) -> dict[str, Any]:
    base: dict[str, Any] = dict(name=m.name, mode=m.mode, kind=m.kind, symbol=m.symbol, strategy=m.strategy,
                                market=m.market)
    if s is None:
        return {**base, "state": "UNKNOWN", "control": ControlRecord()}
    return {**base, "state": s.effective_state.value, "control": s.control, "starting_balance": s.starting_balance,
            "equity": s.equity, "pnl": s.pnl, "pnl_pct": s.pnl_pct, "realized_pnl": s.realized_pnl,
            "unrealized_pnl": s.unrealized_pnl, "trade_count": s.trade_count, "win_rate_pct": s.win_rate_pct,
            "open_positions": len(s.open_positions), "updated_at": s.updated_at}


class Health(BaseModel):
    worker: str
    heartbeat_age_s: float | None = None


@router.get("/health", response_model=Health, summary="Worker liveness (no token needed)",
            responses={503: {"model": Health, "description": "no worker heartbeat"}})
def health(request: Request) -> Any:
    hb = reader(request).heartbeat()
    if hb is None:
        return JSONResponse(Health(worker="down").model_dump(), status_code=503)
    return Health(worker="up", heartbeat_age_s=round(max(0.0, time.time() - hb.time / 1000), 3))


class Status(BaseModel):
    worker: str
    heartbeat: Heartbeat | None
    global_state: ControlRecord
    modes: dict[str, ControlRecord]
    bots: int
    notifier: NotifierStatus | None


@router.get("/status", response_model=Status, dependencies=[Read], summary="Worker, trading states, notifier")
def status(request: Request) -> Status:
    r = reader(request)
    hb = r.heartbeat()
    return Status(worker="up" if hb else "down", heartbeat=hb, global_state=r.control("global"),
                  modes={m: r.control("mode", m) for m in ("ghost", "paper", "live")}, bots=len(r.bots()),
                  notifier=read_notifier_status(request.app.state.r))


@router.get("/bots", response_model=list[BotView], dependencies=[Read], summary="Every bot with state and P&L")
def bots(request: Request) -> list[dict[str, Any]]:
    r = reader(request)
    metas = r.bots()
    snaps = r.snapshots(list(metas))
    return [_view(m, snaps.get(n)) for n, m in metas.items()]


@router.get("/bots/{bot}", response_model=BotDetail, dependencies=[Read], summary="One bot, its positions and risk")
def bot_detail(request: Request, bot: str) -> dict[str, Any]:
    meta = known_bot(request, bot)
    s = reader(request).snapshots([bot]).get(bot)
    return {**_view(meta, s), "positions": s.open_positions if s else [], "risk": s.risk if s else RiskView(),
            "denials": s.denials if s else {}}


class PositionRow(PositionView):
    bot: str
    mode: str


@router.get("/positions", response_model=list[PositionRow], dependencies=[Read], summary="Every open position")
def positions(request: Request) -> list[PositionRow]:
    return [PositionRow(bot=s.name, mode=s.mode, **p.model_dump())
            for s in reader(request).snapshots().values() for p in s.open_positions]


@router.get("/bots/{bot}/trades", response_model=list[TradeRecord], dependencies=[Read],
            summary="Closed trades, newest first")
def trades(request: Request, bot: str, limit: int = Query(100, ge=1, le=5000)) -> list[TradeRecord]:
    known_bot(request, bot)
    return reader(request).trades(bot, limit)


@router.get("/bots/{bot}/equity", response_model=list[EquityRecord], dependencies=[Read],
            summary="Mark-to-market equity history, newest first")
def equity(request: Request, bot: str, limit: int = Query(500, ge=1, le=5000)) -> list[EquityRecord]:
    known_bot(request, bot)
    return reader(request).equity(bot, limit)


class RiskAnswer(BaseModel):
    bot: str
    state: str
    risk: RiskView
    denials: dict[str, int]


@router.get("/bots/{bot}/risk", response_model=RiskAnswer, dependencies=[Read],
            summary="Loss, drawdown and exposure against their limits; denial counts per rule")
def risk(request: Request, bot: str) -> RiskAnswer:
    known_bot(request, bot)
    s = reader(request).snapshots([bot]).get(bot)
    if s is None:
        raise HTTPException(404, f"{bot} has not written a snapshot yet")
    return RiskAnswer(bot=bot, state=s.effective_state.value, risk=s.risk, denials=s.denials)


@router.get("/bots/{bot}/denials", response_model=list[RiskDecisionRecord], dependencies=[Read],
            summary="Orders the risk engine refused, newest first, with the rule and the numbers")
def denials(request: Request, bot: str, limit: int = Query(20, ge=1, le=500)) -> list[RiskDecisionRecord]:
    known_bot(request, bot)
    return reader(request).denials(bot, limit)


@router.get("/audit", response_model=list[AuditRecord], dependencies=[Read],
            summary="Commands and their results, newest first")
def audit(request: Request, bot: str | None = None,
          who: str | None = Query(None, description="prefix, e.g. 'api:' or 'telegram:'"),
          result: list[str] | None = Query(None, description="applied, rejected, duplicate, ..."),
          since: int | None = Query(None, ge=0, description="epoch ms"),
          until: int | None = Query(None, ge=0, description="epoch ms"),
          limit: int = Query(200, ge=1, le=5000)) -> list[AuditRecord]:
    return read_audit(request.app.state.r, bot=bot, who=who, results=result, since_ms=since, until_ms=until,
                      limit=limit)


@router.get("/events", response_model=list[Event], dependencies=[Read], summary="Events, newest first")
def events(request: Request, bot: str | None = Query(None, description="'' for worker-wide events"),
           kind: list[str] | None = Query(None, description=", ".join(EVENT_KINDS)),
           severity: str | None = Query(None, pattern="^(info|warning|critical)$", description="at least this"),
           since: int | None = Query(None, ge=0), until: int | None = Query(None, ge=0),
           limit: int = Query(200, ge=1, le=5000)) -> list[Event]:
    bad = sorted(set(kind or []) - set(EVENT_KINDS))
    if bad:
        raise HTTPException(422, f"kind: unknown {bad}; known: {', '.join(EVENT_KINDS)}")
    return read_events(request.app.state.r, bot=bot, kinds=kind, min_severity=severity, since_ms=since,
                       until_ms=until, limit=limit)
