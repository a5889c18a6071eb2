"""The dashboard's sessions: server-side records (user, role, when it started, when it was last used)
behind a signed cookie ``<session id>.<HMAC-SHA256 of the id>``.

The signing key is a file beside the users file (created once, 0600), so a cookie stays verifiable
across dashboard restarts: a cookie whose signature does not match was altered (refused and recorded),
one that verifies but names no live session expired or outlived a restart (the user signs in again).
A session ends after ``BOT_SESSION_TTL_S`` (8 h) or ``BOT_SESSION_IDLE_S`` (30 min) without use.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from core.paths import write_private

COOKIE = "bot_session"
TTL_ENV, IDLE_ENV = "BOT_SESSION_TTL_S", "BOT_SESSION_IDLE_S"
DEFAULT_TTL_S, DEFAULT_IDLE_S = 8 * 3600, 30 * 60
_SID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(slots=True)
class Session:
    sid: str
    user: str
    role: str
    created_ms: int
    last_seen_ms: int


@dataclass(frozen=True, slots=True)
class Resolved:
    session: Session | None
    problem: str  # "" | "tampered" | "expired" | "unknown"
    detail: str = ""


def load_key(path: Path) -> bytes:
    """The signing key at ``path``, created (32 random bytes, 0600) on first use."""
    if not path.exists():
        write_private(path, secrets.token_bytes(32))
    key = path.read_bytes()
    if len(key) < 32:
        raise ValueError(f"session key {path} is shorter than 32 bytes; delete it to make a new one")
    return key


def _limits() -> tuple[int, int]:
    def num(env: str, default: int) -> int:
        try:
            return max(1, int(float(os.environ.get(env, default))))
        except ValueError:
            return default
    return num(TTL_ENV, DEFAULT_TTL_S), num(IDLE_ENV, DEFAULT_IDLE_S)


class SessionBook:
    """Live sessions of one dashboard process (thread-safe: Streamlit runs sessions on threads)."""

    def __init__(self, key: bytes, ttl_s: int | None = None, idle_s: int | None = None) -> None:
        self._key = key
        ttl, idle = _limits()
        self.ttl_ms = 1000 * (ttl_s if ttl_s is not None else ttl)
        self.idle_ms = 1000 * (idle_s if idle_s is not None else idle)
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def _sign(self, sid: str) -> str:
        mac = hmac.new(self._key, sid.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def create(self, user: str, role: str, now_ms: int) -> tuple[Session, str]:
        """A new session and its cookie value."""
        sid = secrets.token_urlsafe(24)
        s = Session(sid, user, role, now_ms, now_ms)
        with self._lock:
            self._sessions[sid] = s
        return s, f"{sid}.{self._sign(sid)}"

    def resolve(self, cookie: str, now_ms: int) -> Resolved:
        """The live session a cookie names (its last use moved to ``now_ms``), or why not."""
        sid, dot, sig = cookie.partition(".")
        if not dot or not sid or len(cookie) > 200 or not set(sid) <= _SID_CHARS:
            return Resolved(None, "tampered", "malformed session cookie")
        if not hmac.compare_digest(self._sign(sid), sig):
            return Resolved(None, "tampered", "session cookie signature does not match")
        return self.touch(sid, now_ms)

    def touch(self, sid: str, now_ms: int) -> Resolved:
        with self._lock:
            s = self._sessions.get(sid)
            if s is None:
                return Resolved(None, "unknown", "no such session (it ended, or the dashboard restarted)")
            if now_ms - s.created_ms > self.ttl_ms:
                del self._sessions[sid]
                return Resolved(None, "expired", f"session older than {self.ttl_ms // 1000} s")
            if now_ms - s.last_seen_ms > self.idle_ms:
                del self._sessions[sid]
                return Resolved(None, "expired", f"session unused for more than {self.idle_ms // 1000} s")
            s.last_seen_ms = now_ms
            return Resolved(s, "")

    def end(self, sid: str) -> None:
        with self._lock:
            self._sessions.pop(sid, None)

    def end_user(self, user: str) -> None:
        """Every session of ``user`` (their password or role changed, or they were removed)."""
        with self._lock:
            for sid in [k for k, s in self._sessions.items() if s.user == user]:
                del self._sessions[sid]
