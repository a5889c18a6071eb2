"""The worker's records of a venue bot's venue (the Live tab reads them through ``state.reader``):
the last pre-flight report, the venue view the last reconciliation saw, and the reconciliation
baseline — what the venue holds that is not the bot's (the user's own coins, written-off dust,
a difference the operator chose to ignore). Never a key or a secret: only order and balance facts."""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import redis

from state import keys


class VenueStore:
    def __init__(self, r: redis.Redis) -> None:
        self.r = r

    def save_preflight(self, bot: str, report: dict[str, Any]) -> None:
        self.r.set(keys.preflight(bot), json.dumps(report, default=str))

    def save_view(self, bot: str, view: dict[str, Any]) -> None:
        self.r.set(keys.venue_view(bot), json.dumps(view, default=str))

    def save_account(self, data: dict[str, Any]) -> None:
        self.r.set(keys.ACCOUNT_GUARD, json.dumps(data, default=str))

    def load_account(self) -> dict[str, Any] | None:
        raw = self.r.get(keys.ACCOUNT_GUARD)
        return json.loads(raw) if raw else None

    def baseline(self, bot: str, key: str) -> Decimal | None:
        """The bot's baseline for an asset (spot) or a symbol (futures); None when never fixed."""
        raw = self.r.hget(keys.recon_baseline(bot), key)
        return Decimal(raw) if raw is not None else None

    def set_baseline(self, bot: str, key: str, value: Decimal) -> None:
        self.r.hset(keys.recon_baseline(bot), key, str(value))
