"""The worker's side of the state store: snapshots, histories, controls, commands, heartbeat.

Every batch of changes is written at once (one script, state/batch.py), so a crash leaves Redis
either before or after a candle's effects, never half way. The dashboard never writes through this module.
"""
from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from typing import Callable, Iterable

import redis

from core.types import Candle, split_key
from state import keys
from state.batch import Batch, BatchRunner, Sent
from state.events import (
    Event,
    ensure_notifier_group,
    events_of_audit,
    events_of_update,
    queue_event,
    state_changed,
)
from state.lease import LeaseLost
from state.models import (
    AuditRecord,
    BotMeta,
    BotSnapshot,
    BotUpdate,
    CandleRecord,
    CommandResult,
    ControlChange,
    ControlRecord,
    Heartbeat,
)
from state.shards import Route

CANDLES_KEPT = 600
_Batch = tuple[list[BotUpdate], list[Candle], list[ControlChange], list[AuditRecord]]
# A symbol's candle list is trimmed back to CANDLES_KEPT once this many candles were added since its last
# trim (not with every candle: one command a candle less; readers take the newest n, so a list up to
# CANDLES_KEPT + TRIM_EVERY long reads the same).
TRIM_EVERY = 60
RESULT_TTL_S = 24 * 3600
# Commits the trading loop may have sent ahead of their answers (commit(defer=True)): Redis runs a step's
# batch while the worker computes the next ones. With one step ahead, at 100 bots, the worker still waited
# ~5 ms for the batch of each step in which every bot traded (~565 KB): the next step was done sooner.
DEFER_MAX = 4


@dataclass
class _Write:
    """One write: what it holds (kept if it fails), its id (``keys.LAST_COMMIT``), its cursors, and once
    sent ahead of its answer, what waits for it."""
    batch: _Batch
    marker: str
    cursors: dict[str, int]
    sent: Sent | None = None


def _s(entry_id: object) -> str:
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


class StateWriter:
    def __init__(self, r: redis.Redis, keep: int = 5000) -> None:
        self.r = r
        self.keep = keep
        # the worker's lease token (state/lease.py): set, every batch commits only while it still holds
        self.fence: int | None = None
        # what failed writes left (updates, candles, controls, audits) and the id and list lengths of
        # one whose outcome is unknown (see _with_kept)
        self._kept: _Batch = ([], [], [], [])
        self._unsure: list[tuple[str, tuple[int, ...]]] = []
        self._untrimmed: dict[str, int] = {}  # candle series -> candles added since its last LTRIM
        # with shards (state/shards.py): fence key -> token of every shard the worker holds, all checked
        self.fences: dict[str, int] = {}
        self._runner = BatchRunner(r)
        # cursors of a failed commit, written by the next (absolute values: writing one twice is harmless)
        self._kept_cursors: dict[str, int] = {}
        # deferred commits (commit(defer=True)): sent on one connection, their answers not read yet (settle)
        self._inflight: list[_Write] = []
        self._io = threading.RLock()  # the writer is shared by the worker's threads

    def _transaction(self, build: Callable[[redis.client.Pipeline], None], ahead: _Write | None = None) -> None:
        """What ``build`` queues, written at once (state/batch.py): all or nothing, and only while this
        worker still holds the lease when ``fence`` (or ``fences``) is set. ``ahead`` (a deferred commit):
        sent without waiting for its answer, where it goes as one script."""
        with self._io:
            fences = self.fences or ({keys.FENCE: self.fence} if self.fence is not None else {})
            batch = Batch()
            build(batch)  # type: ignore[arg-type]  # Batch records redis-py's own command methods
            if ahead is None or not batch.scripted():
                self.settle()  # deferred writes first: Redis runs this one after them
                self._runner.execute(batch, fences)
                return
            self.settle(keep=DEFER_MAX - 1)
            conn = self._inflight[0].sent.conn if self._inflight else None  # type: ignore[union-attr]
            self._inflight.append(ahead)  # before it is sent: a connection lost now loses those ahead too
            try:
                ahead.sent = self._runner.send(batch, fences, conn)
            except (redis.ConnectionError, redis.TimeoutError):
                lost, self._inflight = self._inflight, []
                self._lost(lost)
                raise
            except BaseException:
                self._inflight.pop()
                self._refused(ahead)
                raise

    def transaction(self, build: Callable[[redis.client.Pipeline], None], audits: Iterable[AuditRecord] = ()) -> None:
        """What ``build`` queues (a module of ``state`` that owns the keys) and ``audits``, in one fenced
        write (the go-live stages, the sign-in records)."""
        def all_of(pipe: redis.client.Pipeline) -> None:
            build(pipe)
            for a in audits:
                self._queue_audit(pipe, a)
        self._transaction(all_of)

    # ---- start-up -------------------------------------------------------------------------
    def register_bots(self, metas: Iterable[BotMeta]) -> None:
        mapping = {m.name: m.model_dump_json() for m in metas}

        def build(pipe: redis.client.Pipeline) -> None:
            pipe.delete(keys.BOTS)
            if mapping:
                pipe.hset(keys.BOTS, mapping=mapping)

        self._transaction(build)

    def load_control(self, scope: str, target: str = "") -> ControlRecord:
        raw = self.r.hgetall(keys.control(scope, target))
        if not raw:
            return ControlRecord()
        return ControlRecord.model_validate({_s(k): _s(v) for k, v in raw.items()})

    def load_snapshot(self, bot: str) -> BotSnapshot | None:
        raw = self.r.get(keys.snapshot(bot))
        return BotSnapshot.model_validate_json(raw) if raw else None

    def recent_candles(self, key: str, n: int = CANDLES_KEPT, interval: str = "1m") -> list[Candle]:
        """The stored series ``key`` (a symbol, or ``SYMBOL:futures``: core.types.candle_key), oldest first."""
        symbol, market = split_key(key)
        rows = self.r.lrange(keys.candles(key), -n, -1)
        return [CandleRecord.model_validate_json(row).to_candle(symbol, interval, market) for row in rows]

    # ---- per batch ------------------------------------------------------------------------
    def _queue_update(self, pipe: redis.client.Pipeline, u: BotUpdate) -> None:
        name = u.snapshot.name
        keep = self.keep
        for key, records in (
            (keys.orders(name), u.orders),
            (keys.fills(name), u.fills),
            (keys.trades(name), u.trades),
            (keys.signals(name), u.signals),
            (keys.equity(name), u.equity),
            (keys.risk_decisions(name), u.risk),
        ):
            for rec in records:
                pipe.xadd(key, {"data": rec.model_dump_json()}, maxlen=keep, approximate=True)
        for deal in u.deals:
            pipe.xadd(keys.deals(name), {"data": json.dumps(deal)}, maxlen=keep, approximate=True)
        for key, qty in u.dust:
            pipe.hincrbyfloat(keys.recon_baseline(name), key, qty)
        pipe.set(keys.snapshot(name), u.snapshot.model_dump_json())
        for e in events_of_update(u):  # what people are told, in the same transaction as the change
            queue_event(pipe, e)

    def commit(self, updates: Iterable[BotUpdate], candles: Iterable[Candle] = (),
               candle_rejects: dict[str, int] | None = None, rejections: Iterable[object] = (),
               controls: Iterable[ControlChange] = (), audits: Iterable[AuditRecord] = (),
               cursors: dict[str, int] | None = None, defer: bool = False) -> None:
        """Write one batch atomically: new candles, each bot's events and snapshot (``updates`` holds
        the bots whose snapshot is due: engine.snapshot_policy), the last candle each bot processed
        (``cursors``), and the state changes the risk monitor made during the batch (with their audit
        records). If Redis cannot take it, it is kept here and written first by the next write
        (``_kept``; cursors by the next commit): the caller drops it.

        ``defer``: return once the batch is sent, before Redis answers, so that the trading loop computes
        its next step while Redis runs this one. The answer is read by ``settle``, which every later write
        through this writer calls first (so Redis runs the writes in the order they were made); a failure
        is then handled as a failed write (kept, or ``LeaseLost``) and raised to that caller."""
        with self._io:
            try:
                batch = self._with_kept(updates, candles, controls, audits, DEFER_MAX - 1 if defer else 0)
            except (redis.RedisError, LeaseLost):
                self._kept_cursors = {**self._kept_cursors, **(cursors or {})}
                raise
            cursors = {**self._kept_cursors, **cursors} if self._kept_cursors and cursors else (
                cursors or self._kept_cursors)
            self._kept_cursors = {}

            def queue(pipe: redis.client.Pipeline) -> None:
                self._queue_commit(pipe, *batch[:2], candle_rejects, rejections, *batch[2:])
                if cursors:
                    pipe.hset(keys.SNAPSHOT_CURSORS, mapping=cursors)

            self._write(batch, queue, cursors, defer)

    def load_cursors(self) -> dict[str, int]:
        """bot -> the last closed candle it processed (keys.SNAPSHOT_CURSORS)."""
        return {_s(k): int(v) for k, v in self.r.hgetall(keys.SNAPSHOT_CURSORS).items()}

    # ---- what a failed write leaves: kept, and written once ---------------------------------------
    # A write that fails is kept (its bookings, candles, state changes, audits and cursors) and written
    # first by the next write of any caller. One whose answer was lost (Redis died between running it and
    # the reply) may have been written: each write sets its id in ``keys.LAST_COMMIT`` in the same
    # transaction, and the next write asks for it first, dropping the kept part it covered. Deferred
    # commits (``commit(defer=True)``) run in the order they were sent, on one connection: when it is
    # lost, the last id written says how many of them ran.
    def _with_kept(self, updates: Iterable[BotUpdate], candles: Iterable[Candle], controls: Iterable[ControlChange],
                   audits: Iterable[AuditRecord], ahead: int = 0) -> _Batch:
        """What the next write holds: what earlier writes left, then ``updates`` .. ``audits``. The answers
        of deferred commits are read first, down to ``ahead`` of them."""
        fresh = (list(updates), list(candles), list(controls), list(audits))
        try:
            self.settle(keep=ahead)
            if self._unsure:
                last = self.r.get(keys.LAST_COMMIT)
                last = last.decode() if isinstance(last, bytes) else last
                ran = [0, 0, 0, 0]
                for marker, counts in self._unsure:
                    ran = [n + c for n, c in zip(ran, counts)]
                    if marker == last:  # this one and those before it ran
                        self._kept = tuple(k[n:] for k, n in zip(self._kept, ran))  # type: ignore[assignment]
                        break
                self._unsure = []
        except (redis.RedisError, LeaseLost):
            self._kept = tuple(k + f for k, f in zip(self._kept, fresh))  # type: ignore[assignment]
            raise
        batch, self._kept = tuple(k + f for k, f in zip(self._kept, fresh)), ([], [], [], [])
        return batch  # type: ignore[return-value]

    def _write(self, batch: _Batch, queue: Callable[[redis.client.Pipeline], None],
               cursors: dict[str, int] | None = None, defer: bool = False) -> None:
        marker = uuid.uuid4().hex

        def build(pipe: redis.client.Pipeline) -> None:
            queue(pipe)
            pipe.set(keys.LAST_COMMIT, marker)

        write = _Write(batch, marker, cursors or {})
        try:  # the answers its caller left unread (none after _with_kept): a failure there is theirs
            self.settle(keep=DEFER_MAX - 1 if defer else 0)
        except BaseException:
            self._refused(write)  # not sent
            raise
        if defer:
            self._transaction(build, ahead=write)  # which keeps what fails
            return
        try:
            self._transaction(build)
        except (redis.ConnectionError, redis.TimeoutError):
            self._lost([write])
            raise
        except BaseException:  # refused, or fenced out (LeaseLost): it did not run
            self._refused(write)
            raise

    def settle(self, keep: int = 0) -> None:
        """Read the answers of deferred commits, oldest first, until ``keep`` are left unread. A failed
        one is kept as a failed write is (``_lost``, ``_refused``) and its error raised here; a moved fence
        raises ``LeaseLost`` (the worker stops; the answers behind it are dropped unread)."""
        with self._io:
            while len(self._inflight) > keep:
                write = self._inflight[0]
                try:
                    self._runner.finish(write.sent, release=len(self._inflight) == 1)  # type: ignore[arg-type]
                except (redis.ConnectionError, redis.TimeoutError):
                    lost, self._inflight = self._inflight, []
                    self._lost(lost)
                    raise
                except LeaseLost:  # fenced out: neither it nor those behind it ran (a fence only moves on)
                    fenced, self._inflight = self._inflight, []
                    if len(fenced) > 1:
                        self._runner.drop(write.sent)  # type: ignore[arg-type]  # their answers are not wanted
                    for w in fenced:
                        self._refused(w)
                    raise
                except BaseException:
                    self._inflight.pop(0)
                    self._refused(write)
                    raise
                self._inflight.pop(0)

    def _lost(self, writes: list[_Write]) -> None:
        """Writes whose answers were lost: each may have run. Kept, ahead of what is kept already (the
        next write asks which ran: ``_with_kept``). Nothing is unsure before: a write is sent only after
        ``_with_kept`` resolved the last loss."""
        self._kept = tuple(sum((list(w.batch[i]) for w in writes), []) + self._kept[i]  # type: ignore[assignment]
                           for i in range(4))
        self._unsure = [(w.marker, tuple(len(xs) for xs in w.batch)) for w in writes]
        self._keep_cursors(writes)

    def _refused(self, write: _Write) -> None:
        """A write refused before it ran, or not sent: kept whole."""
        self._kept = tuple(k + list(b) for k, b in zip(self._kept, write.batch))  # type: ignore[assignment]
        self._keep_cursors([write])

    def _keep_cursors(self, writes: list[_Write]) -> None:
        for w in writes:  # the later write's cursor is the newer
            self._kept_cursors.update(w.cursors)

    @property
    def kept(self) -> int:
        """Bot updates, candles, state changes and audits waiting for Redis."""
        return sum(len(xs) for xs in self._kept)

    def _queue_commit(self, pipe: redis.client.Pipeline, updates: Iterable[BotUpdate], candles: Iterable[Candle],
                      candle_rejects: dict[str, int] | None, rejections: Iterable[object],
                      controls: Iterable[ControlChange], audits: Iterable[AuditRecord]) -> None:
        for ch in controls:
            self._queue_control(pipe, ch)
        for a in audits:
            self._queue_audit(pipe, a)
        added: dict[str, int] = {}
        for c in candles:
            pipe.rpush(keys.candles(c.key), CandleRecord.of(c).model_dump_json())
            added[c.key] = added.get(c.key, 0) + 1
        for sym, n in added.items():
            # counted when queued: a failed transaction only trims a little later
            since = self._untrimmed.get(sym, TRIM_EVERY) + n  # a fresh writer trims each series once first
            if since >= TRIM_EVERY:
                pipe.ltrim(keys.candles(sym), -CANDLES_KEPT, -1)
                since = 0
            self._untrimmed[sym] = since
        for u in updates:
            self._queue_update(pipe, u)
        if candle_rejects:
            for reason, n in candle_rejects.items():
                pipe.hincrby(keys.CANDLE_REJECTS, reason, n)
        for rej in rejections:  # market.validate.Rejection: symbol, open_time, reason
            pipe.xadd(keys.REJECTS, {"kind": "candle", "detail": f"{rej.symbol} {rej.open_time}: {rej.reason}",
                                     "raw": "{}"}, maxlen=self.keep, approximate=True)

    @staticmethod
    def _queue_control(pipe: redis.client.Pipeline, ch: ControlChange) -> None:
        pipe.hset(keys.control(ch.scope, ch.target),
                  mapping={k: "" if v is None else str(v.value if hasattr(v, "value") else v)
                           for k, v in ch.record.model_dump().items()})
        rec = ch.record
        if ch.old is not None and ch.old is not rec.state:
            queue_event(pipe, state_changed(ch.scope, ch.target, ch.old.value, rec.state.value, rec.set_by, rec.reason,
                                            now_ms=rec.set_at or None))

    @staticmethod
    def _queue_audit(pipe: redis.client.Pipeline, a: AuditRecord) -> None:
        pipe.xadd(keys.AUDIT, {"data": a.model_dump_json()}, maxlen=100_000, approximate=True)
        for e in events_of_audit(a):
            queue_event(pipe, e)

    def open_events(self) -> None:
        """At start, before the first event: the notifier's group exists from here on."""
        ensure_notifier_group(self.r)

    def publish(self, event: Event) -> None:
        """An event on its own (worker started or stopped, the daily summary)."""
        self._transaction(lambda pipe: queue_event(pipe, event))

    def dynamic_bots(self) -> dict[str, str]:
        return {_s(k): _s(v) for k, v in self.r.hgetall(keys.DYNAMIC_BOTS).items()}

    def load_limits(self, bot: str) -> dict[str, object]:
        return {_s(k): json.loads(v) for k, v in self.r.hgetall(keys.limits(bot)).items()}

    def health(self, view: dict[str, object]) -> None:
        self.r.set(keys.HEALTH, json.dumps(view, default=str))

    def heartbeat(self, hb: Heartbeat, ttl_s: int) -> None:
        data = hb.model_dump_json()
        pipe = self.r.pipeline(transaction=True)
        pipe.set(keys.HEARTBEAT, data, ex=ttl_s)
        pipe.set(keys.LAST_HEARTBEAT, data)
        pipe.execute()

    def clear_heartbeat(self, hb: Heartbeat | None = None) -> None:
        """On a clean stop: the dashboard shows 'worker down' at once instead of after the TTL, and the
        last record says it stopped cleanly."""
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(keys.HEARTBEAT)
        if hb is not None:
            pipe.set(keys.LAST_HEARTBEAT, hb.model_copy(update={"clean_stop": True}).model_dump_json())
        pipe.execute()

    def crashed_before(self) -> int:
        """When the previous worker was last seen, if it did not stop cleanly (0 otherwise)."""
        raw = self.r.get(keys.LAST_HEARTBEAT)
        if not raw:
            return 0
        last = Heartbeat.model_validate_json(raw)
        return 0 if last.clean_stop else last.time

    def record_reject(self, kind: str, detail: str, raw: dict[str, str] | None = None) -> None:
        self.r.xadd(keys.REJECTS, {"kind": kind, "detail": detail, "raw": json.dumps(raw or {})},
                    maxlen=self.keep, approximate=True)

    # ---- commands -------------------------------------------------------------------------
    def ensure_group(self) -> None:
        try:
            self.r.xgroup_create(keys.COMMANDS, keys.COMMAND_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def already_applied(self, nonce: str, route: Route | None = None) -> str | None:
        v = self.r.get(route.applied_key(nonce) if route else keys.applied(nonce)) or self.r.hget(keys.APPLIED, nonce)
        return _s(v) if v is not None else None

    def finish_command(
        self,
        entry_id: str,
        result: CommandResult,
        audit: AuditRecord,
        controls: Iterable[ControlChange] = (),
        updates: Iterable[BotUpdate] = (),
        limit_changes: Iterable[tuple[str, str, object]] = (),
        dynamic_bots: Iterable[tuple[str, str]] = (),
        metas: Iterable[BotMeta] = (),
        more_audits: Iterable[AuditRecord] = (),
        extra: Iterable[Callable[[redis.client.Pipeline], None]] = (),
        route: Route | None = None,
        forget: bool = False,
    ) -> None:
        """Effect + audit + answer + XACK in one transaction (``more_audits``: what the command's
        effect set off, e.g. a risk rule tripped by a losing close; ``extra``: writes queued by another
        ``state`` module, e.g. a go-live stage moved, a TOTP code consumed; ``route``: the shard's
        stream it came from, state/shards.py; ``forget``: the entry is deleted from the stream with its ack — it
        carried a TOTP code, which has no business in Redis once it is used or refused)."""
        # the effect is kept if Redis cannot take it (the entry is delivered again and answered then)
        batch = self._with_kept(updates, (), controls, more_audits)

        def build(pipe: redis.client.Pipeline) -> None:
            for write in extra:
                write(pipe)
            self._queue_finish(pipe, entry_id, result, audit, batch[2], batch[0], limit_changes, dynamic_bots, metas,
                               batch[3], route or Route(), batch[1])
            if forget:
                pipe.xdel((route or Route()).stream, entry_id)

        self._write(batch, build)

    def _queue_finish(self, pipe: redis.client.Pipeline, entry_id: str, result: CommandResult, audit: AuditRecord,
                      controls: Iterable[ControlChange], updates: Iterable[BotUpdate],
                      limit_changes: Iterable[tuple[str, str, object]], dynamic_bots: Iterable[tuple[str, str]],
                      metas: Iterable[BotMeta], more_audits: Iterable[AuditRecord], route: Route,
                      candles: Iterable[Candle] = ()) -> None:
        self._queue_commit(pipe, (), candles, None, (), (), ())  # candles a failed batch left
        for ch in controls:
            self._queue_control(pipe, ch)
        for bot, limit, value in limit_changes:
            pipe.hset(keys.limits(bot), limit, json.dumps(value))
        for name, config_json in dynamic_bots:
            pipe.hset(keys.DYNAMIC_BOTS, name, config_json)
        for meta in metas:
            pipe.hset(keys.BOTS, meta.name, meta.model_dump_json())
        for u in updates:
            self._queue_update(pipe, u)
        if result.status in ("applied", "pending"):
            pipe.set(route.applied_key(result.nonce), entry_id, ex=keys.APPLIED_KEEP_S)
        for a in (audit, *more_audits):
            self._queue_audit(pipe, a)
        if result.nonce and result.status != "duplicate":  # keep the first answer
            route.queue_result(pipe, result, RESULT_TTL_S)
        pipe.xack(route.stream, keys.COMMAND_GROUP, entry_id)

