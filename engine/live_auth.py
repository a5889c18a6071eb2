"""Who may do what, checked by the worker on every command before it is applied.

* A command from a dashboard user (``user`` = ``dashboard:<name>``, with a users file): the name must be
  a user, and a viewer sends nothing. Unnamed local senders (``dashboard`` in its no-users 127.0.0.1
  mode, ``cli``) are taken as the machine's operator, as before; the ACL decides who may post at all.
* A **live action** needs a fresh TOTP code (``otp``) of a live-operator, whoever sends it (dashboard
  ``dashboard:<name>``, shell ``cli:<name>``): resuming a live bot under the go-live protocol (by name,
  or by a global / mode / resume-all command that would lift it), adopting or ignoring its drift,
  moving it up a go-live stage, raising any limit. A wrong, expired or reused code counts a failure;
  the fifth in a row locks the user (``state.auth_store``). Kill switches never need a code.
* ``auth`` commands carry the dashboard's sign-in events (signed in, wrong password, refused session
  cookie, TOTP enrolled): recorded in the audit, a wrong password counted as a failure.

Refusals raise ``CodeRefused`` (the command is rejected and audited with the reason); an accepted
code returns the write that consumes it, committed with the command's effect.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import auth.totp as totp
from auth.users import User, UsersFile, UsersFileError
from core.types import TradingState
from risk.limits import CeilingViolation, parse_limit, tighten
from risk.stages import Stage
from risk.states import is_more_restrictive, most_restrictive
from state import auth_store
from state.commands import Command
from state.models import AUTOMATIC
from state.writer import StateWriter

Write = Callable[[Any], None]
SOURCES = ("dashboard", "cli")  # senders whose user names are dashboard users
KILL_SWITCHES = frozenset({"pause", "reduce_only", "halt", "flatten", "emergency_stop"})


class CodeRefused(ValueError):
    """A command refused for who sent it or its code; the message says why."""


def user_of(who: str) -> tuple[str, str | None]:
    """(source, user name) of a command's ``user``: ``dashboard:alice`` -> (dashboard, alice)."""
    source, sep, name = who.partition(":")
    return (source, name or None) if sep and source in SOURCES else (who, None)


def _after(rt: Any, name: str, cmd: Command) -> TradingState:
    """A live bot's effective state if ``cmd`` (a resume) were applied."""
    c = rt.controls
    g, m, own = c.get("global").state, c.get("mode", "live").state, c.get("bot", name)
    mine = own.state
    if cmd.cmd == "resume_all":
        g = m = TradingState.ACTIVE
        mine = own.state if own.set_by in AUTOMATIC else TradingState.ACTIVE
    elif cmd.scope == "global":
        g = TradingState.ACTIVE
    elif cmd.scope == "mode" and cmd.target == "live":
        m = TradingState.ACTIVE
    elif cmd.scope == "bot" and cmd.target == name:
        mine = TradingState.ACTIVE
    return most_restrictive(g, m, mine)


def live_action(rt: Any, golive: Any, cmd: Command) -> str | None:
    """Why ``cmd`` is a live action (needs a TOTP code), or None."""
    if cmd.cmd == "golive":
        rec = golive.records.get(cmd.target)
        try:
            up = rec is not None and Stage(cmd.value).index > rec.stage.index
        except ValueError:
            up = False
        return f"approving go-live stage {cmd.value} for {cmd.target}" if up else None
    if cmd.cmd == "set_limit":
        bot = rt.fleet.bots.get(cmd.target)
        if bot is None or not golive.guarded(cmd.target):  # other bots: raising needs a restart, as ever
            return None
        try:
            tighten(bot.risk.limits, {cmd.limit: parse_limit(cmd.limit, cmd.value)})
        except CeilingViolation:
            return f"raising {cmd.limit} of {cmd.target}"
        except ValueError:
            return None  # the handler rejects it with the reason
        return None
    if cmd.cmd in ("adopt", "ignore_drift"):
        return f"{cmd.cmd} on live bot {cmd.target}" if golive.guarded(cmd.target) else None
    if cmd.cmd == "resume" and cmd.scope == "bot":
        return f"resuming live bot {cmd.target}" if golive.guarded(cmd.target) else None
    if cmd.cmd in ("resume", "resume_all"):
        lifted = [n for n in golive.records if golive.guarded(n) and n in rt.fleet.bots
                  and is_more_restrictive(rt.controls.effective(rt.fleet.bots[n]), _after(rt, n, cmd))]
        if lifted:
            return f"{cmd.cmd} {cmd.target or cmd.scope} would resume live bot(s) {', '.join(lifted)}".replace("  ", " ")
    return None


class LiveAuth:
    def __init__(self, writer: StateWriter) -> None:
        self.writer = writer

    def _users(self) -> UsersFile | None:
        return UsersFile.from_env()

    def _fail(self, name: str, state: auth_store.AuthState, reason: str, now: int) -> auth_store.AuthState:
        new = state.after_failure(reason, now)
        self.writer.transaction(lambda pipe: auth_store.queue(pipe, name, new))
        return new

    def authorize(self, rt: Any, golive: Any, cmd: Command) -> tuple[str | None, list[Write]]:
        """Check who sent ``cmd`` and, for a live action, its TOTP code. Raises CodeRefused; returns (why
        it is a live action or None, the writes to commit with the command: the code consumed)."""
        if cmd.cmd == "auth":
            return None, []
        source, name = user_of(cmd.user)
        users = self._users()
        user: User | None = None
        if users is not None and name is not None:
            try:
                user = users.get(name)
            except UsersFileError as exc:
                if cmd.cmd in KILL_SWITCHES:  # a broken users file never blocks a kill switch
                    return None, []
                raise CodeRefused(f"user: {exc}") from None
        if source == "dashboard" and users is not None and name is not None:  # plain "dashboard": no-users mode
            if user is None:
                raise CodeRefused(f"user: {cmd.user!r} is not a dashboard user (users file {users.path})")
            if not user.can_operate:
                raise CodeRefused(f"user: {name} is a {user.role}: viewers send no commands")
        why = live_action(rt, golive, cmd)
        if why is None:
            return None, []
        need = f"{why} is a live action: it needs a fresh TOTP code of a live-operator"
        if users is None:
            raise CodeRefused(f"{need}, and the worker has no users file (BOT_USERS_FILE)")
        if user is None or name is None:
            raise CodeRefused(f"{need}; {cmd.user!r} is not one (send it from the dashboard)")
        if user.role != "live-operator":
            raise CodeRefused(f"{need}; {name} is a {user.role}")
        if not user.totp_secret:
            raise CodeRefused(f"{need}; {name} has no TOTP enrolled yet")
        now = int(time.time() * 1000)
        state = auth_store.read(self.writer.r, name)
        if state.locked(now):
            raise CodeRefused(f"{need}; {name} is locked until {_hm(state.locked_until)} after "
                              f"{state.failures} failures in a row")
        if not cmd.otp:
            raise CodeRefused(f"{need} (the command carries none)")
        res = totp.check(user.totp_secret, cmd.otp, state.last_step, now / 1000)
        if not res.ok:
            new = self._fail(name, state, res.reason, now)
            lock = f"; {name} is now locked until {_hm(new.locked_until)}" if new.locked(now) else ""
            raise CodeRefused(f"{why}: TOTP refused: {res.reason} ({new.failures} of "
                              f"{auth_store.MAX_FAILURES} failures){lock}")
        ok = state.after_success(res.step)
        return why, [lambda pipe: auth_store.queue(pipe, name, ok)]

    def event(self, cmd: Command) -> str:
        """An ``auth`` command (the dashboard's sign-in events): the audit's text; failures raise
        CodeRefused (recorded as rejected), a wrong password of a known user counted."""
        name, event = cmd.target, cmd.value
        detail = cmd.reason or event
        if event == "login_failed":
            users = self._users()
            try:
                known = users is not None and users.get(name) is not None
            except UsersFileError:
                known = False
            note = ""
            if known:
                now = int(time.time() * 1000)
                new = self._fail(name, auth_store.read(self.writer.r, name), "wrong password", now)
                note = f" ({new.failures} of {auth_store.MAX_FAILURES} failures" + (
                    f"; locked until {_hm(new.locked_until)})" if new.locked(now) else ")")
            raise CodeRefused(f"sign-in refused for {name!r}: {detail}{note}")
        if event == "session_refused":
            raise CodeRefused(f"session cookie refused: {detail}")
        return {"login_ok": f"{name} signed in ({detail})", "logout": f"{name} signed out",
                "totp_enrolled": f"{name} enrolled a TOTP authenticator"}.get(event, f"{name}: {event}")


def _hm(ms: int) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(ms / 1000))
