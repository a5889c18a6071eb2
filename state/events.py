"""Events: what happened, told to people (notifier, Telegram, the Audit tab, the REST API).

An :class:`Event` is one typed record — time, kind, severity, bot, title, detail, data — in the
capped stream ``keys.EVENTS``. The worker queues events on the pipeline of the change they
describe (:func:`queue_event`), so an event exists exactly when its change does; a process
outside a transaction uses :func:`publish_event`. One builder per kind below fixes each kind's
title, severity and data, so every publisher says the same thing the same way.

:func:`read_events` and :func:`read_audit` are the filtered readers the Audit tab and the API use.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Iterable, Literal

import redis
from pydantic import BaseModel, ConfigDict, Field

from state import keys
from state.models import AuditRecord, TradeRecord

if TYPE_CHECKING:
    from state.models import BotUpdate

EVENTS_KEEP = 50_000  # MAXLEN ~ of the stream: weeks of events for a handful of bots

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")
SEVERITY_RANK: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}

EventKind = Literal[
    "trade_opened", "trade_closed", "order_refused", "state_changed", "risk_breach", "kill_switch_applied",
    "kill_switch_failed", "reconciliation_drift", "preflight_failed", "venue_unhealthy", "venue_ban", "stale_data",
    "worker_started", "worker_stopped", "daily_summary", "command_rejected",
]
EVENT_KINDS: tuple[str, ...] = EventKind.__args__  # type: ignore[attr-defined]


class Event(BaseModel):
    """One event. ``time``: wall-clock epoch ms when it was published (market times go in ``data``).
    ``bot``: empty for worker-wide events. ``id``: the stream entry id, filled in by the readers."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    time: int = Field(ge=0)
    kind: EventKind
    severity: Severity
    bot: str = Field("", max_length=64)
    title: str = Field(min_length=1, max_length=200)
    detail: str = Field("", max_length=2000)
    data: dict[str, Any] = Field(default_factory=dict)
    id: str = ""

    def at_least(self, severity: str) -> bool:
        return SEVERITY_RANK[self.severity] >= SEVERITY_RANK[severity]


def _now() -> int:
    return int(time.time() * 1000)


def _event(kind: EventKind, severity: Severity, title: str, detail: str = "", bot: str = "",
           now_ms: int | None = None, **data: Any) -> Event:
    return Event(time=_now() if now_ms is None else now_ms, kind=kind, severity=severity, bot=bot,
                 title=title[:200], detail=detail[:2000], data=data)


# ---- one builder per kind -------------------------------------------------------------------


def trade_opened(bot: str, symbol: str, side: str, quantity: float, price: float, mode: str = "",
                 now_ms: int | None = None, **extra: Any) -> Event:
    return _event("trade_opened", "info", f"{bot}: opened {side} {quantity:.8g} {symbol} @ {price:.8g}",
                  bot=bot, now_ms=now_ms, symbol=symbol, side=side, quantity=quantity, price=price, mode=mode,
                  **extra)


def trade_closed(trade: TradeRecord, mode: str = "", now_ms: int | None = None) -> Event:
    t = trade
    return _event("trade_closed", "info", f"{t.bot}: closed {t.side} {t.symbol}, P&L {t.pnl:+.2f} "
                                          f"({t.return_pct:+.2f}%)",
                  f"entry {t.entry_price:.8g} -> exit {t.exit_price:.8g}, fees {t.fees:.4f}, {t.exit_reason}",
                  bot=t.bot, now_ms=now_ms, symbol=t.symbol, side=t.side, quantity=t.quantity, pnl=t.pnl,
                  return_pct=t.return_pct, exit_reason=t.exit_reason, exit_time=t.exit_time, mode=mode)


def order_refused(bot: str, rule: str, detail: str, purpose: str = "ENTRY", symbol: str = "",
                  now_ms: int | None = None) -> Event:
    return _event("order_refused", "warning", f"{bot}: {purpose.lower()} refused by risk rule {rule}", detail,
                  bot=bot, now_ms=now_ms, rule=rule, purpose=purpose, symbol=symbol)


def state_changed(scope: str, target: str, old: str, new: str, who: str, why: str,
                  now_ms: int | None = None) -> Event:
    where = target if scope == "bot" else (f"mode {target}" if scope == "mode" else "global")
    severity: Severity = "info" if new == "ACTIVE" else ("critical" if new == "HALTED" else "warning")
    return _event("state_changed", severity, f"{where}: {old} -> {new} (by {who})", why,
                  bot=target if scope == "bot" else "", now_ms=now_ms, scope=scope, target=target, old=old, new=new,
                  who=who)


def risk_breach(bot: str, rule: str, state: str, reason: str, now_ms: int | None = None) -> Event:
    return _event("risk_breach", "critical", f"{bot}: risk limit {rule} breached -> {state}", reason, bot=bot,
                  now_ms=now_ms, rule=rule, state=state)


def kill_switch(cmd: str, target: str, who: str, message: str, ok: bool, now_ms: int | None = None) -> Event:
    """``ok``: every position it had to close was closed (else kind ``kill_switch_failed``)."""
    if ok:
        return _event("kill_switch_applied", "warning", f"{cmd} {target or 'global'} applied (by {who})", message,
                      bot=target if target and cmd in ("flatten", "pause", "halt") else "", now_ms=now_ms, cmd=cmd,
                      target=target, who=who, rule=cmd)
    return _event("kill_switch_failed", "critical", f"{cmd} {target or 'global'} FAILED (by {who})", message,
                  bot=target if target and cmd in ("flatten", "pause", "halt") else "", now_ms=now_ms, cmd=cmd,
                  target=target, who=who, rule=cmd)


def reconciliation_drift(bot: str, summary: str, now_ms: int | None = None, **extra: Any) -> Event:
    return _event("reconciliation_drift", "critical", f"{bot}: the venue disagrees with the bot; paused", summary,
                  bot=bot, now_ms=now_ms, rule="reconciliation_drift", **extra)


def preflight_failed(bot: str, summary: str, now_ms: int | None = None, **extra: Any) -> Event:
    return _event("preflight_failed", "critical", f"{bot}: pre-flight failed; halted", summary, bot=bot,
                  now_ms=now_ms, rule="preflight", **extra)


def venue_unhealthy(venue: str, detail: str, banned_until_ms: int | None = None, bot: str = "",
                    now_ms: int | None = None) -> Event:
    """The venue fails (errors, 429); with ``banned_until_ms`` it has banned us (418): kind venue_ban."""
    if banned_until_ms is not None:
        return _event("venue_ban", "critical", f"{venue}: the venue banned this IP until {banned_until_ms}", detail,
                      bot=bot, now_ms=now_ms, venue=venue, banned_until_ms=banned_until_ms, rule="ban")
    return _event("venue_unhealthy", "warning", f"{venue}: venue unhealthy", detail, bot=bot, now_ms=now_ms,
                  venue=venue, rule="unhealthy")


def stale_data(symbol: str, age_s: float, detail: str = "", now_ms: int | None = None) -> Event:
    return _event("stale_data", "warning", f"{symbol}: no market data for {age_s:.0f} s", detail, now_ms=now_ms,
                  symbol=symbol, age_s=age_s, rule=symbol)


def worker_started(pid: int, bots: int, version: str = "", now_ms: int | None = None) -> Event:
    return _event("worker_started", "info", f"worker started (pid {pid}, {bots} bots)", now_ms=now_ms, pid=pid,
                  bots=bots, version=version)


def worker_stopped(pid: int, reason: str, severity: Severity = "warning", now_ms: int | None = None) -> Event:
    """A clean stop (warning); the notifier publishes none but sends a critical one itself when the
    heartbeat disappears (the worker died)."""
    return _event("worker_stopped", severity, f"worker stopped (pid {pid})", reason, now_ms=now_ms, pid=pid)


def daily_summary(day: str, per_bot: dict[str, dict[str, float]], now_ms: int | None = None) -> Event:
    """``per_bot``: name -> {"pnl": ..., "trades": ..., "equity": ...} for the UTC day ``day``."""
    pnl = sum(float(v.get("pnl", 0.0)) for v in per_bot.values())
    trades = int(sum(float(v.get("trades", 0)) for v in per_bot.values()))
    lines = "; ".join(f"{name} {float(v.get('pnl', 0.0)):+.2f} ({int(v.get('trades', 0))} trades)"
                      for name, v in sorted(per_bot.items()))
    return _event("daily_summary", "info", f"{day}: P&L {pnl:+.2f} over {trades} trades, {len(per_bot)} bots",
                  lines, now_ms=now_ms, day=day, bots=per_bot, pnl=pnl, trades=trades)


def command_rejected(cmd: str, target: str, who: str, why: str, now_ms: int | None = None) -> Event:
    return _event("command_rejected", "warning", f"command {cmd} {target} by {who} rejected".replace("  ", " "),
                  why, now_ms=now_ms, cmd=cmd, target=target, who=who, rule=cmd)


# ---- what the worker's records tell people --------------------------------------------------


def events_of_update(u: "BotUpdate") -> list[Event]:
    """The events one bot's batch holds: trades closed, entries filled, orders refused by risk."""
    mode = u.snapshot.mode
    out = [trade_closed(t, mode) for t in u.trades]
    entries = {o.client_order_id for o in u.orders if o.purpose == "ENTRY" and o.status == "FILLED"}
    out += [trade_opened(f.bot, f.symbol, f.side, f.quantity, f.price, mode) for f in u.fills
            if f.client_order_id in entries]
    out += [order_refused(u.snapshot.name, d.rule, d.detail, d.purpose) for d in u.risk if not d.allowed]
    return out


def events_of_audit(a: AuditRecord) -> list[Event]:
    """The events an audit record tells of: breaches, drift, refused pre-flights, health, kill switches,
    rejected commands."""
    state, _, reason = a.detail.partition(": ")
    if a.result == "rejected":
        return [command_rejected(a.command, a.target, a.who, a.detail, now_ms=a.time)]
    if a.who == "risk":
        return [risk_breach(a.target, a.command, state, reason, now_ms=a.time)]
    if a.who == "reconcile" and a.command == "drift":
        return [reconciliation_drift(a.target, a.detail, now_ms=a.time)]
    if a.who == "preflight" and a.result == "refused":
        return [preflight_failed(a.target, a.detail, now_ms=a.time)]
    if a.who == "health" and a.command == "reduce_only":
        if "no market data" in a.detail:
            return [stale_data(a.target, 0.0, a.detail, now_ms=a.time)]
        return [venue_unhealthy("venue", a.detail, bot=a.target, now_ms=a.time)]
    if a.command in ("flatten", "emergency_stop", "halt") and a.result in ("applied", "pending", "closed"):
        return [kill_switch(a.command, a.target, a.who, a.detail, ok=a.result != "pending", now_ms=a.time)]
    return []


# ---- writing --------------------------------------------------------------------------------


def queue_event(pipe: "redis.client.Pipeline | redis.Redis", event: Event) -> None:
    """XADD ``event`` on ``pipe``: inside the worker's MULTI/EXEC it lands with the change it tells of."""
    pipe.xadd(keys.EVENTS, {"data": event.model_dump_json(exclude={"id"})}, maxlen=EVENTS_KEEP, approximate=True)


def ensure_notifier_group(r: "redis.Redis") -> None:
    """Create the notifier's consumer group at the stream's end ('$') if it is not there: a first
    start sends no history, and the worker calls it before its first event, so an event written
    before the notifier first runs still reaches it."""
    try:
        r.xgroup_create(keys.EVENTS, keys.NOTIFIER_GROUP, id="$", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def publish_event(r: redis.Redis, event: Event) -> str:
    """XADD one event outside a transaction (worker start/stop, a process of its own). Returns its id."""
    entry_id = r.xadd(keys.EVENTS, {"data": event.model_dump_json(exclude={"id"})}, maxlen=EVENTS_KEEP,
                      approximate=True)
    return _s(entry_id)


# ---- reading --------------------------------------------------------------------------------


def _s(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def parse_event(entry_id: object, fields: dict[Any, Any]) -> Event | None:
    """The event in one stream entry, or None for an entry that is not one (never raises)."""
    raw = fields.get(b"data", fields.get("data")) if fields else None
    if raw is None:
        return None
    try:
        return Event.model_validate_json(raw).model_copy(update={"id": _s(entry_id)})
    except ValueError:
        return None


def read_events(r: redis.Redis, *, bot: str | None = None, kinds: Iterable[str] | None = None,
                min_severity: str | None = None, since_ms: int | None = None, until_ms: int | None = None,
                limit: int = 200, scan_max: int = 20_000) -> list[Event]:
    """Events newest first, filtered: ``bot`` (exact; "" = worker-wide events), ``kinds``,
    ``min_severity``, ``since_ms``/``until_ms`` (inclusive, on the event's time). Reads at most
    ``scan_max`` entries (pages of 500 back from ``until_ms``), so a narrow filter stays bounded."""
    wanted = set(kinds) if kinds else None
    rank = SEVERITY_RANK[min_severity] if min_severity else 0
    # Stream ids carry Redis's clock; a margin covers a publisher whose clock differs a little.
    hi = f"{until_ms + 60_000}" if until_ms is not None else "+"
    lo = f"{max(0, since_ms - 60_000)}" if since_ms is not None else "-"
    out: list[Event] = []
    scanned = 0
    while scanned < scan_max and len(out) < limit:
        page = r.xrevrange(keys.EVENTS, max=hi, min=lo, count=500)
        if not page:
            break
        for entry_id, fields in page:
            e = parse_event(entry_id, fields)
            if e is None or (bot is not None and e.bot != bot) or (wanted is not None and e.kind not in wanted):
                continue
            if SEVERITY_RANK[e.severity] < rank or (since_ms is not None and e.time < since_ms):
                continue
            if until_ms is not None and e.time > until_ms:
                continue
            out.append(e)
            if len(out) >= limit:
                break
        scanned += len(page)
        last = _s(page[-1][0])
        ms, seq = (int(x) for x in last.split("-"))
        hi = f"{ms}-{seq - 1}" if seq > 0 else f"{ms - 1}"
        if ms <= 0 and seq <= 0:
            break
    return out


def read_audit(r: redis.Redis, *, bot: str | None = None, who: str | None = None,
               results: Iterable[str] | None = None, since_ms: int | None = None, until_ms: int | None = None,
               limit: int = 200, scan_max: int = 20_000) -> list[AuditRecord]:
    """Audit records (``keys.AUDIT``) newest first, filtered: ``bot`` (the record's target), ``who``
    (prefix: 'api:' matches every API token), ``results`` (applied, rejected, duplicate, ...),
    ``since_ms``/``until_ms`` on the record's time."""
    wanted = set(results) if results else None
    out: list[AuditRecord] = []
    hi, scanned = "+", 0
    while scanned < scan_max and len(out) < limit:
        page = r.xrevrange(keys.AUDIT, max=hi, min="-", count=500)
        if not page:
            break
        for _id, fields in page:
            raw = fields.get(b"data", fields.get("data"))
            try:
                a = AuditRecord.model_validate_json(raw) if raw is not None else None
            except ValueError:
                a = None
            if a is None or (bot is not None and a.target != bot) or (who is not None and not a.who.startswith(who)):
                continue
            if (wanted is not None and a.result not in wanted) or (since_ms is not None and a.time < since_ms):
                continue
            if until_ms is not None and a.time > until_ms:
                continue
            out.append(a)
            if len(out) >= limit:
                break
        scanned += len(page)
        ms, seq = (int(x) for x in _s(page[-1][0]).split("-"))
        hi = f"{ms}-{seq - 1}" if seq > 0 else f"{ms - 1}"
        if since_ms is not None and ms < since_ms - 60_000:
            break
    return out
