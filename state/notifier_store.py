"""The notifier's side of the state store: its consumer group on the events stream, the record
of which targets already have an unacknowledged event, and its status.

Everything the notifier writes lives in its one key ``keys.NOTIFIER`` (a HASH: ``status`` and
``sent:{event id}:{target id}``), plus the XACKs of its consumer group. An event is acknowledged
only when every target has it (sent, or given up on after its retries); a restart reads its own
pending events again and sends each only to the targets that do not have it yet.
"""
from __future__ import annotations

from typing import Iterable

import redis
from pydantic import BaseModel, ConfigDict, Field

from state import keys
from state.events import Event, ensure_notifier_group, parse_event


class TargetStatus(BaseModel):
    """One notification target as the notifier sees it. ``label`` never holds a secret."""

    model_config = ConfigDict(extra="ignore")

    label: str
    min_severity: str = "info"
    state: str = "idle"  # idle | ok | retrying (backing off after a failure) | failing (gave up on some)
    sent: int = 0  # messages delivered (a digest counts once)
    events: int = 0  # events delivered
    failures: int = 0  # failed attempts
    dropped: int = 0  # events given up on after the retry period, or pushed out of a full queue
    queued: int = 0
    last_ok: int = 0
    last_error: str = ""
    next_retry: int = 0


class NotifierStatus(BaseModel):
    model_config = ConfigDict(extra="ignore")

    time: int
    pid: int
    started_at: int
    targets: list[TargetStatus] = Field(default_factory=list)
    events_read: int = 0
    suppressed: int = 0  # repeats held back by de-duplication (told in summaries)
    worker: str = "unknown"  # up | down | unknown, from the worker's heartbeat
    telegram: str = "off"


def _s(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class NotifierStore:
    def __init__(self, r: redis.Redis, consumer: str = "notifier") -> None:
        # One notifier process: a fixed consumer name, so a restart finds its own pending events.
        self.r = r
        self.consumer = consumer

    def ensure_group(self) -> None:
        ensure_notifier_group(self.r)

    def _read(self, ids: str, block_ms: int | None, count: int) -> list[tuple[str, Event | None]]:
        resp = self.r.xreadgroup(keys.NOTIFIER_GROUP, self.consumer, {keys.EVENTS: ids}, count=count, block=block_ms)
        out = []
        for _stream, entries in (resp.items() if isinstance(resp, dict) else resp or []):
            for entry_id, fields in entries:
                out.append((_s(entry_id), parse_event(entry_id, fields) if fields else None))
        return out

    def read_pending(self, after: str = "0", count: int = 100) -> list[tuple[str, Event | None]]:
        """Events this consumer read before and has not acknowledged (left by a crash), after ``after``.
        An entry that is not an event comes back as (id, None): acknowledge and skip it."""
        return self._read(after, None, count)

    def read_new(self, block_ms: int, count: int = 100) -> list[tuple[str, Event | None]]:
        """Events nobody in the group has read yet, waiting up to ``block_ms`` for the first."""
        return self._read(">", block_ms, count)

    def delivered(self, entry_id: str, target_ids: Iterable[str]) -> set[str]:
        """Which of ``target_ids`` already have this event (sent before a restart)."""
        ids = list(target_ids)
        if not ids:
            return set()
        got = self.r.hmget(keys.NOTIFIER, [f"sent:{entry_id}:{t}" for t in ids])
        return {t for t, v in zip(ids, got) if v is not None}

    def mark_delivered(self, entry_id: str, target_id: str) -> None:
        self.r.hset(keys.NOTIFIER, f"sent:{entry_id}:{target_id}", "1")

    def ack(self, entry_id: str, target_ids: Iterable[str]) -> None:
        """Every target has the event: acknowledge it and forget its per-target record, together."""
        pipe = self.r.pipeline(transaction=True)
        pipe.xack(keys.EVENTS, keys.NOTIFIER_GROUP, entry_id)
        fields = [f"sent:{entry_id}:{t}" for t in target_ids]
        if fields:
            pipe.hdel(keys.NOTIFIER, *fields)
        pipe.execute()

    def ack_many(self, entry_ids: list[str]) -> None:
        """Acknowledge events no target needed (below every threshold, repeats, not events)."""
        if entry_ids:
            self.r.xack(keys.EVENTS, keys.NOTIFIER_GROUP, *entry_ids)

    def write_status(self, status: NotifierStatus) -> None:
        self.r.hset(keys.NOTIFIER, "status", status.model_dump_json())


def read_notifier_status(r: redis.Redis) -> NotifierStatus | None:
    """The notifier's last status (the dashboard and the API show it); None if it never ran."""
    raw = r.hget(keys.NOTIFIER, "status")
    return NotifierStatus.model_validate_json(raw) if raw else None
