"""The worker's lease: one worker trades the bots of a Redis at a time.

``keys.LEASE`` holds who has it (token, host, pid, since) with a TTL the holder renews with its
heartbeat; ``keys.FENCE`` holds the token of the last worker that took it (a counter, never reused,
no TTL). Every state write of the worker (``StateWriter``) and every order intent
(``RedisIntentStore.create``) is fenced: it happens only while ``FENCE`` still holds the writer's
token, in the same transaction, so a worker that lost its lease (paused, cut off, then back) can
neither place an order nor overwrite what its successor wrote.

A second worker is refused while the lease is held, naming the holder; a worker that dies leaves the
lease to expire after its TTL, and the next one takes it then.

With several shards (``worker.shards``, ``state/shards.py``) each shard has a lease and a fence of its
own (``keys.shard_lease(n)``, ``keys.shard_fence(n)``; shard 0's are the single-worker keys above), all
tokens from the one ``LEASE_SEQ``: a worker holds the leases of some shards and its writes for a bot are
fenced by that bot's shard.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import dataclass

import redis

from state import keys

_ACQUIRE = """
local held = redis.call('GET', KEYS[1])
if held and not string.find(held, ARGV[3], 1, true) then return {0, held} end
local token = redis.call('INCR', KEYS[3])
local value = string.gsub(ARGV[1], '"token": 0', '"token": ' .. token)
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
redis.call('SET', KEYS[2], token)
redis.call('DEL', KEYS[4])
return {token, value}
"""
_RENEW = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
local held = redis.call('GET', KEYS[1])
if held and not string.find(held, '"token": ' .. ARGV[1] .. ',', 1, true) then return 0 end
if held then redis.call('PEXPIRE', KEYS[1], ARGV[2]) else redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[2]) end
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[1]) redis.call('SET', KEYS[3], ARGV[1]) return 1 end
return 0
"""


class LeaseHeld(RuntimeError):
    """Another worker holds the lease; the message names it."""


class LeaseLost(RuntimeError):
    """This worker's lease was taken over: it must stop trading at once."""


@dataclass(frozen=True, slots=True)
class Holder:
    token: int
    host: str
    pid: int
    since: int  # ms
    shard: int = 0

    def describe(self) -> str:
        return (f"worker pid {self.pid} on {self.host} (since "
                f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(self.since / 1000))} UTC)")

    @property
    def worker(self) -> str:
        """The holder as the dashboard names it: pid@host."""
        return f"{self.pid}@{self.host}"


def _holder(raw: str | bytes) -> Holder:
    d = json.loads(raw)
    return Holder(int(d["token"]), str(d["host"]), int(d["pid"]), int(d["since"]), int(d.get("shard", 0)))


class Lease:
    """The lease of one shard (shard 0: the single worker's lease)."""

    def __init__(self, r: redis.Redis, ttl_s: float, shard: int = 0) -> None:
        self.r = r
        self.shard = shard
        self.keys = [keys.shard_lease(shard), keys.shard_fence(shard)]
        self._released = keys.shard_released(shard)
        self.ttl_ms = int(ttl_s * 1000)
        self.token: int | None = None
        self.lost = threading.Event()
        self._value = ""
        self._acquire = r.register_script(_ACQUIRE)
        self._renew = r.register_script(_RENEW)
        self._release = r.register_script(_RELEASE)

    def acquire(self, wait_s: float = 0.0) -> Holder:
        """Take the lease, waiting up to ``wait_s`` for a dead holder's to expire; LeaseHeld if another
        worker still holds it."""
        host, pid = socket.gethostname(), os.getpid()
        fields = {"token": 0, "host": host, "pid": pid, "since": int(time.time() * 1000)}
        value = json.dumps(fields | ({"shard": self.shard} if self.shard else {}))
        same_process = json.dumps({"host": host, "pid": pid})[1:-1]  # the JSON text of both fields
        deadline = time.monotonic() + wait_s
        while True:
            # the same process may take its own lease over (a worker rebuilt in-process; one process runs
            # one worker), a new token fencing out the old object
            token, held = self._acquire(keys=[*self.keys, keys.LEASE_SEQ, self._released],
                                        args=[value, self.ttl_ms, same_process])
            if int(token):
                self.token, self._value = int(token), held.decode() if isinstance(held, bytes) else held
                return _holder(self._value)
            if time.monotonic() >= deadline:
                holder = _holder(held)
                what = f"shard {self.shard}'s bots" if self.shard else "these bots"
                raise LeaseHeld(f"another worker is trading {what}: {holder.describe()}; stop it first "
                                f"(a dead one's lease expires {self.ttl_ms / 1000:g} s after its last heartbeat)")
            time.sleep(0.2)

    def renew(self) -> bool:
        """Extend the lease (with the heartbeat). False — and ``lost`` set — once another worker has it."""
        if self.token is None or self.lost.is_set():
            return False
        ok = bool(int(self._renew(keys=self.keys, args=[self.token, self.ttl_ms, self._value])))
        if not ok:
            self.lost.set()
        return ok

    def release(self) -> None:
        if self.token is not None and not self.lost.is_set():
            self._release(keys=[*self.keys, self._released], args=[self.token])

    def check(self) -> None:
        """Raise LeaseLost when another worker took over (the in-memory flag; writes are fenced in Redis)."""
        if self.lost.is_set():
            raise LeaseLost("this worker's lease was taken by another worker")


def fence_key(shard: int) -> str:
    return keys.shard_fence(shard)


def orphaned(r: redis.Redis, shard: int) -> bool:
    """A shard whose worker died: no holder now, held before (its fence is set), and not released by a
    clean stop (a stopped worker's shards wait for it). Only such a shard is taken over."""
    pipe = r.pipeline(transaction=False)
    for key in (keys.shard_lease(shard), keys.shard_fence(shard), keys.shard_released(shard)):
        pipe.exists(key)
    lease, fence, released = pipe.execute()
    return not lease and bool(fence) and not released


def holder(r: redis.Redis, shard: int = 0) -> Holder | None:
    raw = r.get(keys.shard_lease(shard))
    return _holder(raw) if raw else None
