"""Where the product keeps what must never be in the repository: generated Redis passwords, the
dashboard's session key and, by default, the users file (``BOT_SECRETS_DIR``, else
``$XDG_CONFIG_HOME/tradebot``, else ``~/.config/tradebot``). Files there are created mode 0600."""
from __future__ import annotations

import os
from pathlib import Path


def secrets_dir() -> Path:
    if os.environ.get("BOT_SECRETS_DIR"):
        return Path(os.environ["BOT_SECRETS_DIR"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "tradebot"


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, readable and writable by this user only (0600); the
    folder is created 0700."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def too_open(path: Path) -> bool:
    """True when anyone but the owner may read or write ``path``."""
    return bool(path.stat().st_mode & 0o077)
