"""The notifier process: events stream -> policy -> targets; heartbeat watch; status; Telegram.

Reading: at start, the events this consumer left unacknowledged (a crash) — each is sent only
to the targets that do not have it yet (``state.notifier_store``) — then new events as they come.
An event is acknowledged when every target that wants it has it or gave up on it, so a restart
neither loses nor repeats one (an event sent in the instant between a target's answer and the
record of it would be sent again: the only window).
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from typing import Awaitable, Callable

import redis

from notify.masking import install
from notify.policy import Deduper
from notify.settings import NotifySettings, SettingsError, TargetSpec, parse_targets, secrets_of, telegram_chats
from notify.targets import Delivery, Target
from state.events import Event, worker_started, worker_stopped
from state.notifier_store import NotifierStatus, NotifierStore
from state.reader import StateReader

log = logging.getLogger("notify")
BACKLOG_MAX = 5_000  # unacknowledged events in hand at most; reading waits beyond (the stream keeps them)
WORKER_GRACE_S = 30.0  # a worker never seen since the notifier started counts as down after this


class Notifier:
    def __init__(self, r: redis.Redis, s: NotifySettings, specs: list[TargetSpec],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.r = r
        self.store = NotifierStore(r)
        self.targets = [Target(spec, s, clock) for spec in specs]
        self.dedupe = Deduper(s.notify_dedupe_window_s)
        self.clock = clock
        self.outstanding: dict[str, set[str]] = {}  # event id -> targets that do not have it yet
        self.started = clock()
        now_ms = int(time.time() * 1000)
        self.status = NotifierStatus(time=now_ms, pid=os.getpid(), started_at=now_ms)
        self.worker_up: bool | None = None
        self.extra_tasks: list[Callable[[asyncio.Event], Awaitable[None]]] = []

    # ---- dispatch -------------------------------------------------------------------------
    def dispatch(self, entry_id: str | None, e: Event,
                 already: frozenset[str] | set[str] = frozenset()) -> list[str]:
        """Queue ``e`` for every target that wants it (and lacks it); returns the ids still waiting
        for it. Repeats held back by de-duplication go nowhere (their summary comes later)."""
        if entry_id is not None and not self.dedupe.admit(e, self.clock()):
            return []
        waiting = []
        for t in self.targets:
            if t.wants(e) and t.id not in already:
                waiting.append(t.id)
                pushed = t.put(Delivery(entry_id, e))
                if pushed is not None:
                    self._done(t.id, pushed, False)
        return waiting

    def _done(self, target_id: str, d: Delivery, delivered: bool) -> None:
        """A target has finished with ``d`` (sent, or given up on)."""
        if d.entry_id is None:
            return
        rest = self.outstanding.get(d.entry_id)
        if rest is None:
            return
        try:
            if delivered:
                self.store.mark_delivered(d.entry_id, target_id)
            rest.discard(target_id)
            if not rest:
                del self.outstanding[d.entry_id]
                self.store.ack(d.entry_id, [t.id for t in self.targets])
        except redis.RedisError as exc:  # left pending: a restart finds it and sends it where it is missing
            log.error("event %s: recording its delivery failed: %s", d.entry_id, exc)

    def _take(self, entries: list[tuple[str, Event | None]], recovering: bool) -> None:
        done: list[str] = []  # nothing to send: acknowledged together
        for entry_id, e in entries:
            self.status.events_read += 1
            if entry_id in self.outstanding:
                continue
            if e is None:  # not an event: nothing to tell
                done.append(entry_id)
                continue
            already = self.store.delivered(entry_id, [t.id for t in self.targets]) if recovering else set()
            waiting = self.dispatch(entry_id, e, already)
            if waiting:
                self.outstanding[entry_id] = set(waiting)
            elif recovering:
                self.store.ack(entry_id, [t.id for t in self.targets])  # also forgets its per-target records
            else:
                done.append(entry_id)
        self.store.ack_many(done)

    # ---- loops ----------------------------------------------------------------------------
    async def consume(self, stop: asyncio.Event) -> None:
        """Read until ``stop``; Redis unreachable (at start or later): say so, wait, read again."""
        while not stop.is_set():
            try:
                await self._consume(stop)
            except redis.RedisError as exc:
                log.error("events stream: %s; retrying in 1 s", exc)
                await asyncio.sleep(1.0)

    async def _consume(self, stop: asyncio.Event) -> None:
        await asyncio.to_thread(self.store.ensure_group)
        after = "0"
        while not stop.is_set():  # first what this consumer left unacknowledged
            entries = await asyncio.to_thread(self.store.read_pending, after)
            if not entries:
                break
            self._take(entries, recovering=True)
            after = entries[-1][0]
        while not stop.is_set():
            if len(self.outstanding) >= BACKLOG_MAX:
                await asyncio.sleep(0.2)
                continue
            entries = await asyncio.to_thread(self.store.read_new, 500, 500)
            self._take(entries, recovering=False)

    def _watch_worker(self) -> None:
        """The worker cannot say that it died: its heartbeat's absence does."""
        hb = StateReader(self.r).heartbeat()
        up = hb is not None
        if up == self.worker_up:
            return
        if self.worker_up is None and not up and self.clock() - self.started < WORKER_GRACE_S:
            return  # just started: give the worker time to come up before calling it down
        if not up:
            e = worker_stopped(0, "no heartbeat from the worker: it is down or cannot reach Redis. Commands wait "
                                  "in Redis until it is back.", severity="critical")
            self.dispatch(None, e.model_copy(update={"title": "WORKER DOWN: no heartbeat",
                                                     "data": {"rule": "heartbeat", "source": "notifier"}}))
        elif self.worker_up is False:
            assert hb is not None
            e = worker_started(hb.pid, hb.bots, hb.version)
            self.dispatch(None, e.model_copy(update={"title": f"worker is back (pid {hb.pid}, {hb.bots} bots)",
                                                     "data": {"rule": "heartbeat", "source": "notifier"}}))
        self.worker_up = up

    async def housekeeping(self, stop: asyncio.Event) -> None:
        """Every second: summaries of ended de-duplication windows, the worker watch, the status."""
        while not stop.is_set():
            try:
                for e in self.dedupe.flush(self.clock()):
                    self.dispatch(None, e)
                await asyncio.to_thread(self._watch_worker)
                await asyncio.to_thread(self.write_status)
            except redis.RedisError as exc:
                log.error("redis: %s", exc)
            try:
                await asyncio.wait_for(stop.wait(), timeout=1.0)
            except asyncio.TimeoutError:
                pass

    def write_status(self) -> None:
        self.status.time = int(time.time() * 1000)
        self.status.targets = [t.status.model_copy(update={"queued": len(t.queue)}) for t in self.targets]
        self.status.suppressed = self.dedupe.suppressed_total
        self.status.worker = {None: "unknown", True: "up", False: "down"}[self.worker_up]
        self.store.write_status(self.status)

    async def run(self, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(self.consume(stop), name="consume"),
                 asyncio.create_task(self.housekeeping(stop), name="housekeeping")]
        tasks += [asyncio.create_task(t.run(stop, lambda d, ok, tid=t.id: self._done(tid, d, ok)),
                                      name=f"target {t.spec.label}") for t in self.targets]
        tasks += [asyncio.create_task(fn(stop)) for fn in self.extra_tasks]
        await stop.wait()
        await asyncio.wait(tasks, timeout=5)  # let them finish cleanly (Telegram stops its polling)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            self.write_status()
        except redis.RedisError:
            pass


def redis_client() -> redis.Redis:
    from settings import load_config

    return redis.Redis.from_url(load_config().redis.url, decode_responses=True, socket_timeout=10,
                                health_check_interval=30)


async def _amain(n: Notifier, s: NotifySettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if s.telegram_token is not None:
        from notify.telegram import ChatControl

        chat = ChatControl(n.r, s.telegram_token.get_secret_value(), telegram_chats(s), s.telegram_base_url,
                           n.status)
        n.extra_tasks.append(chat.run)
    await n.run(stop)


def main() -> int:
    from settings import ConfigError

    s = NotifySettings()
    try:
        specs = parse_targets(s)
        telegram_chats(s)
    except SettingsError as exc:
        install([])
        log.error("%s", exc)
        return 2
    install(secrets_of(s, specs))
    try:
        r = redis_client()
        n = Notifier(r, s, specs)
    except (SettingsError, ConfigError) as exc:
        log.error("%s", exc)
        return 2
    log.info("notifier: %d target(s): %s; telegram chat control %s", len(specs),
             ", ".join(f"{t.label} (>= {t.min_severity})" for t in specs) or "none",
             "on" if s.telegram_token is not None else "off")
    asyncio.run(_amain(n, s))
    return 0
