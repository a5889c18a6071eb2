"""Commands the dashboard posts to the worker, and their validation.

The dashboard XADDs a flat field map to ``keys.COMMANDS``; the worker parses it with
:func:`parse_command`. Anything that does not parse is rejected with a reason, recorded
and answered — never applied.
"""
from __future__ import annotations

import time
import uuid
from typing import Literal

import redis
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.validation import format_errors
from risk.limits import parse_limit
from state import keys

CommandName = Literal["pause", "flatten", "resume", "reduce_only", "halt", "set_limit", "upsert_dca_bot",
                      "adopt", "ignore_drift", "backtest", "emergency_stop", "resume_all"]
Scope = Literal["bot", "mode", "global"]
MODES = ("ghost", "paper", "live")


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

    @model_validator(mode="after")
    def _target(self) -> "Command":
        if self.cmd in ("emergency_stop", "resume_all"):
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
        elif self.scope == "bot" and not self.target:
            raise ValueError("scope 'bot' needs the bot name in 'target'")
        elif self.scope == "mode" and self.target not in MODES:
            raise ValueError(f"scope 'mode' needs target one of {MODES}")
        elif self.scope == "global" and self.target:
            raise ValueError("scope 'global' takes no target")
        return self

    def fields(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.model_dump().items()}

    @property
    def label(self) -> str:
        where = self.target or self.scope
        return f"{self.cmd} {where}"


class CommandRejected(ValueError):
    """A malformed command; the message says which field and why."""


def parse_command(fields: dict[str, str]) -> Command:
    try:
        return Command.model_validate(dict(fields))
    except ValidationError as exc:
        raise CommandRejected(format_errors(exc)) from None


def new_command(cmd: CommandName, scope: Scope = "bot", target: str = "", user: str = "dashboard",
                reason: str = "", limit: str = "", value: str = "", payload: str = "") -> Command:
    return Command(cmd=cmd, scope=scope, target=target, nonce=uuid.uuid4().hex, user=user,
                   ts=int(time.time() * 1000), reason=reason, limit=limit, value=value, payload=payload)


def post_command(r: redis.Redis, command: Command) -> str:
    """XADD the command (the dashboard's only write). Returns the stream entry id."""
    entry_id = r.xadd(keys.COMMANDS, command.fields(), maxlen=10_000, approximate=True)
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
