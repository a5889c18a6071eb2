"""Authentication: API keys, HMAC-SHA256 request signatures and the timestamp/recvWindow rule.

Binance signs ``totalParams`` = raw query string concatenated (no separator) with the raw body,
without the trailing ``signature`` parameter; the signature is the lowercase hex HMAC-SHA256 of it
under the API secret (reference/binance-api.md §3). The server verifies over the bytes received,
never re-encoding or re-sorting.

The default key/secret are public constants for the offline simulator; they are not secrets.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Mapping

from simulator import errors

DEFAULT_API_KEY = "local-key"
DEFAULT_API_SECRET = "local-secret"

DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60000
MAX_AHEAD_MS = 1000


def sign(secret: str, payload: str) -> str:
    """Lowercase hex HMAC-SHA256 of ``payload`` under ``secret``."""
    return hmac.new(secret.encode("utf-8"), payload.encode("utf-8"), hashlib.sha256).hexdigest()


def _strip_signature(raw: str) -> tuple[str, str | None]:
    """Remove every ``signature=...`` component from a raw ``a=1&b=2`` string."""
    if not raw:
        return "", None
    kept: list[str] = []
    signature: str | None = None
    for part in raw.split("&"):
        if part.startswith("signature="):
            signature = part[len("signature="):]
        else:
            kept.append(part)
    return "&".join(kept), signature


def signed_payload(raw_query: str, raw_body: str) -> tuple[str, str | None]:
    """Return (payload that was signed, signature sent) from the raw query string and body."""
    query, sig_q = _strip_signature(raw_query)
    body, sig_b = _strip_signature(raw_body)
    return query + body, sig_b if sig_b is not None else sig_q


def verify_signature(secret: str, payload: str, signature: str | None) -> bool:
    if not signature:
        return False
    return hmac.compare_digest(sign(secret, payload), signature.lower())


def check_timestamp(timestamp: int, recv_window: int, server_ms: int) -> None:
    """Binance's rule: accept iff timestamp < server + 1000 and server - timestamp <= recvWindow."""
    if timestamp >= server_ms + MAX_AHEAD_MS:
        raise errors.timestamp_ahead()
    if server_ms - timestamp > recv_window:
        raise errors.timestamp_outside_window()


def _absent(value: object) -> bool:
    return value is None or value == ""


def check_request_time(params: Mapping[str, object], server_ms: int) -> None:
    """``timestamp`` (mandatory, -1102 if absent) and ``recvWindow`` (default 5000 ms, 0 < w <= 60000,
    -1131 otherwise; may be fractional) parsed as Binance does (-1100 if malformed), then the
    timestamp rule (-1021). REST params are strings; WS-API params are JSON values, so numbers are
    accepted as they are, and anything else (true, null, lists...) is malformed."""
    raw_ts = params.get("timestamp")
    if _absent(raw_ts):
        raise errors.mandatory_missing("timestamp")
    try:
        if isinstance(raw_ts, bool) or not isinstance(raw_ts, (str, int)):
            raise TypeError
        timestamp = int(raw_ts)
    except (TypeError, ValueError):
        raise errors.illegal_chars_int("timestamp") from None
    recv_window = DEFAULT_RECV_WINDOW_MS
    raw_window = params.get("recvWindow")
    if not _absent(raw_window):
        try:
            if isinstance(raw_window, bool) or not isinstance(raw_window, (str, int, float)):
                raise TypeError
            recv_window = int(float(raw_window))
        except (TypeError, ValueError, OverflowError):  # OverflowError: "inf"
            raise errors.illegal_chars_int("recvWindow") from None
        if recv_window > MAX_RECV_WINDOW_MS or recv_window <= 0:
            raise errors.bad_recv_window()
    check_timestamp(timestamp, recv_window, server_ms)


def _valid_key_format(key: str) -> bool:
    return 0 < len(key) <= 256 and all(c.isascii() and c.isprintable() and not c.isspace() for c in key)


@dataclass
class KeyStore:
    """API key -> secret. One account sits behind all keys (the simulator has one user)."""

    keys: dict[str, str] = field(default_factory=lambda: {DEFAULT_API_KEY: DEFAULT_API_SECRET})

    def secret_for(self, api_key: str | None) -> str:
        """The secret for ``api_key``; -2014 if missing/malformed, -2015 if unknown."""
        if not isinstance(api_key, str) or not _valid_key_format(api_key):  # WS-API: any JSON value
            raise errors.api_key_format_invalid()
        secret = self.keys.get(api_key)
        if secret is None:
            raise errors.invalid_api_key()
        return secret


def authenticate(
    keys: KeyStore,
    api_key: str | None,
    params: dict[str, str],
    raw_query: str,
    raw_body: str,
    server_ms: int,
) -> None:
    """The full SIGNED check: key, mandatory timestamp/signature, recvWindow, timestamp, HMAC."""
    secret = keys.secret_for(api_key)
    if _absent(params.get("timestamp")):
        raise errors.mandatory_missing("timestamp")
    if _absent(params.get("signature")):
        raise errors.mandatory_missing("signature")
    check_request_time(params, server_ms)
    payload, signature = signed_payload(raw_query, raw_body)
    if not verify_signature(secret, payload, signature):
        raise errors.bad_signature()


def api_key_only(keys: KeyStore, api_key: str | None) -> None:
    """USER_STREAM endpoints (listenKey) need a valid key but no signature."""
    keys.secret_for(api_key)
