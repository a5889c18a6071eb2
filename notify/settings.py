"""The notifier's settings: from ``BOT_``-prefixed environment variables only (they hold tokens,
so never config.yaml or Redis), plus an optional file of URLs for those who keep secrets in files.

``BOT_NOTIFY_URLS``: apprise URLs separated by whitespace or newlines; each may start with a
severity threshold and ``=`` (``critical=tgram://TOKEN/CHAT``): the target gets events of at
least that severity (default ``BOT_NOTIFY_MIN_SEVERITY``, ``info``). ``BOT_NOTIFY_URLS_FILE``:
the same, one a line, ``#`` comments allowed.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from state.events import SEVERITIES

_THRESHOLD = re.compile(r"^(info|warning|critical)=(?=[A-Za-z][A-Za-z0-9+.-]*://)")


class NotifySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOT_", extra="ignore")

    notify_urls: SecretStr | None = None
    notify_urls_file: Path | None = None
    notify_min_severity: Literal["info", "warning", "critical"] = "info"
    # Repeats of one thing (same kind, bot and rule) inside this window are held back and told
    # in one summary when it ends.
    notify_dedupe_window_s: float = Field(300.0, ge=0)
    # Messages a target gets per minute at most; what comes faster is joined into one digest.
    notify_rate_per_min: int = Field(20, ge=1)
    # A failing target is retried with backoff (1 s doubling to 60 s); an event it still lacks
    # after this long is given up on for that target (counted, logged, shown).
    notify_retry_for_s: float = Field(3600.0, gt=0)
    notify_queue_max: int = Field(1000, ge=1)
    notify_timeout_s: float = Field(8.0, gt=0)
    telegram_token: SecretStr | None = None
    telegram_chat_ids: str = ""
    telegram_base_url: str = "https://api.telegram.org/bot"


class SettingsError(ValueError):
    """A bad notifier setting; the message names the variable (never its secret value)."""


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """One target. ``url`` is a secret; ``label`` and ``id`` are safe to log and store."""

    url: str
    min_severity: str
    label: str
    id: str


def _entries(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0] if line.lstrip().startswith("#") else line
        out.extend(line.split())
    return out


def parse_targets(s: NotifySettings) -> list[TargetSpec]:
    """The configured targets, in order. Raises SettingsError naming the variable and position."""
    sources: list[tuple[str, str]] = []
    if s.notify_urls is not None:
        sources.append(("BOT_NOTIFY_URLS", s.notify_urls.get_secret_value()))
    if s.notify_urls_file is not None:
        try:
            sources.append(("BOT_NOTIFY_URLS_FILE", s.notify_urls_file.read_text()))
        except OSError as exc:
            raise SettingsError(f"BOT_NOTIFY_URLS_FILE: cannot read {s.notify_urls_file}: {exc.strerror}") from None
    targets: list[TargetSpec] = []
    for var, text in sources:
        for i, entry in enumerate(_entries(text), 1):
            m = _THRESHOLD.match(entry)
            severity = m.group(1) if m else s.notify_min_severity
            url = entry[m.end():] if m else entry
            scheme = urlsplit(url).scheme
            if not scheme or "://" not in url:
                raise SettingsError(f"{var}: entry {i} is not a URL (scheme://...)")
            assert severity in SEVERITIES
            n = len(targets) + 1
            targets.append(TargetSpec(url=url, min_severity=severity, label=f"#{n} {scheme}",
                                      id=hashlib.sha256(url.encode()).hexdigest()[:12]))
    return targets


def telegram_chats(s: NotifySettings) -> set[int]:
    chats = set()
    for part in re.split(r"[\s,]+", s.telegram_chat_ids.strip()):
        if not part:
            continue
        try:
            chats.add(int(part))
        except ValueError:
            raise SettingsError(f"BOT_TELEGRAM_CHAT_IDS: {part!r} is not a chat id (an integer)") from None
    if s.telegram_token is not None and not chats:
        raise SettingsError("BOT_TELEGRAM_CHAT_IDS: needed with BOT_TELEGRAM_TOKEN (the chats allowed to command)")
    return chats


def secrets_of(s: NotifySettings, targets: list[TargetSpec]) -> list[str]:
    """Every string that must never reach a log line: the URLs and their parts that can hold a token."""
    out: list[str] = []
    for t in targets:
        out.append(t.url)
        parts = urlsplit(t.url)
        out.append(t.url.split("?", 1)[0])
        for piece in [parts.netloc, parts.username or "", parts.password or "", parts.hostname or "",
                      *parts.path.split("/"), *re.split(r"[&=]", parts.query)]:
            if len(piece) >= 6 and piece not in ("127.0.0.1", "localhost"):
                out.append(piece)
    if s.telegram_token is not None:
        out.append(s.telegram_token.get_secret_value())
    return out
