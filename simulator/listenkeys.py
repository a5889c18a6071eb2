"""USD-M user-stream listen keys: one active key, 60-minute lifetime, POST returns the same key.

python-binance POSTs again every few minutes and reconnects if the key changes, so POST must
return the active key while it is valid, as Binance does (reference/binance-api.md §0.3, §7).
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass

from simulator.errors import ApiError

LIFETIME_MS = 60 * 60 * 1000


def invalid_listen_key() -> ApiError:
    return ApiError(-1125, "This listenKey does not exist.")


@dataclass
class ListenKeys:
    key: str | None = None
    expires_at: int = 0

    def create(self, now_ms: int) -> str:
        if self.key is None or now_ms >= self.expires_at:
            self.key = secrets.token_hex(32)
        self.expires_at = now_ms + LIFETIME_MS
        return self.key

    def keepalive(self, key: str | None, now_ms: int) -> str:
        if not self.valid(key, now_ms):
            raise invalid_listen_key()
        self.expires_at = now_ms + LIFETIME_MS
        assert self.key is not None
        return self.key

    def close(self, key: str | None, now_ms: int) -> None:
        if not self.valid(key, now_ms):
            raise invalid_listen_key()
        self.key = None

    def valid(self, key: str | None, now_ms: int) -> bool:
        return key is not None and key == self.key and now_ms < self.expires_at
