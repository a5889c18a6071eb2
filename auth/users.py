"""Dashboard users: a JSON file outside the repository (``BOT_USERS_FILE``), mode 0600, holding each
user's role, argon2id password hash and TOTP secret. ``bot_manager.py user`` manages it; the dashboard
reads it (and writes a TOTP secret at enrolment), the worker reads it to check the codes of live
actions. Nothing here ever goes to Redis, a log or a page.

Roles, from least to most: ``viewer`` (reads), ``operator`` (kill switches, pause/resume of paper and
ghost bots, DCA bots, backtests), ``live-operator`` (also live actions, each with a fresh TOTP code).
"""
from __future__ import annotations

import fcntl
import os
import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.paths import secrets_dir, too_open, write_private
from core.validation import format_errors

USERS_ENV = "BOT_USERS_FILE"
Role = Literal["viewer", "operator", "live-operator"]
ROLES: tuple[str, ...] = ("viewer", "operator", "live-operator")
NAME_RULE = re.compile(r"^[a-z][a-z0-9_.-]{1,31}$")
MIN_PASSWORD = 12
_HASHER = PasswordHasher()  # argon2id, the library's defaults (RFC 9106 low-memory profile)
# verified when the name is unknown, so a wrong name costs as long as a wrong password
_DUMMY = _HASHER.hash("not a password of anyone")


class UsersFileError(ValueError):
    """The users file cannot be used; the message says why and what to do."""


class User(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    role: Role
    password_hash: str
    totp_secret: str | None = None
    totp_enrolled_at: int = 0
    created_at: int = 0

    @property
    def rank(self) -> int:
        return ROLES.index(self.role)

    @property
    def can_operate(self) -> bool:
        """Kill switches and every command that is not a live action."""
        return self.rank >= 1

    @property
    def can_go_live(self) -> bool:
        """Live actions (with a fresh TOTP code): the role, and a TOTP secret enrolled."""
        return self.role == "live-operator" and bool(self.totp_secret)

    def public(self) -> dict[str, object]:
        """What may be shown: never the hash or the secret."""
        return {"name": self.name, "role": self.role, "totp": bool(self.totp_secret),
                "totp_enrolled_at": self.totp_enrolled_at, "created_at": self.created_at}


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    users: dict[str, User] = Field(default_factory=dict)


def check_name(name: str) -> str:
    if not NAME_RULE.match(name):
        raise ValueError(f"user name {name!r}: 2-32 characters, lower-case letters, digits, '_', '.', '-', "
                         "starting with a letter")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"password: at least {MIN_PASSWORD} characters")
    if password.strip() != password:
        raise ValueError("password: no leading or trailing spaces")
    return password


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role {role!r}: one of {', '.join(ROLES)}")
    return role


def users_path() -> Path | None:
    """The configured users file (``BOT_USERS_FILE``), or None: then the dashboard has no login and
    serves 127.0.0.1 only."""
    raw = os.environ.get(USERS_ENV, "").strip()
    return Path(raw).expanduser() if raw else None


def default_path() -> Path:
    return secrets_dir() / "users.json"


class UsersFile:
    """The users file at ``path``; every change is written atomically (0600) under an exclusive lock,
    so the CLI and the dashboard never lose each other's writes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def from_env(cls) -> "UsersFile | None":
        p = users_path()
        return cls(p) if p is not None else None

    # ---- reading ---------------------------------------------------------------------------
    def load(self) -> dict[str, User]:
        if not self.path.exists():
            raise UsersFileError(f"users file {self.path} does not exist (bot_manager.py user add NAME creates it)")
        if too_open(self.path):
            raise UsersFileError(f"users file {self.path} may be read by other users: chmod 600 {self.path}")
        try:
            data = _File.model_validate_json(self.path.read_bytes())
        except ValidationError as exc:
            raise UsersFileError(f"users file {self.path}: {format_errors(exc)}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UsersFileError(f"users file {self.path}: {exc}") from None
        return data.users

    def get(self, name: str) -> User | None:
        return self.load().get(name)

    def authenticate(self, name: str, password: str) -> User | None:
        """The user when ``password`` is theirs; None otherwise (an unknown name costs the same time)."""
        user = self.load().get(name)
        try:
            _HASHER.verify(user.password_hash if user else _DUMMY, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        return user

    # ---- changing --------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[dict[str, User]]:
        """The users, for changing: written back atomically when the block ends without an error."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            users = self.load() if self.path.exists() else {}
            yield users
            body = _File(users=users).model_dump_json(indent=2).encode()
            write_private(self.path, body)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def add(self, name: str, role: str, password: str) -> User:
        check_name(name)
        check_role(role)
        check_password(password)
        with self._locked() as users:
            if name in users:
                raise UsersFileError(f"user {name!r} exists already (bot_manager.py user passwd/role)")
            users[name] = User(name=name, role=role, password_hash=_HASHER.hash(password),  # type: ignore[arg-type]
                               created_at=int(time.time() * 1000))
            return users[name]

    def set_password(self, name: str, password: str) -> None:
        check_password(password)
        with self._locked() as users:
            self._need(users, name).password_hash = _HASHER.hash(password)

    def set_role(self, name: str, role: str) -> None:
        check_role(role)
        with self._locked() as users:
            self._need(users, name).role = role  # type: ignore[assignment]

    def remove(self, name: str) -> None:
        with self._locked() as users:
            self._need(users, name)
            del users[name]

    def enrol_totp(self, name: str, secret: str) -> None:
        """Store the TOTP secret the user has just proved with a code (the dashboard or the CLI checked it)."""
        with self._locked() as users:
            user = self._need(users, name)
            user.totp_secret = secret
            user.totp_enrolled_at = int(time.time() * 1000)

    def reset_totp(self, name: str) -> None:
        with self._locked() as users:
            user = self._need(users, name)
            user.totp_secret, user.totp_enrolled_at = None, 0

    @staticmethod
    def _need(users: dict[str, User], name: str) -> User:
        if name not in users:
            raise UsersFileError(f"no user {name!r}; users: {', '.join(sorted(users)) or 'none'}")
        return users[name]

    def names(self) -> list[dict[str, object]]:
        return [u.public() for u in self.load().values()]
