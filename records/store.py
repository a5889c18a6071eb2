"""The long-term store: Parquet files (pyarrow) by kind and month, committed through one manifest.

Why Parquet and not a SQL store: the records are append-only and read by whole columns (a month of
equity, every trade of a bot), which is what a columnar file does best; a month is a directory, so
old months can be copied, backed up or deleted as files, and pandas, DuckDB or Excel-via-CSV read
them without this project. What a database would add — transactions — the manifest gives:

    <root>/manifest.json                     the commit point: the files that are in the store, and
                                             the last stream id archived of every stream (cursors)
    <root>/<kind>/month=YYYY-MM/part-<seq>.parquet      one batch of one kind and month
    <root>/<kind>/month=YYYY-MM/compact-<seq>.parquet   the parts of a month merged

A batch is written as new part files first (fsynced), then a new manifest naming them and the
advanced cursors replaces the old one atomically (write, fsync, rename, fsync the directory). A
process killed before the rename leaves part files no manifest names: they are deleted the next
time the store is opened for writing, and their entries are read again from Redis, from the cursors
of the manifest — so every entry is in the store exactly once. Compaction commits the same way;
the files it replaces are deleted a while later (readers holding the old manifest keep working).

One writer at a time (a lock file); any number of readers.
"""
from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from records import schema
from state.records import KINDS

MANIFEST = "manifest.json"
LOCK = ".lock"
COMPACT_AT = 16  # parts of one kind and month merged into one file from this many on
RETIRED_GRACE_S = 120.0  # replaced files are deleted this long after the manifest stopped naming them


class StoreLocked(RuntimeError):
    """Another process writes this store."""


class StoreFile(BaseModel):
    model_config = ConfigDict(extra="ignore")
    path: str  # relative to the store's root
    kind: str
    month: str
    rows: int
    min_ms: int = 0  # record times covered (the kind's time field)
    max_ms: int = 0


class Retired(BaseModel):
    path: str
    at: float  # epoch s when the manifest stopped naming it


class Manifest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    version: int = 1
    seq: int = 0  # batches committed
    cursors: dict[str, str] = Field(default_factory=dict)  # stream key -> last entry id archived
    # stream key -> how many entries the stream had ever been given up to its cursor (Redis 7's
    # entries-added): more entries trimmed than that means records the archive never saw
    counts: dict[str, int] = Field(default_factory=dict)
    files: list[StoreFile] = Field(default_factory=list)
    retired: list[Retired] = Field(default_factory=list)
    gaps: list[str] = Field(default_factory=list)  # "key: records trimmed by Redis after <id> (seen at <iso>)"
    updated_at: int = 0

    def rows(self, kind: str | None = None) -> int:
        return sum(f.rows for f in self.files if kind is None or f.kind == kind)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_parquet(path: Path, tbl: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pq.write_table(tbl, f, compression="zstd")
        f.flush()
        os.fsync(f.fileno())


def _conform(tbl: pa.Table, kind: str) -> pa.Table:
    """``tbl`` with exactly the kind's current columns: files written before a field was added get
    it as nulls; a column no longer in the model is left out."""
    want = schema.schema(KINDS[kind])
    cols = [tbl[f.name].cast(f.type) if f.name in tbl.column_names else pa.nulls(tbl.num_rows, f.type)
            for f in want]
    return pa.Table.from_arrays(cols, schema=want.with_metadata(None)) if cols else tbl


@dataclass(slots=True)
class Batch:
    """What one commit adds: rows by kind, and the stream cursors they take the store to."""

    rows: dict[str, list[dict[str, Any]]]
    cursors: dict[str, str]
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(len(v) for v in self.rows.values())


class RecordStore:
    """Read the store (``manifest``, ``read``); write it after ``open_for_writing`` (``append``,
    ``compact``, ``add_gap``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._lock_fd: int | None = None

    # ---- reading ----------------------------------------------------------------------------
    def manifest(self) -> Manifest:
        try:
            return Manifest.model_validate_json((self.root / MANIFEST).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return Manifest()

    def read(self, kind: str, bots: Iterable[str] | None = None, start_ms: int | None = None,
             end_ms: int | None = None, manifest: Manifest | None = None) -> pa.Table:
        """Every stored row of ``kind`` (of these bots, with its record time in [start, end)), oldest
        first, as of ``manifest`` (default: the current one). Retried once on a file that compaction
        removed meanwhile."""
        for attempt in (1, 2):
            try:
                return self._read(kind, bots, start_ms, end_ms, manifest or self.manifest())
            except FileNotFoundError:
                if attempt == 2:
                    raise
                manifest = None
        raise AssertionError("unreachable")

    def _read(self, kind: str, bots: Iterable[str] | None, start_ms: int | None, end_ms: int | None,
              m: Manifest) -> pa.Table:
        k = KINDS[kind]
        files = [f for f in m.files if f.kind == kind
                 and (start_ms is None or f.max_ms >= start_ms) and (end_ms is None or f.min_ms < end_ms)]
        if not files:
            return schema.empty(kind)
        tbl = _conform(pa.concat_tables([pq.read_table(self.root / f.path) for f in files],
                                        promote_options="default"), kind)
        mask = None
        if bots is not None:
            mask = pc.is_in(tbl["bot"], value_set=pa.array(sorted(set(bots)), pa.string()))
        t = tbl[k.time_field]
        for cond in ((pc.greater_equal(t, start_ms) if start_ms is not None else None),
                     (pc.less(t, end_ms) if end_ms is not None else None)):
            if cond is not None:
                mask = cond if mask is None else pc.and_(mask, cond)
        if mask is not None:
            tbl = tbl.filter(mask)
        return tbl.sort_by([(k.time_field, "ascending"), ("stream_ms", "ascending"), ("stream_seq", "ascending")])

    # ---- writing ----------------------------------------------------------------------------
    def open_for_writing(self) -> Manifest:
        """Take the writer's lock, delete what a crashed writer left uncommitted, return the manifest.
        Raises StoreLocked naming the holder's pid when another process writes the store."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StoreLocked(f"another process (pid {holder}) writes the records store {self.root}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd
        m = self.manifest()
        self._collect_garbage(m, force_retired=False)
        return m

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None

    def _check_writer(self) -> None:
        if self._lock_fd is None:
            raise RuntimeError("open_for_writing() first")

    def _commit(self, m: Manifest) -> None:
        m.updated_at = int(time.time() * 1000)
        tmp = self.root / (MANIFEST + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(m.model_dump_json(indent=1))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.root / MANIFEST)  # the commit point
        _fsync_dir(self.root)

    def append(self, batch: Batch) -> Manifest:
        """Commit ``batch``: its rows (one new file per kind and month) and its cursors, at once."""
        self._check_writer()
        m = self.manifest()
        seq = m.seq + 1
        new: list[StoreFile] = []
        for kind_name, rows in sorted(batch.rows.items()):
            if not rows:
                continue
            kind = KINDS[kind_name]
            by_month: dict[str, list[dict[str, Any]]] = {}
            for r in rows:
                by_month.setdefault(schema.month_of(kind, r), []).append(r)
            for month, part in sorted(by_month.items()):
                rel = f"{kind_name}/month={month}/part-{seq:09d}.parquet"
                _write_parquet(self.root / rel, schema.table(kind, part))
                times = [int(r.get(kind.time_field) or r["stream_ms"]) for r in part]
                new.append(StoreFile(path=rel, kind=kind_name, month=month, rows=len(part), min_ms=min(times),
                                     max_ms=max(times)))
        for d in {(self.root / f.path).parent for f in new}:
            _fsync_dir(d)
        m.seq = seq
        m.cursors = {**m.cursors, **batch.cursors}
        m.counts = {**m.counts, **batch.counts}
        m.files = [*m.files, *new]
        self._commit(m)
        return m

    def add_gap(self, note: str) -> None:
        self._check_writer()
        m = self.manifest()
        if note not in m.gaps:
            m.gaps.append(note)
            self._commit(m)

    def compact(self, max_parts: int = COMPACT_AT) -> int:
        """Merge files of one kind, month and level when there are ``max_parts`` of them into one file
        of the next level (parts are level 0), so a month is rewritten about log(n) times, not n; returns
        how many merges were committed. Also deletes files retired long enough ago."""
        self._check_writer()
        m = self.manifest()
        groups: dict[tuple[str, str, int], list[StoreFile]] = {}
        for f in m.files:
            groups.setdefault((f.kind, f.month, _level(f.path)), []).append(f)
        merged = 0
        for (kind_name, month, level), files in sorted(groups.items()):
            if len(files) < max_parts:
                continue
            seq = m.seq + 1
            tbl = _conform(pa.concat_tables([pq.read_table(self.root / f.path) for f in files],
                                            promote_options="default"), kind_name)
            tbl = tbl.sort_by([("stream_ms", "ascending"), ("stream_seq", "ascending")])
            rel = f"{kind_name}/month={month}/compact-L{level + 1}-{seq:09d}.parquet"
            _write_parquet(self.root / rel, tbl)
            _fsync_dir((self.root / rel).parent)
            gone = {f.path for f in files}
            now = time.time()
            m.seq = seq
            m.files = [f for f in m.files if f.path not in gone] + [StoreFile(
                path=rel, kind=kind_name, month=month, rows=tbl.num_rows, min_ms=min(f.min_ms for f in files),
                max_ms=max(f.max_ms for f in files))]
            m.retired = [*m.retired, *(Retired(path=p, at=now) for p in sorted(gone))]
            self._commit(m)
            merged += 1
        self._collect_garbage(self.manifest(), force_retired=False)
        return merged

    def _collect_garbage(self, m: Manifest, force_retired: bool) -> None:
        """Delete part files no manifest names (a writer died before committing them) and retired
        files past their grace period."""
        now = time.time()
        keep = {f.path for f in m.files}
        late = [r for r in m.retired if force_retired or now - r.at > RETIRED_GRACE_S]
        waiting = {r.path for r in m.retired} - {r.path for r in late}
        for p in self.root.rglob("*.parquet"):
            rel = p.relative_to(self.root).as_posix()
            if rel not in keep and rel not in waiting:
                p.unlink(missing_ok=True)
        for p in self.root.rglob("*.tmp"):
            p.unlink(missing_ok=True)
        if late:
            m.retired = [r for r in m.retired if r not in late]
            self._commit(m)


def _level(path: str) -> int:
    """0 for a part file, N for ``compact-LN-...``."""
    name = path.rsplit("/", 1)[-1]
    if name.startswith("compact-L"):
        return int(name[len("compact-L"):].split("-", 1)[0])
    return 0


def describe(m: Manifest) -> dict[str, Any]:
    """Rows and months per kind, for status lines and the backup's manifest."""
    out: dict[str, Any] = {}
    for f in m.files:
        d = out.setdefault(f.kind, {"rows": 0, "files": 0, "months": set()})
        d["rows"] += f.rows
        d["files"] += 1
        d["months"].add(f.month)
    return {k: {**v, "months": sorted(v["months"])} for k, v in sorted(out.items())}


def manifest_json(m: Manifest) -> str:
    return json.dumps(m.model_dump(), indent=1)
