"""Shards in Redis: which shard trades which bot, where a command goes, who holds each shard.

A bot's shard is its config's ``shard:`` or else a stable hash of its name (CRC-32) modulo
``worker.shards``, the same on every machine and every run. Each shard has its own lease and fence
(``state/lease.py``) and its own command stream (``keys.shard_commands``); shard 0's keys are the
single-worker ones, so one worker with one shard works as before.

Why one stream per shard rather than one stream with several consumers: a consumer group hands each
entry to exactly one consumer, whichever asks first — it can neither send a bot's command to the
worker that holds the bot nor give a kill switch to every worker. A stream per shard is read only by
that shard's lease holder, keeps its order, and keeps its unanswered entries with the shard, so the
worker that takes a dead worker's shard over applies them. Senders (``state.commands.post_command``)
put a bot's command on its shard's stream and fan every mode- or global-scoped command (the emergency
stop and every other all-bots switch) out to every shard's stream with the same nonce; each shard
answers its part and ``command_result(nonce)`` holds them merged (``pending`` until every shard has
answered).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import redis

from core.sharding import shard_of
from state import keys
from state.lease import Holder, holder
from state.models import CommandResult


def count(r: redis.Redis) -> int:
    """How many shards the workers run (1 when no worker has said)."""
    raw = r.get(keys.SHARD_COUNT)
    return max(int(raw), 1) if raw else 1


def publish(r: redis.Redis, shard_by_bot: dict[str, int], n: int) -> None:
    """Every configured bot's shard and the shard count, replaced in one transaction (at a worker's start)."""
    pipe = r.pipeline(transaction=True)
    pipe.delete(keys.SHARD_MAP)
    if shard_by_bot:
        pipe.hset(keys.SHARD_MAP, mapping={k: str(v) for k, v in shard_by_bot.items()})
    pipe.set(keys.SHARD_COUNT, n)
    pipe.execute()


def destinations(r: redis.Redis, scope: str, target: str) -> list[int]:
    """The shards a command goes to: a bot's own shard (from the published map, else the hash rule),
    every shard for a mode or global scope."""
    n = count(r)
    if scope != "bot" or n == 1:
        return list(range(n))
    raw = r.hget(keys.SHARD_MAP, target)
    return [int(raw) if raw is not None and int(raw) < n else shard_of(target, n)]


# Merges the shards' answers to a fanned-out command: each part is kept, and the merged answer is
# `pending` until every shard answered (then the least final of the parts), the parts' messages in
# shard order.
_MERGE = """
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[4])
local n = tonumber(ARGV[3])
local parts = redis.call('HGETALL', KEYS[2])
local by_shard, got = {}, 0
for i = 1, #parts, 2 do by_shard[tonumber(parts[i])] = cjson.decode(parts[i + 1]); got = got + 1 end
local msgs, waiting, counts = {}, {}, {applied = 0, pending = 0, duplicate = 0, rejected = 0}
local first = cjson.decode(ARGV[2])
for s = 0, n - 1 do
  local p = by_shard[s]
  if p then
    counts[p.status] = (counts[p.status] or 0) + 1
    table.insert(msgs, 'shard ' .. s .. ': ' .. p.message)
  else
    table.insert(waiting, tostring(s))
  end
end
local status = 'applied'
if #waiting > 0 or counts.pending > 0 then status = 'pending'
elseif counts.rejected == got then status = 'rejected'
elseif counts.duplicate == got then status = 'duplicate' end
local msg = table.concat(msgs, ' | ')
if #waiting > 0 then msg = msg .. ' | not answered yet by shard ' .. table.concat(waiting, ', ') .. ' (applied there when its worker reads it)' end
first.status = status
first.message = msg
redis.call('SET', KEYS[1], cjson.encode(first), 'EX', ARGV[4])
return 1
"""


@dataclass(frozen=True, slots=True)
class Route:
    """Where one command entry came from: its shard's stream, and whether it was fanned out to every
    shard (then each shard keeps its own nonce and its answer is one part of the merged answer)."""

    shard: int = 0
    count: int = 1
    fanned_out: bool = False

    @property
    def stream(self) -> str:
        return keys.shard_commands(self.shard)

    def applied_key(self, nonce: str) -> str:
        return keys.shard_applied(nonce, self.shard) if self.fanned_out else keys.applied(nonce)

    def queue_result(self, pipe: redis.client.Pipeline, result: CommandResult, ttl_s: int) -> None:
        if not self.fanned_out or self.count == 1:
            pipe.set(keys.command_result(result.nonce), result.model_dump_json(), ex=ttl_s)
            return
        pipe.eval(_MERGE, 2, keys.command_result(result.nonce), keys.command_parts(result.nonce),
                  self.shard, result.model_dump_json(), self.count, ttl_s)


def route(shard: int, n: int, scope: str) -> Route:
    """The route of an entry read from ``shard``'s stream (``scope``: the command's, '' when it did not parse)."""
    return Route(shard, n, fanned_out=n > 1 and scope in ("mode", "global"))


# ---- reading the streams of the shards a worker holds ------------------------------------------
def ensure_group(r: redis.Redis, shard: int) -> None:
    try:
        r.xgroup_create(keys.shard_commands(shard), keys.COMMAND_GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def claim_pending(r: redis.Redis, shard: int, consumer: str) -> int:
    """A shard just taken: every entry its previous holder read but never answered becomes this
    consumer's at once (the previous holder is fenced out; nobody else reads this stream)."""
    n, start = 0, "0-0"
    while True:
        resp = r.xautoclaim(keys.shard_commands(shard), keys.COMMAND_GROUP, consumer, min_idle_time=0,
                            start_id=start, count=100)
        start, claimed = _s(resp[0]), resp[1]
        n += len(claimed)
        if start == "0-0" or not claimed:
            return n


def read(r: redis.Redis, consumer: str, shards: Iterable[int], block_ms: int | None
         ) -> list[tuple[int, str, dict[str, str]]]:
    """(shard, entry id, fields): own pending entries first (left by a crash or a takeover), then new
    ones (blocking up to ``block_ms``; None: not at all). Entries idle for 30 s under another consumer
    of a held shard are taken over too."""
    streams = {keys.shard_commands(s): s for s in shards}
    if not streams:
        return []
    for stream in streams:
        r.xautoclaim(stream, keys.COMMAND_GROUP, consumer, min_idle_time=30_000, start_id="0-0", count=10,
                     justid=True)
    for ids in ("0", ">"):
        resp = r.xreadgroup(keys.COMMAND_GROUP, consumer, {s: ids for s in streams},
                            block=None if ids == "0" else block_ms)
        out = [(streams[stream], entry_id, fields) for stream, entry_id, fields in _entries(resp)]
        if out:
            return out
    return []


def _s(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _entries(resp: object) -> list[tuple[str, str, dict[str, str]]]:
    """Normalise XREADGROUP replies (RESP2 list or RESP3 dict) to (stream, id, fields)."""
    if not resp:
        return []
    streams = resp.items() if isinstance(resp, dict) else resp
    out: list[tuple[str, str, dict[str, str]]] = []
    for name, entries in streams:
        if entries and isinstance(entries[0], list) and not isinstance(entries[0][0], (bytes, str)):
            entries = entries[0]
        for entry_id, fields in entries:
            out.append((_s(name), _s(entry_id), {} if fields is None else {_s(k): _s(v) for k, v in fields.items()}))
    return out


# ---- who holds what (the dashboard, status) ---------------------------------------------------------
@dataclass(slots=True)
class ShardRow:
    shard: int
    holder: Holder | None
    bots: list[str] = field(default_factory=list)


def holders(r: redis.Redis) -> list[ShardRow]:
    """Each shard with its lease holder (None: no worker holds it now) and its bots, by shard."""
    n = count(r)
    rows = [ShardRow(s, holder(r, s)) for s in range(n)]
    for name, s in sorted((_s(k), int(v)) for k, v in r.hgetall(keys.SHARD_MAP).items()):
        if s < n:
            rows[s].bots.append(name)
    return rows
