"""Which shard a bot is traded in: its config's ``shard:``, else a stable hash of its name (CRC-32, the
same on every machine and in every run) modulo the shard count (``worker.shards``)."""
from __future__ import annotations

import zlib


def shard_of(name: str, count: int, explicit: int | None = None) -> int:
    if explicit is not None:
        return explicit
    return zlib.crc32(name.encode()) % count if count > 1 else 0
