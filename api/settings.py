"""The API's settings, from ``BOT_``-prefixed environment variables (and secrets files) only:
tokens and webhook secrets never come from config.yaml, never go to Redis or a log.

API tokens — ``BOT_API_TOKENS`` (entries separated by commas, whitespace or newlines) and/or
``BOT_API_TOKENS_FILE`` (one entry a line, ``#`` comments); each entry is ``name:scope:token``:
  name   letters, digits, '-', '_' (the audit shows ``api:<name>``)
  scope  ``read`` (every GET and the validate-trade dry run) or ``operator`` (read + commands)
  token  at least 24 characters (``python -c "import secrets; print(secrets.token_urlsafe(32))"``),
         or ``sha256=<64 hex>``: the token's SHA-256, so the environment need not hold the token.

Webhook secrets — ``BOT_WEBHOOK_SECRETS`` / ``BOT_WEBHOOK_SECRETS_FILE``, entries ``bot:secret``
(at least 16 characters): a bot without one has no webhook.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

Scope = Literal["read", "operator"]
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_HEX = re.compile(r"^[0-9a-f]{64}$")
MIN_TOKEN = 24
MIN_SECRET = 16


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOT_API_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8503, ge=1, le=65535)
    tokens: SecretStr | None = None
    tokens_file: Path | None = None
    # How long a command waits for the worker's answer before 504 (it stays queued).
    command_timeout_s: float = Field(10.0, gt=0, le=120)
    max_body_bytes: int = Field(65_536, ge=1024)


class WebhookSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOT_WEBHOOK_", extra="ignore")

    secrets: SecretStr | None = None
    secrets_file: Path | None = None
    max_age_s: float = Field(120.0, gt=0)  # an alert older than this is stale: refused
    max_future_s: float = Field(30.0, ge=0)  # clock skew allowed for an alert time ahead of ours
    dedupe_window_s: float = Field(300.0, gt=0)  # an alert without id: same content inside it = once
    refused_per_min: int = Field(30, ge=1)  # refused alerts recorded in the audit per bot and minute


class SettingsError(ValueError):
    """A bad API setting; the message names the variable and entry, never a secret."""


@dataclass(frozen=True, slots=True)
class TokenEntry:
    name: str
    scope: Scope
    digest: bytes  # SHA-256 of the token: the token itself is not kept


def _read(var: str, secret: SecretStr | None, path: Path | None) -> list[tuple[str, int, str]]:
    """(variable, entry number, entry) from the variable and its _FILE twin."""
    out: list[tuple[str, int, str]] = []
    if secret is not None:
        parts = [p for p in re.split(r"[\s,]+", secret.get_secret_value()) if p]
        out += [(var, i, p) for i, p in enumerate(parts, 1)]
    if path is not None:
        try:
            text = path.read_text()
        except OSError as exc:
            raise SettingsError(f"{var}_FILE: cannot read {path}: {exc.strerror}") from None
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
        out += [(f"{var}_FILE", i, ln) for i, ln in enumerate(lines, 1)]
    return out


def parse_tokens(s: ApiSettings) -> list[TokenEntry]:
    entries: list[TokenEntry] = []
    for var, i, raw in _read("BOT_API_TOKENS", s.tokens, s.tokens_file):
        name, _, rest = raw.partition(":")
        scope, _, token = rest.partition(":")
        where = f"{var}: entry {i}"
        if not _NAME.match(name):
            raise SettingsError(f"{where}: name must be 1-40 letters, digits, '-' or '_' (format name:scope:token)")
        if scope not in ("read", "operator"):
            raise SettingsError(f"{where} ({name}): scope must be 'read' or 'operator'")
        if token.startswith("sha256="):
            hexdigest = token.removeprefix("sha256=").lower()
            if not _HEX.match(hexdigest):
                raise SettingsError(f"{where} ({name}): sha256= needs the 64 hex digits of the token's SHA-256")
            digest = bytes.fromhex(hexdigest)
        elif len(token) < MIN_TOKEN:
            raise SettingsError(f"{where} ({name}): the token must have at least {MIN_TOKEN} characters")
        else:
            digest = hashlib.sha256(token.encode()).digest()
        if any(e.name == name for e in entries):
            raise SettingsError(f"{where}: token name {name!r} is used twice")
        entries.append(TokenEntry(name, scope, digest))  # type: ignore[arg-type]
    return entries


def parse_webhook_secrets(s: WebhookSettings) -> dict[str, bytes]:
    """bot -> SHA-256 of its webhook secret."""
    out: dict[str, bytes] = {}
    for var, i, raw in _read("BOT_WEBHOOK_SECRETS", s.secrets, s.secrets_file):
        bot, _, secret = raw.partition(":")
        bot, secret = bot.strip(), secret.strip()
        where = f"{var}: entry {i}"
        if not _NAME.match(bot):
            raise SettingsError(f"{where}: the bot name must be letters, digits, '-' or '_' (format bot:secret)")
        if len(secret) < MIN_SECRET:
            raise SettingsError(f"{where} ({bot}): the secret must have at least {MIN_SECRET} characters")
        out[bot] = hashlib.sha256(secret.encode()).digest()
    return out
