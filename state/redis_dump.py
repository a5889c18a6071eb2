"""A snapshot of the whole Redis database and its restore, key by key (DUMP / RESTORE), for
``bot_manager.py backup`` and ``restore``.

The snapshot is one MULTI/EXEC of a DUMP and a PTTL per key, so every key is taken at the same
instant (the worker may keep running). It is portable: no access to the server's files, and any
Redis of the same or a newer version restores it (streams keep their ids, consumer groups and
pending entries). The worker's liveness keys (heartbeat, lease, health, the archiver's status) are
left out: a restored copy would say a worker is alive that is not.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Iterable, Iterator

import redis

from state import keys
from state.connection import connect

LIVENESS = frozenset({keys.HEARTBEAT, keys.LEASE, keys.HEALTH, keys.ARCHIVER_STATUS})


@dataclass(frozen=True, slots=True)
class KeyDump:
    key: bytes
    pttl_ms: int  # 0: no expiry
    payload: bytes  # DUMP's serialization

    def line(self) -> str:
        return json.dumps({"key": base64.b64encode(self.key).decode(), "pttl_ms": self.pttl_ms,
                           "value": base64.b64encode(self.payload).decode()})

    @classmethod
    def of_line(cls, line: str) -> "KeyDump":
        d = json.loads(line)
        return cls(base64.b64decode(d["key"]), int(d["pttl_ms"]), base64.b64decode(d["value"]))


def snapshot(url: str) -> tuple[list[KeyDump], dict[str, str]]:
    """Every key but the liveness keys, at one instant; plus facts about the server (version)."""
    r = connect(url, decode=False)
    names = [k for k in r.scan_iter(count=1000) if k.decode(errors="replace") not in LIVENESS]
    pipe = r.pipeline(transaction=True)
    for k in names:
        pipe.pttl(k)
        pipe.dump(k)
    res = pipe.execute() if names else []
    out = []
    for i, k in enumerate(names):
        pttl, payload = res[2 * i], res[2 * i + 1]
        if payload is None:  # gone between SCAN and MULTI
            continue
        out.append(KeyDump(k, max(0, int(pttl)) if int(pttl) > 0 else 0, payload))
    info = r.info("server")
    return out, {"redis_version": str(info.get("redis_version", "")), "keys": str(len(out))}


def worker_alive(url: str) -> bool:
    return bool(connect(url).exists(keys.HEARTBEAT))


def key_count(url: str) -> int:
    return int(connect(url).dbsize())


def restore(url: str, dumps: Iterable[KeyDump], flush_first: bool = False) -> int:
    """RESTORE every key (in batches of one MULTI each); ``flush_first`` empties the database before.
    Returns the keys restored."""
    r = connect(url, decode=False)
    if flush_first:
        r.flushdb()
    n = 0
    batch: list[KeyDump] = []

    def flush() -> None:
        pipe = r.pipeline(transaction=True)
        for d in batch:
            pipe.restore(d.key, d.pttl_ms, d.payload, replace=True)
        pipe.execute()
        batch.clear()

    for d in dumps:
        batch.append(d)
        n += 1
        if len(batch) >= 200:
            flush()
    if batch:
        flush()
    return n


def lines(dumps: Iterable[KeyDump]) -> Iterator[str]:
    for d in dumps:
        yield d.line() + "\n"


def wait(url: str, timeout_s: float = 10.0) -> None:
    from state.connection import wait_for_redis

    wait_for_redis(connect(url), timeout_s)


RedisError = redis.RedisError
