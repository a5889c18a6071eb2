"""Commands the dashboard posts to the worker, and their validation.

The dashboard, the CLI, the REST API and the Telegram bot XADD a flat field map to
``keys.COMMANDS`` (with several shards: to the stream of each shard the command concerns,
``post_command``); the worker parses it with :func:`parse_command`. Anything that does not parse
is rejected with a reason, recorded and answered — never applied. :func:`await_result` waits for
that answer (the worker's ``CommandResult``).

``signal`` carries a trading signal from an inbound webhook (TradingView or plain JSON) for one
bot; its ``payload`` is a :class:`SignalPayload`.
"""
from __future__ import annotations

import json
import math
import time
import uuid
from typing import Collection, Literal

import redis
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.validation import format_errors
from risk.limits import parse_limit
from state import keys, shards
from state.models import CommandResult

CommandName = Literal["pause", "flatten", "resume", "reduce_only", "halt", "set_limit", "upsert_dca_bot",
                      "adopt", "ignore_drift", "backtest", "emergency_stop", "resume_all", "signal", "golive", "auth"]
Scope = Literal["bot", "mode", "global"]
MODES = ("ghost", "paper", "live")
# What a worker acts on unless it says more. `signal` needs the worker's webhook-bot handler: a
# worker that has it parses with ``handles=ALL_COMMANDS``; any other rejects a signal (recorded and
# answered) instead of mistaking it for another command.
ALL_COMMANDS: frozenset[str] = frozenset(CommandName.__args__)  # type: ignore[attr-defined]
WORKER_COMMANDS: frozenset[str] = ALL_COMMANDS - {"signal"}
AUTH_EVENTS = ("login_ok", "login_failed", "logout", "session_refused", "totp_enrolled")


class SignalPayload(BaseModel):
    """A trading signal for one bot, normalised by the API from a webhook alert (``api.webhook``).

    Prices are absolute; ``price`` is the alert's reference price (the bot trades at its own
    market price). When ``price`` is given, a BUY needs stop < price < take-profit and a SELL the
    reverse; without it, a BUY needs stop < take-profit. ``alert_time`` is the alert's own time
    (epoch ms), already checked for age by the API.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    side: Literal["BUY", "SELL"]
    symbol: str = Field(min_length=2, max_length=20, pattern=r"^[A-Z0-9]+$")
    price: float | None = Field(None, gt=0)
    stop_loss: float | None = Field(None, gt=0)
    take_profit: float | None = Field(None, gt=0)
    confidence: float = Field(1.0, ge=0, le=1)
    alert_time: int = Field(ge=0)
    alert_id: str = Field("", max_length=64)
    source: Literal["tradingview", "json"] = "json"
    comment: str = Field("", max_length=200)

    @model_validator(mode="after")
    def _levels(self) -> "SignalPayload":
        for name in ("price", "stop_loss", "take_profit"):
            v = getattr(self, name)
            if v is not None and not math.isfinite(v):
                raise ValueError(f"{name}: must be a finite number")
        buy = self.side == "BUY"
        ref = self.price
        if ref is not None and self.stop_loss is not None and (self.stop_loss >= ref if buy else self.stop_loss <= ref):
            raise ValueError(f"stop_loss: {self.stop_loss:g} must be {'below' if buy else 'above'} the price "
                             f"{ref:g} for a {self.side}")
        if ref is not None and self.take_profit is not None and (
                self.take_profit <= ref if buy else self.take_profit >= ref):
            raise ValueError(f"take_profit: {self.take_profit:g} must be {'above' if buy else 'below'} the price "
                             f"{ref:g} for a {self.side}")
        if ref is None and self.stop_loss is not None and self.take_profit is not None and (
                self.stop_loss >= self.take_profit if buy else self.stop_loss <= self.take_profit):
            raise ValueError(f"stop_loss: {self.stop_loss:g} and take_profit {self.take_profit:g} are the wrong way "
                             f"round for a {self.side}")
        return self


def signal_payload(payload: str) -> SignalPayload:
    """The signal in a ``signal`` command's payload; ValueError naming the field otherwise.

    A payload ``{"refused": reason, "raw": ...}`` is an alert the API refused (malformed or stale):
    it is posted so the worker rejects it with that reason and records it in the audit."""
    try:
        data = json.loads(payload)
    except ValueError:
        raise ValueError("payload: not valid JSON") from None
    if not isinstance(data, dict):
        raise ValueError("payload: must be a JSON object")
    if "refused" in data:
        raise ValueError(f"payload: alert refused by the API: {str(data['refused'])[:300]}")
    try:
        return SignalPayload.model_validate(data)
    except ValidationError as exc:
        raise ValueError(format_errors(exc, "payload")) from None


class Command(BaseModel):
    """One operator command.

    pause          bot/mode/global -> PAUSED: no new entries, exits still run
    reduce_only    bot/mode/global -> REDUCE_ONLY: only orders that shrink exposure
    halt           bot/mode/global -> HALTED: no orders at all (a DCA bot's resting orders are canceled)
    flatten        bot/mode/global -> FLATTEN: close every position at market, then PAUSED
    resume         bot/mode/global -> ACTIVE
    set_limit      bot: lower one risk limit at once (`limit`, `value`); raising needs a restart
    adopt          bot (live): take the venue's holding as the bot's position after a reconciliation drift
    ignore_drift   bot (live): the difference is not the bot's (e.g. the user's own coins); stop flagging it
    backtest       bot: run a backtest of this bot in a separate process (`payload`: the request JSON)
    upsert_dca_bot bot: create a DCA bot, or edit one (new settings apply to new deals); `payload`
                   is the bot's JSON config (mode, symbol, dca, risk, ...)
    emergency_stop flatten every bot in every mode and pause them all (global)
    resume_all     global and every bot back to ACTIVE
    signal         bot: a trading signal from a webhook (`payload`: JSON SignalPayload), acted on by a bot
                   with `strategy: webhook` through its risk engine and executor like its own signals
    golive         bot (live): move to go-live stage `value` (up: `payload` {"confirm": bot name, "max_loss":
                   the stage's cap} and a TOTP code in `otp`; down: always)
    auth           a dashboard sign-in event for user `target` (`value`: login_ok, login_failed, logout,
                   session_refused, totp_enrolled), recorded in the audit

    `otp`: a TOTP code; live actions (engine.live_auth) need a fresh one of a live-operator.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    cmd: CommandName
    scope: Scope = "bot"
    target: str = Field("", max_length=64)
    nonce: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    user: str = Field("dashboard", min_length=1, max_length=64)
    ts: int = Field(ge=0)
    reason: str = Field("", max_length=500)
    limit: str = Field("", max_length=64)
    value: str = Field("", max_length=64)
    payload: str = Field("", max_length=8000)
    otp: str = Field("", max_length=12)

    @model_validator(mode="after")
    def _target(self) -> "Command":
        if self.cmd == "auth":
            if self.value not in AUTH_EVENTS or not self.target:
                raise ValueError(f"auth needs the user in 'target' and 'value' one of {', '.join(AUTH_EVENTS)}")
        elif self.cmd == "golive" and (self.scope != "bot" or not self.target or not self.value):
            raise ValueError("golive needs scope 'bot', the bot in 'target' and the stage in 'value'")
        elif self.cmd in ("emergency_stop", "resume_all"):
            if self.scope != "global":
                raise ValueError(f"{self.cmd} is always global (scope must be 'global')")
        elif self.cmd == "set_limit" and (self.scope != "bot" or not self.target or not self.limit or not self.value):
            raise ValueError("set_limit needs scope 'bot', the bot in 'target', and 'limit' and 'value'")
        elif self.cmd == "set_limit":
            try:
                parse_limit(self.limit, self.value)
            except ValueError as exc:
                raise ValueError(f"set_limit {self.limit}: {exc}") from None
        elif self.cmd in ("adopt", "ignore_drift", "backtest") and (self.scope != "bot" or not self.target):
            raise ValueError(f"{self.cmd} needs scope 'bot' and the bot name in 'target'")
        elif self.cmd == "upsert_dca_bot" and (self.scope != "bot" or not self.target or not self.payload):
            raise ValueError("upsert_dca_bot needs scope 'bot', the bot name in 'target' and its config in 'payload'")
        elif self.cmd == "signal":
            if self.scope != "bot" or not self.target:
                raise ValueError("signal needs scope 'bot' and the bot name in 'target'")
            signal_payload(self.payload)
        elif self.scope == "bot" and not self.target:
            raise ValueError("scope 'bot' needs the bot name in 'target'")
        elif self.scope == "mode" and self.target not in MODES:
            raise ValueError(f"scope 'mode' needs target one of {MODES}")
        elif self.scope == "global" and self.target:
            raise ValueError("scope 'global' takes no target")
        return self

    def fields(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.model_dump().items() if k != "otp" or v}

    @property
    def label(self) -> str:
        where = self.target or self.scope
        return f"{self.cmd} {where}"


class CommandRejected(ValueError):
    """A malformed command; the message says which field and why."""


def parse_command(fields: dict[str, str], handles: Collection[str] = WORKER_COMMANDS) -> Command:
    """The command in ``fields``; CommandRejected naming each bad field. ``handles``: the commands
    the caller acts on (a worker without the webhook-bot handler rejects ``signal``)."""
    try:
        cmd = Command.model_validate(dict(fields))
    except ValidationError as exc:
        raise CommandRejected(format_errors(exc)) from None
    if cmd.cmd not in handles:
        raise CommandRejected(f"cmd: this worker does not act on {cmd.cmd!r} commands")
    return cmd


def new_command(cmd: CommandName, scope: Scope = "bot", target: str = "", user: str = "dashboard",
                reason: str = "", limit: str = "", value: str = "", payload: str = "",
                nonce: str | None = None, otp: str = "") -> Command:
    """A validated command (ValidationError naming the field otherwise). ``nonce``: a sender that
    may post the same thing twice (an API retry, a replayed webhook alert) derives it from what
    it sends, so the worker applies it once; otherwise a random one."""
    return Command(cmd=cmd, scope=scope, target=target, nonce=nonce or uuid.uuid4().hex, user=user,
                   ts=int(time.time() * 1000), reason=reason, limit=limit, value=value, payload=payload, otp=otp)


def post_command(r: redis.Redis, command: Command) -> str:
    """XADD the command (the dashboard's only write) to the stream of each shard it concerns: a bot's
    command to its shard, a mode- or global-scoped one (every kill switch for all bots) to every shard
    (``state/shards.py``). Nothing but reads and XADDs, so a sender's Redis user needs no other right.
    Returns the stream entry id (the first shard's)."""
    targets = shards.destinations(r, command.scope, command.target)
    pipe = r.pipeline(transaction=False)  # one round trip; each shard's copy stands on its own
    for shard in targets:
        pipe.xadd(keys.shard_commands(shard), command.fields(), maxlen=10_000, approximate=True)
    entry_id = pipe.execute()[0]
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


def refused_signal(bot: str, user: str, reason: str, raw: str, nonce: str) -> Command:
    """A ``signal`` command carrying an alert the API refused, built without validation on purpose:
    the worker's parse rejects it with ``reason`` and records it (bot:rejects, bot:audit), so a
    refused alert is visible where every other command is. ``raw``: the alert minus its secret."""
    payload = json.dumps({"refused": reason[:300], "raw": raw[:2000]})
    return Command.model_construct(cmd="signal", scope="bot", target=bot[:64], nonce=nonce, user=user[:64],
                                   ts=int(time.time() * 1000), reason="", limit="", value="", payload=payload)


def await_result(r: redis.Redis, nonce: str, timeout_s: float, every_s: float = 0.05) -> CommandResult | None:
    """The worker's answer to the command with ``nonce``, waiting up to ``timeout_s``; None if it has
    not answered yet (the command stays queued: the worker applies it when it reads it)."""
    from state.reader import StateReader

    reader = StateReader(r)
    deadline = time.monotonic() + timeout_s
    while True:
        result = reader.command_result(nonce)
        if result is not None or time.monotonic() >= deadline:
            return result
        time.sleep(every_s)


def seen(r: redis.Redis, nonce: str) -> bool:
    """True when the worker has answered or applied a command with this nonce (read-only)."""
    return bool(r.exists(keys.command_result(nonce))) or bool(r.hexists(keys.APPLIED, nonce))
