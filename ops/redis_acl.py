"""Redis locked down for `make run`: one ACL user a process, passwords generated once into a file
outside the repository (``<secrets dir>/redis-users.json``, 0600; ``core.paths``), the ACL file Redis
loads holding only their SHA-256 hashes.

* ``worker``    reads and writes every key of the product (and its backtest processes, which it spawns);
                no administration (no FLUSHALL, FLUSHDB, CONFIG, ACL, SHUTDOWN, DEBUG, KEYS ...).
* ``dashboard`` and ``api``: read every key, write only the command stream (XADD): a kill switch or any
                other change reaches state through the worker, never around it.
* ``notifier``  reads; writes only its own status key, its consumer group on the event stream and (its
                Telegram chat control) the command stream.
* ``default``   off: a process without a password gets nothing.

Each process gets its own ``BOT_REDIS__URL`` with its user and password in its environment (never in
config.yaml, a log or Redis). ``shown`` is the URL without the password, for messages.
"""
from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path
from urllib.parse import quote, urlparse, urlunparse

from core.paths import secrets_dir, too_open, write_private
from state import keys

USERS = ("worker", "dashboard", "api", "notifier", "archiver")
_READ = "%R~*"
_SAFE = "+@all -@admin -@dangerous +info +client|setname +client|getname"
_SHARDS = keys.shard_commands(1).rsplit(":", 1)[0] + ":*"  # the other shards' command streams (state/shards.py)
_CONN = "+@connection +client|setname +client|getname +@transaction"
RULES = {
    "worker": f"~* &* {_SAFE} +acl|log",  # ACL LOG: the refused commands of the others, to read
    "dashboard": f"{_READ} %W~{keys.COMMANDS} %W~{_SHARDS} resetchannels -@all +@read {_CONN} +xadd",
    "api": f"{_READ} %W~{keys.COMMANDS} %W~{_SHARDS} resetchannels -@all +@read {_CONN} +xadd",
    # its consumer group on the events; XADD only onto the command stream (Telegram chat control runs here)
    "notifier": f"{_READ} %W~{keys.NOTIFIER}* %W~{keys.EVENTS} %W~{keys.COMMANDS} %W~{_SHARDS} resetchannels -@all +@read {_CONN} "
                "+@stream -xdel -xtrim -xsetid +hset +hdel +set +del +expire",
    # reads the record streams into the long-term store; writes its own status key only
    "archiver": f"{_READ} %W~{keys.ARCHIVER_STATUS} resetchannels -@all +@read {_CONN} +set",
}


def passwords_path() -> Path:
    return secrets_dir() / "redis-users.json"


def passwords(path: Path | None = None) -> dict[str, str]:
    """The users' passwords, generated (32 random bytes each, 0600) on first use and kept."""
    path = path or passwords_path()
    if path.exists():
        if too_open(path):
            raise ValueError(f"{path} may be read by other users: chmod 600 {path}")
        stored = json.loads(path.read_text())
        if set(USERS) <= set(stored):
            return {u: stored[u] for u in USERS}
    made = {u: secrets.token_urlsafe(32) for u in USERS}
    write_private(path, json.dumps(made, indent=2).encode())
    return made


def acl_text(pw: dict[str, str]) -> str:
    """The ACL file: the default user off, each user with its password's SHA-256 and its rules."""
    lines = ["user default off resetkeys -@all"]
    for user in USERS:
        digest = hashlib.sha256(pw[user].encode()).hexdigest()
        lines.append(f"user {user} on #{digest} resetkeys {RULES[user]}")
    return "\n".join(lines) + "\n"


def write_acl(pw: dict[str, str], path: Path | None = None) -> Path:
    path = path or secrets_dir() / "redis.acl"
    write_private(path, acl_text(pw).encode())
    return path


def url_for(base: str, user: str, password: str) -> str:
    """``base`` (redis://host:port/db) with ``user`` and ``password`` in it."""
    u = urlparse(base)
    host = u.hostname or "127.0.0.1"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}" + (f":{u.port}" if u.port else "")
    return urlunparse(u._replace(netloc=netloc))


def shown(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    u = urlparse(url)
    if not u.password:
        return url
    netloc = f"{u.username or ''}:***@{u.hostname}" + (f":{u.port}" if u.port else "")
    return urlunparse(u._replace(netloc=netloc))
