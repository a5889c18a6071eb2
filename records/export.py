"""Exports: every record of a kind, for some bots and a time range, as CSV or Parquet — the long-term
store plus the entries of the Redis streams it has not taken yet, so an export is complete up to now
and its rows are the streams' entries (each row keeps its ``stream_id``).

The store is read as of one manifest and the streams from that manifest's cursors on, so a commit of
the archiver in between neither drops nor repeats a row. Without Redis (it is down, or a backup is
being read) the store alone is exported, and ``Export.note`` says so.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import redis

from records import schema
from records.store import RecordStore
from state.records import EXPORTABLE, KINDS, RecordStreams

FORMATS = ("csv", "parquet")


@dataclass(slots=True)
class Export:
    kind: str
    frame: pd.DataFrame
    from_store: int = 0
    from_streams: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.frame)


def collect(kind: str, store: RecordStore, r: redis.Redis | None, bots: Iterable[str] | None = None,
            start_ms: int | None = None, end_ms: int | None = None) -> Export:
    """Every ``kind`` record of ``bots`` (all when None) with its record time in [start, end)."""
    if kind not in KINDS:
        raise ValueError(f"what: must be one of {', '.join(EXPORTABLE)}, got {kind!r}")
    k = KINDS[kind]
    bot_set = set(bots) if bots is not None else None
    m = store.manifest()
    stored = store.read(kind, bot_set, start_ms, end_ms, manifest=m)
    rows: list[dict[str, object]] = []
    notes: list[str] = []
    if r is not None:
        try:
            streams = RecordStreams(r)
            if kind == "candles":
                rows.extend(_candle_tail(streams, m.cursors, bot_set))
            for ref in streams.discover([kind] if kind != "candles" else []):
                if bot_set is not None and k.per_bot and ref.bot not in bot_set:
                    continue
                for e in streams.after(ref.key, m.cursors.get(ref.key, "0")):
                    try:
                        row = schema.row(k, ref.bot, e)
                    except ValueError:
                        notes.append(f"{ref.key} {e.id}: unreadable entry left out")
                        continue
                    t = row.get(k.time_field) or row["stream_ms"]
                    if bot_set is not None and not k.per_bot and row["bot"] not in bot_set:
                        continue
                    if (start_ms is None or t >= start_ms) and (end_ms is None or t < end_ms):
                        rows.append(row)
        except redis.RedisError as exc:
            notes.append(f"Redis unreachable ({exc}): only the long-term store is exported; records of the "
                         "last seconds may be missing")
    else:
        notes.append("from the long-term store only")
    if kind == "candles":
        rows = [x for x in rows if (start_ms is None or x["t"] >= start_ms) and (end_ms is None or x["t"] < end_ms)]
    tail = schema.table(k, rows)
    both = pa.concat_tables([stored, tail], promote_options="default") if rows else stored
    frame = both.to_pandas()
    if not frame.empty:
        frame = frame.drop_duplicates(subset=["bot", "stream_id"])
        frame = frame.sort_values([k.time_field, "stream_ms", "stream_seq"], kind="stable", ignore_index=True)
    frame = readable(frame)
    prefix = k.key("") if k.per_bot else k.global_key + ":"
    notes.extend(f"gap: {g}" for g in m.gaps if g.startswith(prefix))
    return Export(kind, frame, from_store=stored.num_rows, from_streams=len(rows), notes=notes)


def _candle_tail(streams: RecordStreams, cursors: dict[str, str], symbols: set[str] | None) -> list[dict[str, object]]:
    """Candles in the worker's lists newer than what the store holds (rows as the archiver makes them)."""
    out: list[dict[str, object]] = []
    for symbol, key in streams.candle_keys().items():
        if symbols is not None and symbol not in symbols:
            continue
        after = int(cursors.get(key, "0").split("-")[0])
        out += [{"stream_id": f"{c.t}-0", "stream_ms": c.t, "stream_seq": 0, "bot": symbol, **c.model_dump()}
                for c in streams.candles(key) if c.t > after]
    return out


def readable(frame: pd.DataFrame) -> pd.DataFrame:
    """Add a UTC date-time column beside every epoch-ms time column (``exit_time`` → ``exit_time_utc``),
    and drop the stream ordering columns (``stream_id`` keeps the provenance)."""
    out = frame.drop(columns=[c for c in ("stream_ms", "stream_seq") if c in frame.columns])
    for col in list(out.columns):
        if (col == "time" or col.endswith("_time") or col.endswith("_at")) and pd.api.types.is_integer_dtype(out[col]):
            iso = pd.to_datetime(out[col], unit="ms", utc=True).dt.strftime("%Y-%m-%d %H:%M:%S")
            out.insert(out.columns.get_loc(col) + 1, f"{col}_utc", iso.where(out[col] > 0, ""))
    return out


def to_bytes(ex: Export, fmt: str) -> bytes:
    """The export as a CSV (UTF-8, header row) or Parquet file's bytes."""
    if fmt == "csv":
        return ex.frame.to_csv(index=False).encode("utf-8")
    if fmt == "parquet":
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(ex.frame, preserve_index=False), buf, compression="zstd")
        return buf.getvalue()
    raise ValueError(f"format: must be one of {', '.join(FORMATS)}, got {fmt!r}")


def file_name(kind: str, bots: Iterable[str] | None, fmt: str, start_ms: int | None = None,
              end_ms: int | None = None) -> str:
    parts = [kind, *(sorted(bots) if bots else ["all"])]
    for ms in (start_ms, end_ms):
        if ms is not None:
            parts.append(datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y%m%d"))
    return "-".join(parts)[:120] + f".{fmt}"
