"""The shards a worker holds (``worker.shards``; docs/architecture.md, "Shards and leases").

Bots are assigned to shards by ``state.shards.shard_of`` (a bot's ``shard:`` or a stable hash of its
name). A worker holds the leases of some shards (``ShardSet``): it builds and trades only their bots,
renews their leases with its heartbeat, and every write for those bots is fenced by their shard's token,
so a worker that lost a shard can write nothing more for its bots. A worker that loses any of its leases
halts every bot in its process and exits (as the single worker does).

A shard whose lease has expired — its worker died (not one never held, nor one a clean stop released) —
and stayed so for one more TTL (time for a restarted worker to take its own shards back first) is taken over by a worker that may (``take_over``):
its lease first (fencing the dead worker out), then its bots are built exactly as at a worker's start
(``Worker.add_bot``: snapshot restored, a venue bot's open intents resolved by asking the venue and
fills booked once, pre-flight, reconciliation — the one recovery path), warmed, and its command
stream's unanswered entries claimed, so a kill switch posted while it had no holder is applied.

One worker writes the market's candles (the holder of shard 0, "primary"), so several workers reading
the same venue store each candle once; it also writes the heartbeat and the health view. Commands read
from one shard's stream see only that shard's bots (``ShardRuntime``).
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, Callable, Protocol

import redis

from core.clock import Clock
from core.types import Candle
from engine.account_guard import AccountGuard
from engine.fleet import AnyBot, Fleet, UnknownTarget
from engine.live import LiveVenue
from settings import AppConfig, BotConfig
from state import shards as store
from state.lease import Holder, Lease, LeaseHeld, LeaseLost, fence_key, holder, orphaned
from state.models import AuditRecord
from state.writer import CANDLES_KEPT, StateWriter

log = logging.getLogger("worker")


class ShardSet:
    """The leases this worker holds, the shard of each of its bots, and the market's recent candles."""

    def __init__(self, app: AppConfig, r: redis.Redis, consumer: str, wanted: list[int] | None = None,
                 takeover: bool = True) -> None:
        self.r = r
        self.count = app.worker.shards
        self.ttl_s = app.worker.heartbeat_ttl_s
        self.consumer = consumer
        self.wanted = list(range(self.count)) if wanted is None else sorted(set(wanted))
        bad = [s for s in self.wanted if not 0 <= s < self.count]
        if bad:
            raise ValueError(f"shards: {bad} not in 0..{self.count - 1} (worker.shards is {self.count})")
        self.takeover = takeover
        self.leases: dict[int, Lease] = {}
        self.of: dict[str, int] = {}  # bot name -> shard, for every bot this worker built
        self._free_since: dict[int, float] = {}
        self._tail: dict[str, deque[Candle]] = {}  # each series' recent candles, for a takeover
        self._backlog: list[Candle] = []  # candles a new primary writes first (the dead primary's gap)

    # ---- which shard, whose --------------------------------------------------------------------
    def shard(self, cfg: BotConfig) -> int:
        return store.shard_of(cfg.name, self.count, cfg.shard)

    def owns(self, cfg: BotConfig) -> bool:
        return self.shard(cfg) in self.leases

    @property
    def primary(self) -> bool:
        return 0 in self.leases

    def held(self) -> list[int]:
        return sorted(self.leases)

    def names(self, shard: int) -> set[str]:
        return {n for n, s in self.of.items() if s == shard}

    # ---- leases -----------------------------------------------------------------------------------
    def acquire(self, shard: int, wait_s: float) -> Holder:
        """Take one shard's lease (LeaseHeld naming the holder otherwise) and its command stream."""
        lease = Lease(self.r, self.ttl_s, shard)
        got = lease.acquire(wait_s)
        self.leases[shard] = lease
        self._free_since.pop(shard, None)
        store.ensure_group(self.r, shard)
        claimed = store.claim_pending(self.r, shard, self.consumer)
        if claimed:
            log.warning("shard %d: %d command(s) its previous holder read but never answered, applied now",
                        shard, claimed)
        return got

    def acquire_wanted(self, wait_s: float) -> None:
        """The shards asked for, all or none: one held by a live worker releases the others (LeaseHeld)."""
        try:
            for shard in self.wanted:
                self.acquire(shard, wait_s)
        except LeaseHeld:
            self.release()
            self.leases.clear()
            raise

    def fences(self) -> dict[str, int]:
        return {lease.keys[1]: int(lease.token or 0) for lease in list(self.leases.values())}

    def fence_of(self, bot: str) -> tuple[str, int]:
        """The fence an order of ``bot`` is recorded under: its shard's, with this worker's token (0 —
        never a token — for a bot of a shard it does not hold, so nothing is recorded)."""
        shard = self.of.get(bot)
        lease = self.leases.get(shard) if shard is not None else None
        return (lease.keys[1], int(lease.token or 0)) if lease else (fence_key(shard or 0), 0)

    def renew(self) -> bool:
        """Renew every held lease; False as soon as one was taken over."""
        return all([lease.renew() for lease in list(self.leases.values())])

    def release(self) -> None:
        for lease in list(self.leases.values()):
            lease.release()

    def to_take(self, now: float | None = None) -> list[int]:
        """Shards whose worker died (``orphaned``) and stayed so for one TTL, if this worker takes over."""
        if not self.takeover:
            return []
        now = time.monotonic() if now is None else now
        out = []
        for shard in range(self.count):
            if shard in self.leases:
                continue
            if not orphaned(self.r, shard):  # held, never held, or released by a clean stop
                self._free_since.pop(shard, None)
                continue
            since = self._free_since.setdefault(shard, now)
            if now - since >= self.ttl_s:
                out.append(shard)
        return out

    # ---- the market's candles -----------------------------------------------------------------------
    def market_candles(self, batch: list[Candle]) -> list[Candle]:
        """Remember the batch; what of it (and of a dead primary's gap) this worker writes: all of it
        when it holds shard 0, nothing otherwise."""
        for c in batch:
            self._tail.setdefault(c.key, deque(maxlen=CANDLES_KEPT)).append(c)
        if not self.primary:
            return []
        out, self._backlog = self._backlog + batch, []
        return out

    def history(self, key: str, stored: list[Candle]) -> list[Candle]:
        """A series as a taken-over bot is warmed with: what Redis holds, then what this worker saw since."""
        last = stored[-1].open_time if stored else -1
        return stored + [c for c in self._tail.get(key, ()) if c.open_time > last]

    def fill_gap(self, stored_last: Callable[[str], int]) -> None:
        """Shard 0 just taken: the candles the dead primary never stored are written with the next batch
        (``stored_last``: a series' newest stored open time, -1 for none)."""
        gap = []
        for key, tail in list(self._tail.items()):
            last = stored_last(key)
            gap += [c for c in tail if c.open_time > last]
        self._backlog = sorted(gap, key=lambda c: (c.open_time, c.key))

    def publish(self, configs: list[BotConfig]) -> None:
        """Every configured bot's shard and the count, for senders and the dashboard."""
        store.publish(self.r, {c.name: self.shard(c) for c in configs}, self.count)


class ShardHost(Protocol):
    """What a takeover reaches in the worker (engine.worker.Worker)."""

    app: AppConfig
    r: redis.Redis
    consumer: str
    lock: threading.RLock
    shards: ShardSet
    fleet: Fleet
    writer: StateWriter
    venue: LiveVenue | None
    account: AccountGuard | None
    clock: Clock
    lease_lost: bool

    @property
    def bots(self) -> dict[str, AnyBot]: ...

    @property
    def configs(self) -> dict[str, BotConfig]: ...

    def add_bot(self, cfg: BotConfig) -> AnyBot: ...

    def fence(self) -> None: ...

    def lose_lease(self, why: str) -> None: ...

    def handle_command(self, entry_id: str, fields: dict[str, str], shard: int = 0) -> object: ...


def shard_loop(w: ShardHost, stop: threading.Event) -> None:
    """The worker's shards thread: take over a shard whose worker died (lease expired, free one TTL)."""
    while not stop.wait(w.app.worker.heartbeat_every_s) and not w.lease_lost:
        try:
            for shard in w.shards.to_take():
                take_over(w, shard)
        except LeaseHeld as exc:  # another worker was quicker
            log.info("takeover not needed: %s", exc)
        except LeaseLost as exc:
            w.lose_lease(str(exc))
        except Exception:  # noqa: BLE001 - the next round tries again
            log.exception("shard takeover failed")


def take_over(w: ShardHost, shard: int) -> list[AnyBot]:
    """Take a dead worker's shard: its lease (the dead worker is fenced out from here on), its bots built
    and continued as at a worker's start — a venue bot's open intents resolved first — and warmed with
    the market this worker has been reading. LeaseHeld when another worker got there first."""
    s = w.shards
    was = holder(w.r, shard)
    if was is not None:
        raise LeaseHeld(f"shard {shard} is held by {was.describe()}")
    with w.lock:
        s.acquire(shard, 0.0)
        w.fence()
        if shard == 0:
            s.fill_gap(lambda key: c[-1].open_time if (c := w.writer.recent_candles(key, n=1)) else -1)
        added: list[AnyBot] = []
        for cfg in w.fleet.configured():
            if s.shard(cfg) != shard or cfg.name in w.bots:
                continue
            try:
                bot = w.add_bot(cfg)  # restore + (venue bots) intents resolved, pre-flight, reconcile
            except Exception:  # noqa: BLE001 - one bot that cannot be built must not keep the others down
                log.exception("shard %d: bot %s not taken over", shard, cfg.name)
                continue
            for sym in cfg.symbols:
                key = w.fleet.key(cfg, sym)
                bot.warm(s.history(key, w.writer.recent_candles(key, interval=w.app.market.interval)))
            added.append(bot)
        now = w.clock.now_ms()
        names = ", ".join(b.name for b in added) or "no bots"
        w.writer.commit([b.drain(now) for b in added], audits=[AuditRecord(
            time=now, who=f"worker {w.consumer}", command="takeover", target=f"shard {shard}", result="applied",
            detail=f"shard {shard} had no live holder for {s.ttl_s} s after its lease expired; now trading {names}")])
        # What was posted to the shard while it had no worker (a kill switch) is applied before its bots
        # see another candle.
        applied: set[str] = set()  # an entry left unanswered (the lease lost meanwhile) is not read again
        while entries := [e for e in store.read(w.r, w.consumer, [shard], block_ms=None) if e[1] not in applied]:
            for _, entry_id, fields in entries:
                applied.add(entry_id)
                w.handle_command(entry_id, fields, shard)
        if w.venue is not None and any(w.configs[b.name].mode == "live" for b in added):
            # the account guard continues from the state the dead worker saved (high-water, day open)
            w.account = AccountGuard(w.app, w.venue, w.fleet, w.venue.records)
    venue_markets = {c.market for c in w.configs.values() if w.fleet.on_venue(c.name)}
    if w.venue is not None and venue_markets:
        w.venue.start_streams(venue_markets)
    log.warning("SHARD %d TAKEN OVER: %s", shard, names)
    return added


class ShardFleet:
    """The fleet as a command read from one shard's stream sees it: that shard's bots only."""

    def __init__(self, fleet: Fleet, shard: int, names: set[str]) -> None:
        self._fleet, self._shard, self._names = fleet, shard, names

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fleet, name)

    @property
    def bots(self) -> dict[str, AnyBot]:
        return {n: b for n, b in self._fleet.bots.items() if n in self._names}

    def scope(self, scope: str, target: str) -> list[AnyBot]:
        if scope == "bot" and target in self._fleet.bots and target not in self._names:
            raise UnknownTarget(f"target: {target!r} is not in shard {self._shard}")
        return [b for b in self._fleet.scope(scope, target) if b.name in self._names]


class ShardRuntime:
    """The worker as a command handler of one shard sees it (engine.commands.Runtime)."""

    def __init__(self, w: ShardHost, shard: int) -> None:
        self._w, self._shard = w, shard
        self.fleet = ShardFleet(w.fleet, shard, w.shards.names(shard))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._w, name)

    def add_bot(self, cfg: BotConfig) -> AnyBot:
        own = self._w.shards.shard(cfg)
        if own != self._shard:
            raise UnknownTarget(f"shard: bot {cfg.name!r} belongs to shard {own}, not {self._shard}")
        return self._w.add_bot(cfg)
