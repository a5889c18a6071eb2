"""The archiver: a process of its own (``python -m records.archiver``; ``make run`` supervises it) that
copies every record stream from Redis into the long-term store (``records.store``), never in the
worker's threads.

It reads by last-id bookkeeping: the store's manifest holds, for every stream, the id of the last
entry committed, and the archiver reads (XREAD) only what follows. Entries read are buffered and
committed together with the advanced cursors (every ``flush_s`` or ``max_rows``); a process killed
before a commit loses only its buffer, which is read again from Redis on start. A worker killed at
any time loses nothing either: what it committed to Redis is in the streams, what it did not was
never a record. Streams are capped (``worker.history_keep``); if Redis trimmed entries the archive
had not read (the archiver was down too long), the gap is recorded in the manifest, logged and shown
on the dashboard — never silently skipped.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import redis

from records import schema
from records.paths import records_dir
from records.store import Batch, Manifest, RecordStore, StoreLocked
from state.connection import connect, wait_for_redis
from state.records import EXPORTABLE, KINDS, ArchiverStatus, Entry, RecordStreams, StreamRef

log = logging.getLogger("archiver")


class Archiver:
    def __init__(self, r: redis.Redis, store: RecordStore, flush_s: float = 5.0, max_rows: int = 20_000,
                 scan_every_s: float = 5.0, status_ttl_s: int = 15) -> None:
        self.streams = RecordStreams(r)
        self.store = store
        self.flush_s, self.max_rows = flush_s, max_rows
        self.scan_every_s, self.status_ttl_s = scan_every_s, status_ttl_s
        self.refs: dict[str, StreamRef] = {}
        self.cursors: dict[str, str] = {}  # streams: read so far (committed + buffered)
        self.candle_cursors: dict[str, str] = {}  # candle lists: '<last open time archived>-0'
        self.ordinals: dict[str, int] = {}  # entries ever added to a stream up to its cursor (see discover)
        self.pending: dict[str, list[dict[str, Any]]] = {}
        self.pending_cursors: dict[str, str] = {}
        self.pending_since = 0.0
        self.manifest = Manifest()
        self.error = ""
        self._last_scan = 0.0
        self._last_compact = time.monotonic()
        self._last_candles = 0.0

    # ---- the steps ------------------------------------------------------------------------
    def start(self) -> None:
        self.manifest = self.store.open_for_writing()
        candle_prefix = KINDS["candles"].key("")
        self.cursors = {k: v for k, v in self.manifest.cursors.items() if not k.startswith(candle_prefix)}
        self.candle_cursors = {k: v for k, v in self.manifest.cursors.items() if k.startswith(candle_prefix)}
        self.ordinals = dict(self.manifest.counts)
        log.info("archiver: store %s, %d rows, %d stream cursors", self.store.root, self.manifest.rows(),
                 len(self.cursors))

    def discover(self) -> None:
        """Find the record streams (new bots appear at run time), and check Redis trimmed none of them
        past the archive's cursor: a stream has been given ``added`` entries and holds ``present``; the
        oldest ``added - present`` are gone, and if more are gone than the archive had read (its
        ordinal), records were lost. Each loss is noted in the manifest once."""
        for ref in self.streams.discover(EXPORTABLE):
            self.refs[ref.key] = ref
            cursor = self.cursors.setdefault(ref.key, "0")
            added, present, last = self.streams.counts(ref.key)
            if added is None:
                continue  # Redis < 7 cannot say
            ordinal = self.ordinals.get(ref.key)
            if ordinal is None and cursor in ("0", "0-0"):
                ordinal = 0
            if ordinal is not None and added - present > ordinal:
                seen = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
                self._gap(f"{ref.key}: Redis trimmed entries after {cursor} before they were archived: "
                          f"{added - present - ordinal} records lost (seen {seen})")
                ordinal = added - present
            if last == cursor:
                ordinal = added  # caught up: exact
            if ordinal is not None:
                self.ordinals[ref.key] = ordinal
        self._last_scan = time.monotonic()

    def poll(self, block_ms: int | None) -> int:
        """Read what follows every cursor into the buffer; returns the entries read."""
        entries = self.streams.read(self.cursors, count=1000, block_ms=block_ms)
        for e in entries:
            self._take(e)
        return len(entries)

    def poll_candles(self) -> int:
        """Closed candles newer than each symbol's cursor (its last archived open time), from the worker's
        candle lists; a list that moved past the cursor while the archiver was away is a gap."""
        taken = 0
        for symbol, key in self.streams.candle_keys().items():
            after = int(self.candle_cursors.get(key, "0").split("-")[0])
            candles = self.streams.candles(key)
            fresh = [c for c in candles if c.t > after]
            if not fresh:
                continue
            if after and candles[0].t > after and len(candles) > 1:
                step = min(b.t - a.t for a, b in zip(candles, candles[1:])) or 1
                if candles[0].t - after > step:
                    self._gap(f"{key}: candles from {after + step} to {candles[0].t - step} (open times, ms) were "
                              "trimmed before they were archived")
            rows = [{"stream_id": f"{c.t}-0", "stream_ms": c.t, "stream_seq": 0, "bot": symbol, **c.model_dump()}
                    for c in fresh]
            if not self.pending_since:
                self.pending_since = time.monotonic()
            self.pending.setdefault("candles", []).extend(rows)
            self.candle_cursors[key] = self.pending_cursors[key] = f"{fresh[-1].t}-0"
            taken += len(rows)
        return taken

    def _gap(self, note: str) -> None:
        log.error("records lost: %s", note)
        self.store.add_gap(note)
        self.manifest = self.store.manifest()

    def _take(self, e: Entry) -> None:
        ref = self.refs.get(e.key)
        if ref is None:
            return
        kind = KINDS[ref.kind]
        try:
            row = schema.row(kind, ref.bot, e)
        except Exception as exc:  # noqa: BLE001 - one unreadable entry must not stall the archive
            self._gap(f"{e.key} {e.id}: unreadable entry, not archived ({str(exc).splitlines()[0][:200]})")
        else:
            if not self.pending_since:
                self.pending_since = time.monotonic()
            self.pending.setdefault(ref.kind, []).append(row)
        self.cursors[e.key] = e.id
        self.pending_cursors[e.key] = e.id
        if e.key in self.ordinals:
            self.ordinals[e.key] += 1

    @property
    def buffered(self) -> int:
        return sum(len(v) for v in self.pending.values())

    def due(self) -> bool:
        if not self.pending_cursors:
            return False
        return self.buffered >= self.max_rows or time.monotonic() - self.pending_since >= self.flush_s

    def flush(self) -> int:
        """Commit the buffer and its cursors to the store in one manifest write."""
        if not self.pending_cursors:
            return 0
        n = self.buffered
        self.manifest = self.store.append(Batch(self.pending, self.pending_cursors, dict(self.ordinals)))
        self.pending, self.pending_cursors, self.pending_since = {}, {}, 0.0
        return n

    def status(self) -> ArchiverStatus:
        return ArchiverStatus(pid=os.getpid(), time=int(time.time() * 1000), store=str(self.store.root),
                              streams=len(self.refs), rows=self.manifest.rows(), lag=self.buffered,
                              last_commit=self.manifest.updated_at, gaps=self.manifest.gaps[-20:], error=self.error)

    # ---- the loop ---------------------------------------------------------------------------
    def run(self, stop: threading.Event, block_ms: int = 500) -> None:
        self.start()
        last_status = 0.0
        try:
            while not stop.is_set():
                try:
                    if time.monotonic() - self._last_scan >= self.scan_every_s:
                        self.discover()
                    self.poll(block_ms)
                    if time.monotonic() - self._last_candles >= 1.0:
                        self.poll_candles()
                        self._last_candles = time.monotonic()
                    if self.due():
                        self.flush()
                    if time.monotonic() - self._last_compact >= 30.0:
                        self.store.compact()
                        self.manifest = self.store.manifest()
                        self._last_compact = time.monotonic()
                    if time.monotonic() - last_status >= 1.0:
                        self.streams.write_status(self.status(), self.status_ttl_s)
                        last_status = time.monotonic()
                    self.error = ""
                except redis.RedisError as exc:  # Redis restarting: keep the buffer, try again
                    self.error = f"Redis: {exc}"
                    log.warning("archiver: %s; retrying", exc)
                    stop.wait(1.0)
            self.flush()
        finally:
            self.store.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m records.archiver", description=__doc__.splitlines()[0])
    p.add_argument("--dir", type=Path, default=None, help="the store (default: $BOT_VAR/records, var/records)")
    p.add_argument("--redis-url", default=None, help="default: $BOT_REDIS__URL, else redis.url of the config")
    p.add_argument("--flush-s", type=float, default=5.0, help="commit the buffer at least this often")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    url = args.redis_url or _config_redis_url()
    r = connect(url)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        wait_for_redis(r, 30.0)
    except redis.ConnectionError as exc:
        print(f"archiver: Redis at {url} does not answer: {exc}", file=sys.stderr)
        return 1
    store = RecordStore(args.dir or records_dir())
    try:
        Archiver(r, store, flush_s=args.flush_s).run(stop)
    except StoreLocked as exc:
        print(f"archiver: {exc}", file=sys.stderr)
        return 1
    return 0


def _config_redis_url() -> str:
    if os.environ.get("BOT_REDIS__URL"):
        return os.environ["BOT_REDIS__URL"]
    from settings import ConfigError, RedisConfig, load_config

    try:
        return load_config().redis.url
    except ConfigError:
        return RedisConfig().url


if __name__ == "__main__":
    sys.exit(main())
