"""Operator commands: one handler per command, registered in a table (as rq's ``command.py`` and
freqtrade's ``rpc.py`` do), and ``handle`` around them: parse, idempotency (a nonce is applied once),
the trading lock, the queued breaches settled, and effect + audit + answer + XACK in one transaction.

Every stream entry is answered and acknowledged, however malformed: a command that does not parse,
names nothing, or fails inside its handler is rejected with a recorded reason, so the reader can
never stall on it and the commands behind it (an emergency stop) are applied.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from core.types import Side, Signal, TradingState
from engine.controls import MODES, TradingControls
from engine.dca_bot import DcaBot
from engine.fleet import AnyBot, Fleet, UnknownTarget, meta
from engine.live_auth import CodeRefused
from risk.limits import parse_limit
from settings import AppConfig
from state.commands import ALL_COMMANDS, Command, CommandRejected, parse_command, signal_payload
from state.connection import NOT_UTF8
from state.lease import LeaseLost
from state.models import AUTOMATIC, AuditRecord, BotMeta, CommandResult
from state.models import BotUpdate, ControlChange
from state.shards import Route
from state.writer import StateWriter

if TYPE_CHECKING:
    from engine.supervisor import VenueSupervisor

log = logging.getLogger("worker")


@dataclass(slots=True)
class Outcome:
    controls: list[ControlChange]
    bots: list[AnyBot]
    message: str
    limit_changes: list[tuple[str, str, object]] = field(default_factory=list)
    dynamic_bots: list[tuple[str, str]] = field(default_factory=list)
    metas: list[BotMeta] = field(default_factory=list)
    pending: bool = False  # applied, but not complete (a close not confirmed yet)
    writes: list[Callable[[Any], None]] = field(default_factory=list)  # another state module's writes


class Runtime(Protocol):
    """What the handlers reach in the worker."""

    app: AppConfig
    fleet: Fleet
    controls: TradingControls
    writer: StateWriter
    supervisor: "VenueSupervisor | None"
    lock: threading.RLock
    backtests: Callable[[str, str, AppConfig, str], str] | None

    def add_bot(self, cfg: object) -> AnyBot: ...

    def settle(self, bots: list[AnyBot], now: int) -> tuple[list[ControlChange], list[AuditRecord]]: ...


Handler = Callable[[Runtime, Command, int], Outcome]
HANDLERS: dict[str, Handler] = {}
# after these the venue view is refreshed at once: the operator checks there that orders are gone
REFRESH_VENUE = ("flatten", "emergency_stop", "adopt", "ignore_drift")


def handler(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        return fn
    return register


# ---- the handlers -------------------------------------------------------------------------------
def _target(cmd: Command) -> str:
    return cmd.target if cmd.scope != "global" else ""


@handler("pause")
def handle_pause(rt: Runtime, cmd: Command, now: int) -> Outcome:
    bots = rt.fleet.scope(cmd.scope, cmd.target)
    ch = rt.controls.set(cmd.scope, _target(cmd), TradingState.PAUSED, cmd.user, cmd.reason or "paused by operator", now)
    return Outcome([ch], bots, f"{cmd.scope} {_target(cmd)} paused: no new entries, exits still run".replace("  ", " "))


def _set_and_report(rt: Runtime, cmd: Command, state: TradingState, effect: str, now: int) -> Outcome:
    bots = rt.fleet.scope(cmd.scope, cmd.target)
    ch = rt.controls.set(cmd.scope, _target(cmd), state, cmd.user, cmd.reason or f"{cmd.cmd} by operator", now)
    if state is TradingState.HALTED:  # a resting ladder would keep buying: HALTED cancels it
        canceled = sum(b.cancel_resting(f"halt by {cmd.user}") for b in bots if isinstance(b, DcaBot))
        if canceled:
            effect += f"; {canceled} resting order(s) canceled"
    shown = list(rt.fleet.bots.values()) if cmd.scope != "bot" else bots
    return Outcome([ch], shown, f"{cmd.scope} {_target(cmd)} {state.value}: {effect}".replace("  ", " "))


@handler("reduce_only")
def handle_reduce_only(rt: Runtime, cmd: Command, now: int) -> Outcome:
    return _set_and_report(rt, cmd, TradingState.REDUCE_ONLY, "only orders that shrink exposure", now)


@handler("halt")
def handle_halt(rt: Runtime, cmd: Command, now: int) -> Outcome:
    return _set_and_report(rt, cmd, TradingState.HALTED, "no orders at all", now)


@handler("resume")
def handle_resume(rt: Runtime, cmd: Command, now: int) -> Outcome:
    bots = rt.fleet.scope(cmd.scope, cmd.target)
    ch = rt.controls.set(cmd.scope, _target(cmd), TradingState.ACTIVE, cmd.user, cmd.reason or "resumed by operator",
                         now)
    still = [b.name for b in bots if rt.controls.effective(b) is not TradingState.ACTIVE]
    msg = f"{cmd.scope} {_target(cmd)} resumed".replace("  ", " ")
    if still:
        msg += f"; still held by a wider state: {', '.join(still)}"
    return Outcome([ch], list(rt.fleet.bots.values()) if cmd.scope != "bot" else bots, msg)


def close_bots(rt: Runtime, bots: list[AnyBot], cmd: Command, why: str, now: int,
               after: TradingState = TradingState.PAUSED) -> tuple[list[ControlChange], str, bool]:
    """Close every bot's exposure at market. Each bot is FLATTEN at once (only orders that shrink
    exposure) and takes ``after`` (or stays HALTED) once flat; a bot not flat yet stays FLATTEN and the
    worker retries every step until it is. Returns (state changes, what happened, all closed)."""
    changes: list[ControlChange] = []
    closed, pending = [], []
    for b in bots:
        what = b.exposure
        changes.append(rt.controls.flatten(b.name, cmd.user, why, now, after))
        if what:
            try:
                b.flatten(f"{cmd.cmd} by {cmd.user}")
            except Exception as exc:  # noqa: BLE001 - one bot's failure must not stop the others' close
                log.exception("flatten of %s failed", b.name)
                pending.append(f"{b.name} {what} ({exc})")
            else:
                if b.exposure:
                    pending.append(f"{b.name} {b.exposure} ({b.last_denial or 'the venue did not confirm it'})")
                else:
                    closed.append(f"{b.name} {what}")
        if not b.exposure:
            done = rt.controls.settle_flatten(b.name, now)
            if done is not None:
                changes.append(done)
    text = f"closed {len(closed)} position(s)" + (f" ({'; '.join(closed)})" if closed else "")
    if pending:
        text += (f"; NOT closed yet: {'; '.join(pending)} — the bot stays FLATTEN (exits only) and the close is "
                 "retried every step until the venue confirms it flat")
    return changes, text, not pending


@handler("flatten")
def handle_flatten(rt: Runtime, cmd: Command, now: int) -> Outcome:
    bots = rt.fleet.scope(cmd.scope, cmd.target)
    why = cmd.reason or "flattened by operator"
    changes, text, done = close_bots(rt, bots, cmd, why, now)
    if cmd.scope != "bot":  # the scope itself takes no new entries either
        changes.insert(0, rt.controls.set(cmd.scope, _target(cmd), TradingState.PAUSED, cmd.user, why, now))
    return Outcome(changes, bots, f"{text}; then {cmd.scope} {_target(cmd)} paused".replace("  ", " "),
                   pending=not done)


@handler("emergency_stop")
def handle_emergency_stop(rt: Runtime, cmd: Command, now: int) -> Outcome:
    bots = list(rt.fleet.bots.values())
    why = cmd.reason or "EMERGENCY STOP"
    changes = [rt.controls.set("global", "", TradingState.PAUSED, cmd.user, why, now)]
    more, text, done = close_bots(rt, bots, cmd, why, now)
    return Outcome(changes + more, bots, f"EMERGENCY STOP: {text}; all {len(bots)} bots paused", pending=not done)


@handler("resume_all")
def handle_resume_all(rt: Runtime, cmd: Command, now: int) -> Outcome:
    """Lift what operators set (the global and mode states, each bot's own); a bot a rule stopped (risk,
    reconciliation, pre-flight, venue health) stays so, listed with its rule: resume each on its own."""
    bots = list(rt.fleet.bots.values())
    why = cmd.reason or "resume all"
    changes = [rt.controls.set("global", "", TradingState.ACTIVE, cmd.user, why, now)]
    changes += [rt.controls.set("mode", m, TradingState.ACTIVE, cmd.user, why, now) for m in MODES]
    kept = []
    for b in bots:
        rec = rt.controls.get("bot", b.name)
        if rec.state is not TradingState.ACTIVE and rec.set_by in AUTOMATIC:
            kept.append(f"{b.name} ({rec.state.value} by {rec.set_by}: {rec.reason})")
            continue
        changes.append(rt.controls.set("bot", b.name, TradingState.ACTIVE, cmd.user, why, now))
    msg = f"all {len(bots)} bots resumed"
    if kept:
        msg = (f"{len(bots) - len(kept)} of {len(bots)} bots resumed; still stopped by a rule (resume each on its "
               f"own): {'; '.join(kept)}")
    return Outcome(changes, bots, msg)


@handler("set_limit")
def handle_set_limit(rt: Runtime, cmd: Command, now: int) -> Outcome:
    bots = rt.fleet.scope(cmd.scope, cmd.target)
    bot = bots[0]
    try:
        value = parse_limit(cmd.limit, cmd.value)
        bot.tighten_limits({cmd.limit: value})
    except ValueError as exc:  # raising a limit, or an unknown one
        raise UnknownTarget(f"{cmd.limit}: {exc}") from None
    return Outcome([], bots, f"{bot.name}: {cmd.limit} lowered to {value!r}, in effect now",
                   [(bot.name, cmd.limit, value)])


def _venue_bot(rt: Runtime, cmd: Command) -> tuple[AnyBot, "VenueSupervisor"]:
    bot = rt.fleet.scope(cmd.scope, cmd.target)[0]
    if rt.supervisor is None or not rt.fleet.on_venue(bot.name):
        raise UnknownTarget(f"target: {bot.name} does not trade on a venue")
    return bot, rt.supervisor


@handler("adopt")
def handle_adopt(rt: Runtime, cmd: Command, now: int) -> Outcome:
    bot, sup = _venue_bot(rt, cmd)
    if isinstance(bot, DcaBot):
        raise UnknownTarget(f"target: {bot.name} is a DCA bot: its position belongs to deals; use ignore_drift or "
                            "flatten")
    actual = sup.venue.venue_position(bot, rt.fleet.configs[bot.name].market)
    pos = bot.position
    old = pos.quantity
    if abs(actual) < 1e-12:
        bot.portfolio.positions[bot.symbol] = type(pos)(bot.symbol)
    else:
        pos.quantity = actual
        pos.avg_entry = pos.avg_entry or bot.last_price  # unknown cost: marked at the last price
        pos.opened_at = pos.opened_at or now
    sup.drift_seen.pop(bot.name, None)
    return Outcome([], [bot], f"{bot.name}: adopted the venue's {actual:+.8g} {bot.symbol} (the bot had {old:+.8g}); "
                              "the bot stays paused until you resume it")


@handler("ignore_drift")
def handle_ignore_drift(rt: Runtime, cmd: Command, now: int) -> Outcome:
    bot, sup = _venue_bot(rt, cmd)
    sup.venue.reset_baseline(bot, rt.fleet.configs[bot.name].market)
    sup.drift_seen.pop(bot.name, None)
    return Outcome([], [bot], f"{bot.name}: the difference with the venue is ignored from now on; the bot stays "
                              "paused until you resume it")


@handler("backtest")
def handle_backtest(rt: Runtime, cmd: Command, now: int) -> Outcome:
    """Start a backtest in its own process (never blocks trading); the result lands in Redis."""
    if cmd.target not in rt.fleet.configs:
        raise UnknownTarget(f"target: no bot named {cmd.target!r}")
    if rt.backtests is None:
        raise UnknownTarget("backtests are not available in this worker")
    try:
        ident = rt.backtests(cmd.payload or "{}", cmd.target, rt.app, cmd.nonce)
    except ValueError as exc:  # a bad request, or too many running: say so, nothing started
        raise UnknownTarget(str(exc)) from None
    return Outcome([], [], f"backtest {ident} of {cmd.target} started in its own process")


@handler("signal")
def handle_signal(rt: Runtime, cmd: Command, now: int) -> Outcome:
    """A webhook alert for a ``strategy: webhook`` bot: one signal, through the bot's own path (risk
    engine, executor), at its last price; levels the alert does not give come from the bot's params."""
    from engine.bot import Bot
    from strategy.base import exit_prices

    bot = rt.fleet.scope("bot", cmd.target)[0]
    if not isinstance(bot, Bot) or bot.strategy.name != "webhook":
        raise UnknownTarget(f"target: {bot.name} does not take webhook signals (its strategy is not 'webhook')")
    try:
        p = signal_payload(cmd.payload)
    except ValueError as exc:
        raise UnknownTarget(str(exc)) from None
    if p.symbol != bot.symbol:
        raise UnknownTarget(f"payload.symbol: {p.symbol} is not {bot.name}'s symbol {bot.symbol}")
    params = bot.strategy.params  # type: ignore[attr-defined]
    if p.confidence < params.min_confidence:
        return Outcome([], [bot], f"{bot.name}: {p.side} alert not acted on: confidence {p.confidence:g} below "
                                  f"{params.min_confidence:g}")
    side = Side(p.side)
    stop, take = exit_prices(side, bot.last_price, params.stop_loss_pct, params.take_profit_pct)
    sig = Signal(side, p.confidence, f"webhook {p.source} {p.alert_id}".strip(),
                 p.stop_loss if p.stop_loss is not None else stop, p.take_profit if p.take_profit is not None else take)
    try:
        note = bot.act_on(sig, f"{bot.name}:webhook:{p.alert_id or cmd.nonce}")
    except ValueError as exc:
        raise UnknownTarget(str(exc)) from None
    return Outcome([], [bot], f"{bot.name}: {p.side} signal from {p.source} at {bot.last_price:.8g}"
                              + (f": {note}" if note else ": acted on"))


@handler("upsert_dca_bot")
def handle_upsert_dca_bot(rt: Runtime, cmd: Command, now: int) -> Outcome:
    try:
        cfg = rt.fleet.dynamic_config(cmd.target, cmd.payload)
    except ValueError as exc:
        raise UnknownTarget(f"payload: {exc}") from None
    existing = rt.fleet.bots.get(cmd.target)
    if existing is not None:
        old = rt.fleet.configs[cmd.target]
        if not isinstance(existing, DcaBot) or cmd.target not in rt.writer.dynamic_bots():
            raise UnknownTarget(f"target: {cmd.target!r} is defined in config.yaml; edit it there")
        if (old.mode, old.symbols) != (cfg.mode, cfg.symbols):
            raise UnknownTarget("mode and pairs of an existing DCA bot cannot change; create a new bot")
        assert cfg.dca is not None
        existing.settings = cfg.dca  # running deals keep their snapshot; new deals use this
        rt.fleet.configs[cmd.target] = cfg
        msg, bot = f"DCA bot {cmd.target} updated: new settings apply to new deals", existing
    else:
        bot = rt.add_bot(cfg)
        bot.warm(rt.writer.recent_candles(rt.fleet.key(cfg, cfg.symbol), interval=rt.app.market.interval))
        msg = f"DCA bot {cmd.target} created ({cfg.mode}, {', '.join(cfg.symbols)})"
    return Outcome([], [bot], msg, dynamic_bots=[(cmd.target, cmd.payload)], metas=[meta(cfg)])


# ---- around them ---------------------------------------------------------------------------------
def handle(rt: Runtime, entry_id: str, fields: dict[str, str], now: int, route: Route | None = None) -> CommandResult:
    """Apply one command stream entry; every outcome (applied, duplicate, rejected) is answered,
    audited and acknowledged. ``route``: the shard's stream it came from (several shards: ``rt`` sees
    that shard's bots only, engine/shards.py); its answer is that shard's part of the merged answer."""
    try:
        if any(NOT_UTF8 in k or NOT_UTF8 in v for k, v in fields.items()):
            raise CommandRejected("command: holds bytes that are not UTF-8 text")
        cmd = parse_command(fields, handles=ALL_COMMANDS)
    except CommandRejected as exc:
        return reject(rt, entry_id, fields, str(exc), now, route)
    try:
        if rt.writer.already_applied(cmd.nonce, route):
            result = CommandResult(nonce=cmd.nonce, entry_id=entry_id, status="duplicate",
                                   message="already applied; nothing done again", time=now)
            rt.writer.finish_command(entry_id, result, _audit(cmd, entry_id, "duplicate", result.message, now),
                                     route=route, forget=bool(cmd.otp))
            return result
        golive = getattr(rt, "golive", None)  # who sent it, and a live action's TOTP code (engine.live_auth)
        with rt.lock:
            try:
                live, consumed = golive.authorize(rt, cmd) if golive is not None else (None, [])
            except CodeRefused as exc:
                return reject(rt, entry_id, fields, str(exc), now, route)
            # a limit raised on a bot under the go-live protocol (its code checked): engine.golive's handler
            fn = HANDLERS.get("raise_limit" if cmd.cmd == "set_limit" and live else cmd.cmd)
            if fn is None:
                return reject(rt, entry_id, fields, f"cmd: {cmd.cmd!r} has no handler in this worker", now, route)
            try:
                outcome = fn(rt, cmd, now)
            except UnknownTarget as exc:
                return reject(rt, entry_id, fields, str(exc), now, route)
            controls, audits = rt.settle(outcome.bots, now)
            updates: list[BotUpdate] = [b.drain(now) for b in outcome.bots]
            status = "pending" if outcome.pending else "applied"
            result = CommandResult(nonce=cmd.nonce, entry_id=entry_id, status=status, message=outcome.message,
                                   time=now)
            rt.writer.finish_command(entry_id, result, _audit(cmd, entry_id, status, outcome.message, now),
                                     outcome.controls + controls, updates, outcome.limit_changes,
                                     outcome.dynamic_bots, outcome.metas, audits, [*consumed, *outcome.writes], route,
                                     forget=bool(cmd.otp))
    except LeaseLost:
        raise  # another worker holds the lease: it answers this entry
    except Exception as exc:  # noqa: BLE001 - whatever failed, answer it: an unanswered entry stalls the stream
        log.exception("command %s failed", entry_id)
        return reject(rt, entry_id, fields, f"failed while applying: {type(exc).__name__}: {exc}", now, route)
    log.info("command %s by %s: %s", cmd.label, cmd.user, outcome.message)
    if cmd.cmd in REFRESH_VENUE and rt.supervisor is not None:
        with rt.lock:
            rt.supervisor.refresh_views(outcome.bots)
    return result


def reject(rt: Runtime, entry_id: str, fields: dict[str, str], why: str, now: int,
           route: Route | None = None) -> CommandResult:
    nonce = fields.get("nonce", "")
    nonce = nonce if nonce.replace("-", "").replace("_", "").isalnum() and len(nonce) <= 64 else ""
    result = CommandResult(nonce=nonce, entry_id=entry_id, status="rejected", message=why, time=now)
    audit = AuditRecord(time=now, who=fields.get("user", "?")[:64], command=fields.get("cmd", "?")[:64],
                        target=fields.get("target", "")[:64], result="rejected", detail=why,
                        entry_id=entry_id, nonce=nonce)
    rt.writer.record_reject("command", why, {k[:64]: v[:500] for k, v in fields.items() if k != "otp"})
    rt.writer.finish_command(entry_id, result, audit, route=route, forget=bool(fields.get("otp")))
    log.warning("command %s rejected: %s", entry_id, why)
    return result


def _audit(cmd: Command, entry_id: str, result: str, detail: str, now: int) -> AuditRecord:
    return AuditRecord(time=now, who=cmd.user, command=cmd.cmd, target=cmd.target or cmd.scope, result=result,
                       detail=detail, entry_id=entry_id, nonce=cmd.nonce)
