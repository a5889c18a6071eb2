"""Order intents of live bots: recorded before the request is sent, updated on every transition.

The worker-side store. An intent is created atomically (a Lua script: the record, the open set
and the first event together) and creation refuses a client order id it has seen before, so a
restarted worker can never send the same order twice. Each later transition rewrites the record,
appends an event and, when the status is final, leaves the open set, in one MULTI/EXEC.

Keys (state/keys.py): intents(bot) HASH, open_intents(bot) SET, intent_events(bot) STREAM.
No secrets are stored here: only order facts.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable, Protocol

import redis
from pydantic import BaseModel, ConfigDict, Field

from core.order_status import FINAL
from state import keys
from state.lease import LeaseLost

log = logging.getLogger(__name__)


KEEP_FINAL = 1000  # final intents kept per bot at least ...
KEEP_FINAL_MS = 7 * 24 * 3600 * 1000  # ... and every one younger than a week


class IntentFill(BaseModel):
    model_config = ConfigDict(extra="ignore")
    trade_id: int
    price: str
    qty: str
    commission: str
    commission_asset: str
    time: int


class IntentRecord(BaseModel):
    """One live order from intent to final state. Decimals are kept as their exact strings."""

    model_config = ConfigDict(extra="ignore")
    client_order_id: str
    bot: str
    venue: str
    market: str  # spot | futures
    symbol: str
    side: str
    order_type: str = "MARKET"
    quantity: str  # as sent, rounded to the filters
    price: str = ""  # LIMIT: the limit price as sent
    tag: str = ""  # what a resting order is for (a DCA "SO2", "TP1", "protect"), for the dashboard and recovery
    stop_price: str = ""  # protective orders: the stop's trigger as sent
    stop_limit_price: str = ""  # spot stop-limit: its limit price as sent
    reduce_only: bool = False
    purpose: str = ""
    status: str = "INTENT"  # core.order_status: INTENT NEW PARTIALLY_FILLED FILLED CANCELED REJECTED EXPIRED
    created_at: int  # ms, wall clock
    updated_at: int = 0
    order_id: int | None = None
    executed_qty: str = "0"
    cum_quote: str = "0"
    avg_price: str = "0"
    fills: list[IntentFill] = Field(default_factory=list)
    reason: str = ""

    @property
    def final(self) -> bool:
        return self.status in FINAL


class IntentEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")
    client_order_id: str
    time: int
    status: str
    reason: str = ""
    executed_qty: str = "0"


class IntentStore(Protocol):
    """What LiveExecutor needs; RedisIntentStore is the worker's, MemoryIntentStore the tests'."""

    def create(self, rec: IntentRecord) -> bool:
        """Record a new intent; False (and nothing written) if the id is already known."""
        ...

    def update(self, rec: IntentRecord) -> None:
        """Persist the record's new state (and the transition event)."""
        ...

    def get(self, bot: str, client_order_id: str) -> IntentRecord | None: ...

    def open(self, bot: str) -> list[IntentRecord]:
        """Intents of a bot that are not final, oldest first."""
        ...

    def recent(self, bot: str, since_ms: int) -> list[IntentRecord]:
        """Intents of a bot created after ``since_ms``, oldest first."""
        ...


_CREATE = """
if ARGV[5] ~= '' and redis.call('GET', KEYS[4]) ~= ARGV[5] then return -1 end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'data', ARGV[3])
return 1
"""


def _event(rec: IntentRecord) -> str:
    return IntentEvent(client_order_id=rec.client_order_id, time=rec.updated_at or rec.created_at,
                       status=rec.status, reason=rec.reason, executed_qty=rec.executed_qty).model_dump_json()


class RedisIntentStore:
    def __init__(self, r: redis.Redis, keep_events: int = 10_000) -> None:
        self.r = r
        self.keep_events = keep_events
        self._create = r.register_script(_CREATE)
        self._unsaved: dict[tuple[str, str], IntentRecord] = {}  # transitions an outage kept in memory
        self._lock = threading.RLock()
        # the worker's lease token (state/lease.py): set, an intent is recorded (and so an order sent)
        # only while this worker still holds the lease
        self.fence: int | None = None
        # with shards (state/shards.py): bot -> (its shard's fence key, this worker's token for it)
        self.fence_of: Callable[[str], tuple[str, int]] | None = None

    def create(self, rec: IntentRecord) -> bool:
        b = rec.bot
        fence_key, token = self.fence_of(b) if self.fence_of is not None else (keys.FENCE, self.fence)
        done = int(self._create(keys=[keys.intents(b), keys.open_intents(b), keys.intent_events(b), fence_key],
                                args=[rec.client_order_id, rec.model_dump_json(), _event(rec), self.keep_events,
                                      "" if token is None else str(token)]))
        if done < 0:
            raise LeaseLost(f"order {rec.client_order_id} not recorded: this worker no longer holds the lease")
        return bool(done)

    def update(self, rec: IntentRecord) -> None:
        """Persist a transition. While Redis is unreachable the record is kept in memory and written as
        soon as it is back (``flush``): a fill the user-data stream reported during an outage is not lost."""
        with self._lock:
            self._unsaved.pop((rec.bot, rec.client_order_id), None)
            try:
                self._flush_locked()
                self._write(rec)
            except redis.ConnectionError as exc:
                self._unsaved[(rec.bot, rec.client_order_id)] = rec.model_copy(deep=True)
                log.error("intent %s kept in memory until Redis is back (%s)", rec.client_order_id, exc)

    def flush(self) -> int:
        """Write what an outage kept in memory; returns how many are still waiting."""
        with self._lock:
            try:
                self._flush_locked()
            except redis.ConnectionError:
                pass
            return len(self._unsaved)

    def _flush_locked(self) -> None:
        for key, rec in list(self._unsaved.items()):
            self._write(rec)
            self._unsaved.pop(key, None)
            log.info("intent %s written after the outage", rec.client_order_id)

    def _write(self, rec: IntentRecord) -> None:
        b = rec.bot
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(keys.intents(b), rec.client_order_id, rec.model_dump_json())
        if rec.final:
            pipe.srem(keys.open_intents(b), rec.client_order_id)
            pipe.zadd(keys.final_intents(b), {rec.client_order_id: rec.updated_at or rec.created_at})
        else:
            pipe.sadd(keys.open_intents(b), rec.client_order_id)
        pipe.xadd(keys.intent_events(b), {"data": _event(rec)}, maxlen=self.keep_events, approximate=True)
        pipe.execute()

    def prune(self, bot: str, keep: int = KEEP_FINAL, older_than_ms: int = KEEP_FINAL_MS, now_ms: int = 0) -> int:
        """Forget final intents beyond the newest ``keep`` that are also older than ``older_than_ms``:
        recovery needs only open ones, reconciliation recent ones, and the orders and intent-event
        streams keep the history. Open intents are never pruned. Returns how many went."""
        cutoff = now_ms - older_than_ms
        old = [i for i, score in self.r.zrange(keys.final_intents(bot), 0, -(keep + 1), withscores=True)
               if score < cutoff]
        if not old:
            return 0
        ids = [i.decode() if isinstance(i, bytes) else i for i in old]
        pipe = self.r.pipeline(transaction=True)
        pipe.hdel(keys.intents(bot), *ids)
        pipe.zrem(keys.final_intents(bot), *ids)
        pipe.execute()
        return len(ids)

    def get(self, bot: str, client_order_id: str) -> IntentRecord | None:
        kept = self._unsaved.get((bot, client_order_id))
        if kept is not None:
            return kept.model_copy(deep=True)
        raw = self.r.hget(keys.intents(bot), client_order_id)
        return IntentRecord.model_validate_json(raw) if raw else None

    def open(self, bot: str) -> list[IntentRecord]:
        ids = [i.decode() if isinstance(i, bytes) else i for i in self.r.smembers(keys.open_intents(bot))]
        if not ids:
            return []
        rows = self.r.hmget(keys.intents(bot), ids)
        out = [IntentRecord.model_validate_json(raw) for raw in rows if raw]
        return sorted(out, key=lambda x: (x.created_at, x.client_order_id))

    def recent(self, bot: str, since_ms: int) -> list[IntentRecord]:
        """The bot's intents created after ``since_ms``, oldest first."""
        return [x for x in self.all(bot) if x.created_at > since_ms]

    def all(self, bot: str) -> list[IntentRecord]:
        rows = self.r.hvals(keys.intents(bot))
        return sorted((IntentRecord.model_validate_json(x) for x in rows), key=lambda x: (x.created_at, x.client_order_id))

    def events(self, bot: str, client_order_id: str | None = None) -> list[IntentEvent]:
        out = []
        for _id, fields in self.r.xrange(keys.intent_events(bot)):
            raw = fields.get(b"data", fields.get("data"))
            ev = IntentEvent.model_validate_json(raw)
            if client_order_id is None or ev.client_order_id == client_order_id:
                out.append(ev)
        return out


class MemoryIntentStore:
    """In-process store with the same contract (unit tests, backtests of the live path)."""

    def __init__(self) -> None:
        self._recs: dict[tuple[str, str], IntentRecord] = {}
        self.history: list[IntentEvent] = []
        self._lock = threading.Lock()

    def create(self, rec: IntentRecord) -> bool:
        with self._lock:
            k = (rec.bot, rec.client_order_id)
            if k in self._recs:
                return False
            self._recs[k] = rec.model_copy(deep=True)
            self.history.append(IntentEvent.model_validate_json(_event(rec)))
            return True

    def update(self, rec: IntentRecord) -> None:
        with self._lock:
            self._recs[(rec.bot, rec.client_order_id)] = rec.model_copy(deep=True)
            self.history.append(IntentEvent.model_validate_json(_event(rec)))

    def get(self, bot: str, client_order_id: str) -> IntentRecord | None:
        rec = self._recs.get((bot, client_order_id))
        return rec.model_copy(deep=True) if rec else None

    def recent(self, bot: str, since_ms: int) -> list[IntentRecord]:
        return sorted((r.model_copy(deep=True) for (b, _), r in self._recs.items() if b == bot and r.created_at > since_ms),
                      key=lambda x: (x.created_at, x.client_order_id))

    def open(self, bot: str) -> list[IntentRecord]:
        return sorted((r.model_copy(deep=True) for (b, _), r in self._recs.items() if b == bot and not r.final),
                      key=lambda x: (x.created_at, x.client_order_id))

