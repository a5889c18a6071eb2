"""Sign-in and TOTP state of each dashboard user, in Redis (``keys.auth_state``): consecutive failures,
the lock they lead to, and the step of the last accepted TOTP code (so a code is accepted once).
None of it is secret; the passwords and TOTP secrets stay in the users file.

The worker writes it (a refused code or password counts a failure; an accepted code clears them and
moves the step), the dashboard reads it to refuse a sign-in while the user is locked.
"""
from __future__ import annotations

import os

import redis
from pydantic import BaseModel

from state import keys

MAX_FAILURES = 5


def lock_ms() -> int:
    """How long a user stays locked after ``MAX_FAILURES`` failures in a row (``BOT_AUTH_LOCK_S``, 900 s)."""
    try:
        return int(1000 * max(1.0, float(os.environ.get("BOT_AUTH_LOCK_S", "900"))))
    except ValueError:
        return 900_000


class AuthState(BaseModel):
    failures: int = 0
    locked_until: int = 0  # epoch ms
    last_step: int | None = None
    last_failure_at: int = 0
    last_reason: str = ""

    def locked(self, now_ms: int) -> bool:
        return self.locked_until > now_ms

    def after_failure(self, reason: str, now_ms: int) -> "AuthState":
        """The state after one more failure: the fifth in a row locks the user."""
        failures = (0 if self.locked_until and self.locked_until <= now_ms else self.failures) + 1
        locked = now_ms + lock_ms() if failures >= MAX_FAILURES else self.locked_until
        return self.model_copy(update={"failures": failures, "locked_until": locked, "last_failure_at": now_ms,
                                       "last_reason": reason[:200]})

    def after_success(self, step: int | None) -> "AuthState":
        last = self.last_step if step is None else max(step, self.last_step or step)
        return self.model_copy(update={"failures": 0, "locked_until": 0, "last_step": last, "last_reason": ""})

    def fields(self) -> dict[str, str]:
        return {k: "" if v is None else str(v) for k, v in self.model_dump().items()}


def read(r: redis.Redis, user: str) -> AuthState:
    raw = r.hgetall(keys.auth_state(user))
    if not raw:
        return AuthState()
    d = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v) for k, v in raw.items()}
    return AuthState(failures=int(d.get("failures") or 0), locked_until=int(d.get("locked_until") or 0),
                     last_step=int(d["last_step"]) if d.get("last_step") else None,
                     last_failure_at=int(d.get("last_failure_at") or 0), last_reason=d.get("last_reason", ""))


def queue(pipe: "redis.client.Pipeline", user: str, state: AuthState) -> None:
    """Queue the write of ``state`` (in the caller's transaction: the worker's command commit)."""
    pipe.hset(keys.auth_state(user), mapping=state.fields())
