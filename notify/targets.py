"""One notification target: its queue, its apprise sender, retries with backoff, its rate limit.

Each target sends on its own asyncio task, so a dead one (retrying with backoff: 1 s doubling to
60 s) never holds back another. What queues up while it waits (backoff or rate limit) goes out as
one digest message. A delivery still unsent after ``retry_for_s`` is given up on for this target,
counted and logged; so is the oldest one when the queue is over ``queue_max``.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

import apprise

from notify.policy import RateLimit
from notify.settings import NotifySettings, SettingsError, TargetSpec
from state.events import SEVERITY_RANK, Event
from state.notifier_store import TargetStatus

log = logging.getLogger("notify.targets")

_TYPES = {"info": apprise.NotifyType.INFO, "warning": apprise.NotifyType.WARNING,
          "critical": apprise.NotifyType.FAILURE}
DIGEST_MAX = 50  # events joined into one message at most
BACKOFF_MAX_S = 60.0


@dataclass(slots=True)
class Delivery:
    """One event for one target. ``entry_id``: its stream id, or None for the notifier's own events
    (summaries, worker down)."""

    entry_id: str | None
    event: Event
    queued_at: float = field(default_factory=time.monotonic)


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def render(batch: list[Delivery]) -> tuple[str, str, str]:
    """(title, body, severity) of one message for ``batch``: the event itself, or a digest."""
    events = [d.event for d in batch]
    worst = max(events, key=lambda e: SEVERITY_RANK[e.severity]).severity
    if len(events) == 1:
        e = events[0]
        body = "\n".join(x for x in (e.detail, f"{e.kind} · {_when(e.time)}" + (f" · bot {e.bot}" if e.bot else ""))
                         if x)
        return f"[{e.severity.upper()}] {e.title}", body, e.severity
    lines = [f"• [{e.severity.upper()}] {e.title}" for e in events]
    return (f"[{worst.upper()}] {len(events)} events ({_when(events[0].time)} to {_when(events[-1].time)})",
            "\n".join(lines), worst)


class Target:
    def __init__(self, spec: TargetSpec, s: NotifySettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.spec = spec
        self.id = spec.id
        self.retry_for_s = s.notify_retry_for_s
        self.queue_max = s.notify_queue_max
        self.timeout_s = s.notify_timeout_s
        self.clock = clock
        self.rate = RateLimit(s.notify_rate_per_min)
        self.queue: deque[Delivery] = deque()
        self.status = TargetStatus(label=spec.label, min_severity=spec.min_severity)
        self.backoff_s = 0.0
        self.next_try = 0.0
        self.wake = asyncio.Event()
        self._apprise = apprise.Apprise()
        if not self._apprise.add(spec.url):
            raise SettingsError(f"notification target {spec.label}: apprise does not accept this URL "
                                "(check its scheme and fields; see the apprise URL docs)")
        for service in self._apprise:  # a dead host must not hold the sender for minutes
            service.socket_connect_timeout = self.timeout_s
            service.socket_read_timeout = self.timeout_s

    def wants(self, e: Event) -> bool:
        return e.at_least(self.spec.min_severity)

    def put(self, d: Delivery) -> Delivery | None:
        """Queue ``d``; returns the delivery pushed out of a full queue (given up), if any."""
        self.queue.append(d)
        self.wake.set()
        if len(self.queue) > self.queue_max:
            old = self.queue.popleft()
            self._give_up([old], f"queue over {self.queue_max}")
            return old
        return None

    def _give_up(self, lost: list[Delivery], why: str) -> None:
        self.status.dropped += len(lost)
        self.status.state = "failing"
        log.error("target %s: gave up on %d event(s) (%s); last error: %s", self.spec.label, len(lost), why,
                  self.status.last_error or "none")

    def _send(self, title: str, body: str, severity: str) -> bool:
        """One apprise send (blocking: runs on a thread). False on any failure."""
        try:
            return bool(self._apprise.notify(body=body, title=title, notify_type=_TYPES[severity]))
        except Exception as exc:  # noqa: BLE001 - a plugin error is a failed attempt, not a crash
            self.status.last_error = f"{type(exc).__name__}"
            return False

    def _urgent(self) -> list[Delivery]:
        return [d for d in self.queue if d.event.severity == "critical"][:DIGEST_MAX]

    def _wait_s(self, now: float) -> float:
        """Seconds until the queue may send. A failing target's backoff holds everything; the rate
        limit holds everything but critical events: a risk breach must not wait a minute behind
        trade news (they go first, on their own, and still count against the limit)."""
        if not self.queue:
            return 1.0
        rate = 0.0 if self._urgent() else self.rate.wait_s(now)
        return max(self.next_try - now, rate)

    def _take(self) -> list[Delivery]:
        """The next message's deliveries: the critical ones if any wait, else the oldest, in order."""
        urgent = self._urgent()
        if urgent:
            for d in urgent:
                self.queue.remove(d)
            return urgent
        return [self.queue.popleft() for _ in range(min(DIGEST_MAX, len(self.queue)))]

    async def run(self, stop: asyncio.Event, done: Callable[[Delivery, bool], None]) -> None:
        """Send until ``stop``; ``done(delivery, delivered)`` for each delivery sent or given up on."""
        while not stop.is_set():
            now = self.clock()
            wait = self._wait_s(now)
            if wait > 0 or not self.queue:
                self.wake.clear()
                try:
                    await asyncio.wait_for(self.wake.wait(), timeout=min(max(wait, 0.05), 1.0))
                except asyncio.TimeoutError:
                    pass
                continue
            expired = [d for d in self.queue if now - d.queued_at > self.retry_for_s]
            if expired:
                for d in expired:
                    self.queue.remove(d)
                self._give_up(expired, f"not delivered within {self.retry_for_s:g} s")
                for d in expired:
                    done(d, False)
                continue
            batch = self._take()
            title, body, severity = render(batch)
            self.status.queued = len(self.queue) + len(batch)
            ok = await asyncio.to_thread(self._send, title, body, severity)
            now = self.clock()
            if ok:
                self.rate.record(now)
                self.backoff_s, self.next_try = 0.0, 0.0
                self.status.sent += 1
                self.status.events += len(batch)
                self.status.last_ok = int(time.time() * 1000)
                self.status.state, self.status.last_error, self.status.next_retry = "ok", "", 0
                for d in batch:
                    done(d, True)
            else:
                self.queue.extendleft(reversed(batch))
                self.status.failures += 1
                self.backoff_s = min(BACKOFF_MAX_S, max(1.0, self.backoff_s * 2))
                self.next_try = now + self.backoff_s
                self.status.last_error = self.status.last_error or "the target did not accept the message"
                self.status.next_retry = int(time.time() * 1000 + self.backoff_s * 1000)
                if self.status.state != "failing":
                    self.status.state = "retrying"
                log.warning("target %s: send failed (attempt %d, %d event(s) waiting); retry in %.0f s",
                            self.spec.label, self.status.failures, len(self.queue), self.backoff_s)
            self.status.queued = len(self.queue)
