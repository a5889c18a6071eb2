"""The go-live protocol in the worker: each live bot's stage (``risk.stages``), kept in Redis
(``state.golive_store``) and put on the bot's risk engine as its ``StageGate``.

* At start (``attach``, from ``engine.fleet``): a live bot seen for the first time is ``unapproved``; one
  whose strategy, parameters, symbols or market changed, or whose venue changed, goes back to
  ``unapproved`` (audited), keeping the kill-switch tests made on a test venue.
* ``move`` (the ``golive`` command): one stage up needs the evidence (``risk.stages.requirements``), the
  bot's name typed as confirmation, the maximum loss acknowledged, and a fresh TOTP code of a
  live-operator (checked before, by ``engine.live_auth``); any stage down is always allowed.
* ``on_breach`` (from ``TradingControls.breach``): a loss-limit breach drops the bot one stage.
* ``raise_limit``: a live action that raises one limit back up to, at most, the bot's configured value.

Whether a bot is under the protocol: every live bot off the local exchange, and the local exchange's
too with ``golive.stages: on``. Others get a record (shown on the Live tab) but no gate.
"""
from __future__ import annotations

import json
import logging
import os
import time
from typing import TYPE_CHECKING, Any, Callable

from engine.commands import Outcome, Runtime, handler
from engine.controls import TradingControls
from engine.fleet import UnknownTarget
from engine.live_auth import CodeRefused, LiveAuth
from risk.limits import parse_limit, tighten
from risk.stages import LOSS_RULES, Stage, StageGate, cap_of, effective_cap, requirements
from settings import AppConfig, BotConfig
from state import golive_store as store
from state.golive_store import GoLiveRecord, fingerprint
from state.commands import Command
from state.models import AuditRecord
from state.writer import StateWriter

if TYPE_CHECKING:
    from engine.ledger import Ledger

log = logging.getLogger("worker")
Write = Callable[[Any], None]


class StageRefused(ValueError):
    """A stage change that cannot be made; the message says which field and why."""


def _now() -> int:
    return int(time.time() * 1000)


class GoLive:
    def __init__(self, app: AppConfig, writer: StateWriter, controls: TradingControls) -> None:
        self.app = app
        self.cfg = app.golive
        self.writer = writer
        self.records: dict[str, GoLiveRecord] = {}
        self.bots: dict[str, "Ledger"] = {}
        self.auth = LiveAuth(writer)
        controls.breach_hooks.append(self.on_breach)

    def authorize(self, rt: Any, cmd: Command) -> tuple[str | None, list[Write]]:
        """engine.live_auth's check of who sent ``cmd`` (and a live action's code); CodeRefused."""
        return self.auth.authorize(rt, self, cmd)

    # ---- which bots --------------------------------------------------------------------------
    def enforced(self, cfg: BotConfig) -> bool:
        return cfg.mode == "live" and (self.app.exchange.venue != "local" or self.cfg.stages == "on")

    def guarded(self, name: str) -> bool:
        rec = self.records.get(name)
        return rec is not None and rec.enforced

    def cap(self, stage: Stage, bot: "Ledger") -> float | None:
        return effective_cap(stage, self.cfg, bot.risk.limits.max_position_value)

    def _gate(self, bot: "Ledger", rec: GoLiveRecord) -> None:
        bot.risk.gate = StageGate(rec.stage, cap_of(rec.stage, self.cfg)) if rec.enforced else None

    # ---- start -------------------------------------------------------------------------------
    def attach(self, bot: "Ledger", cfg: BotConfig) -> None:
        """A live bot joins the worker: its record loaded (or made), reset if what it was approved for
        changed, and its stage put on its risk engine."""
        if cfg.mode != "live":
            return
        now = _now()
        venue = self.app.exchange.venue
        params: object = cfg.dca.model_dump(mode="json") if cfg.dca is not None else cfg.params
        fp = fingerprint(cfg.kind, cfg.strategy, params, cfg.symbols, cfg.market)  # type: ignore[arg-type]
        rec = store.load(self.writer.r, cfg.name)
        why = ""
        if rec is None:
            rec = GoLiveRecord(bot=cfg.name, since=now, fingerprint=fp, fingerprint_since=now, venue=venue,
                               real_money=venue == "mainnet", venue_since=now)
            why = "first seen"
        else:
            if rec.venue != venue:  # a kill switch tested on the old venue still counts (if it was a test venue)
                old = rec.venue
                tested = [t for t in store.kill_switch_tests(self.writer.r, rec, []) if t.where == old]
                rec = rec.model_copy(update={"venue": venue, "real_money": venue == "mainnet", "venue_since": now,
                                             "prior_tests": (tested + rec.prior_tests)[:10]})
                why = f"venue changed from {old} to {venue}"
            if rec.fingerprint != fp:
                rec = rec.model_copy(update={"fingerprint": fp, "fingerprint_since": now})
                why = "strategy, parameters, symbols or market changed since the approval"
        rec.enforced = self.enforced(cfg)
        rec.configured_cap = bot.risk.limits.max_position_value
        audits = []
        if why and why != "first seen" and rec.stage is not Stage.UNAPPROVED:
            rec = rec.moved(Stage.UNAPPROVED, "golive", why, "", now, 0, bot.trade_count)
            audits.append(AuditRecord(time=now, who="golive", command="golive", target=cfg.name, result="applied",
                                      detail=f"stage {rec.history[-1].from_stage} -> unapproved: {why}"))
            log.warning("live bot %s back to unapproved: %s", cfg.name, why)
        rec.cap = self.cap(rec.stage, bot) if rec.enforced else bot.risk.limits.max_position_value
        self.records[cfg.name] = rec
        self.bots[cfg.name] = bot
        self._gate(bot, rec)
        self.writer.transaction(lambda pipe, r=rec: store.queue(pipe, r), audits)

    # ---- stage changes -----------------------------------------------------------------------
    def move(self, bot: "Ledger", who: str, value: str, payload: str, reason: str) -> tuple[str, Write]:
        """The ``golive`` command (its TOTP code already checked): one stage up with the evidence,
        confirmation and acknowledged loss, or any stage down. Returns (message, the record's write)."""
        rec = self.records.get(bot.name)
        if rec is None or not rec.enforced:
            raise StageRefused(f"target: {bot.name} is not under the go-live protocol (live bots off the local "
                               "exchange; on the local exchange with golive.stages: on)")
        try:
            to = Stage(value)
        except ValueError:
            raise StageRefused(f"value: {value!r} is not a stage ({', '.join(s.value for s in Stage)})") from None
        now = _now()
        market_now = bot.last_candle_time
        if to.index == rec.stage.index + 1:
            try:
                ask = json.loads(payload or "{}")
                assert isinstance(ask, dict)
            except (ValueError, AssertionError):
                raise StageRefused("payload: a JSON object with 'confirm' and 'max_loss'") from None
            if str(ask.get("confirm", "")).strip() != bot.name:
                raise StageRefused(f"payload.confirm: type the bot's name ({bot.name}) to confirm")
            cap = self.cap(to, bot)
            try:
                acked = float(ask.get("max_loss"))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                acked = float("nan")
            if cap is not None and not abs(acked - cap) < 0.005:
                raise StageRefused(f"payload.max_loss: acknowledge the maximum loss of this stage, {cap:.2f} (its "
                                   "position cap)")
            ev = store.collect(self.writer.r, rec, market_now)
            missing = [q for q in requirements(to, ev, self.cfg) if not q.ok]
            if missing:
                raise StageRefused(f"{to.value} not yet: " + "; ".join(f"{q.name}: {q.detail}" for q in missing))
            new = rec.moved(to, who, reason or "approved", ev.summary(), now, market_now, bot.trade_count)
        elif to.index < rec.stage.index:
            new = rec.moved(to, who, reason or "lowered by an operator", "", now, market_now, bot.trade_count)
        else:
            nxt = rec.stage.next()
            raise StageRefused(f"value: {bot.name} is at {rec.stage.value}; "
                               + (f"the next stage is {nxt.value}" if nxt else "it is at the last stage"))
        new.cap = self.cap(to, bot)
        self.records[bot.name] = new
        self._gate(bot, new)
        cap_text = "no orders" if to is Stage.UNAPPROVED else (
            f"position cap {new.cap:.2f}" if new.cap is not None else "the configured limits")
        msg = (f"{bot.name}: go-live stage {rec.stage.value} -> {to.value} ({cap_text}) by {who}"
               + (f"; evidence: {new.history[-1].evidence}" if new.history[-1].evidence else ""))
        log.warning("%s", msg)
        return msg, lambda pipe: store.queue(pipe, new)

    def on_breach(self, name: str, rule: str, now: int) -> None:
        """A loss limit tripped on a bot under the protocol: it drops back one stage (audited at once)."""
        rec = self.records.get(name)
        bot = self.bots.get(name)
        if rec is None or bot is None or not rec.enforced or rule not in LOSS_RULES or rec.stage is Stage.UNAPPROVED:
            return
        to = rec.stage.previous()
        new = rec.moved(to, "golive", f"{rule} breached", "", _now(), bot.last_candle_time, bot.trade_count)
        new.cap = self.cap(to, bot)
        self.records[name] = new
        self._gate(bot, new)
        audit = AuditRecord(time=now, who="golive", command="golive", target=name, result="applied",
                            detail=f"stage {rec.stage.value} -> {to.value}: loss limit {rule} breached")
        log.warning("live bot %s drops back to %s after %s", name, to.value, rule)
        self.writer.transaction(lambda pipe: store.queue(pipe, new), [audit])


def raise_limit(bot: "Ledger", cfg: BotConfig, limit: str, raw: str) -> object:
    """Raise one limit of ``bot`` (a live action: its TOTP code is checked before) to at most the bot's
    configured value, itself never above the hard ceilings. Returns the value now in force."""
    value = parse_limit(limit, raw)
    configured = cfg.limits(allow_raise=bool(os.environ.get("BOT_RISK_OVERRIDE")))
    base = bot.risk.limits.with_(**{limit: getattr(configured, limit)})
    try:
        checked = tighten(base, {limit: value})
    except ValueError as exc:
        raise ValueError(f"{limit}: {value!r} is above the configured {getattr(configured, limit)!r}; a limit is "
                         f"raised at most back to its configured value ({exc})") from None
    bot.risk.limits = checked
    if bot.monitor is not None:
        bot.monitor.limits = checked
    return getattr(checked, limit)


# ---- the commands (registered in engine.commands' table) ---------------------------------------
@handler("golive")
def handle_golive(rt: Runtime, cmd: Command, now: int) -> Outcome:
    golive: GoLive = rt.golive  # type: ignore[attr-defined]
    bot = rt.fleet.scope("bot", cmd.target)[0]
    try:
        msg, write = golive.move(bot, cmd.user, cmd.value, cmd.payload, cmd.reason)  # type: ignore[arg-type]
    except StageRefused as exc:
        raise UnknownTarget(str(exc)) from None
    return Outcome([], [bot], msg, writes=[write])


@handler("auth")
def handle_auth(rt: Runtime, cmd: Command, now: int) -> Outcome:
    golive: GoLive = rt.golive  # type: ignore[attr-defined]
    try:
        return Outcome([], [], golive.auth.event(cmd))
    except CodeRefused as exc:  # a refused sign-in: recorded as rejected, with the reason
        raise UnknownTarget(str(exc)) from None


@handler("raise_limit")
def handle_raise_limit(rt: Runtime, cmd: Command, now: int) -> Outcome:
    """``set_limit`` raising a limit of a bot under the protocol, its TOTP code already checked."""
    bot = rt.fleet.scope("bot", cmd.target)[0]
    try:
        value = raise_limit(bot, rt.fleet.configs[bot.name], cmd.limit, cmd.value)  # type: ignore[arg-type]
    except ValueError as exc:
        raise UnknownTarget(str(exc)) from None
    return Outcome([], [bot], f"{bot.name}: {cmd.limit} raised to {value!r} by {cmd.user} (TOTP), in effect now",
                   [(bot.name, cmd.limit, value)])
