"""Rows and Arrow schemas of the record kinds: one row per stream entry, the model's fields as
columns plus where the entry came from (``stream_id``, ``stream_ms``, ``stream_seq``) and whose
it is (``bot``; '' for the global audit stream).

A field's column type follows its annotation (int → int64, float → float64, str → string, bool →
bool, ``X | None`` → nullable X); anything else (lists, dicts) is kept as JSON text.
"""
from __future__ import annotations

import json
import types
import typing
from datetime import datetime, timezone
from enum import Enum
from typing import Any

import pyarrow as pa

from state.records import KINDS, Entry, RecordKind, id_tuple

SOURCE_COLUMNS = ("stream_id", "stream_ms", "stream_seq", "bot")


def _arrow_type(annotation: Any) -> tuple[pa.DataType, bool]:
    """(arrow type, is it plain JSON text) of a pydantic field annotation."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _arrow_type(inner[0])
    if annotation is bool:
        return pa.bool_(), False
    if annotation is int:
        return pa.int64(), False
    if annotation is float:
        return pa.float64(), False
    if annotation is str or (isinstance(annotation, type) and issubclass(annotation, Enum)):
        return pa.string(), False
    if typing.get_origin(annotation) is typing.Literal:
        return pa.string(), False
    return pa.string(), True


def schema(kind: RecordKind) -> pa.Schema:
    fields = [pa.field("stream_id", pa.string(), False), pa.field("stream_ms", pa.int64(), False),
              pa.field("stream_seq", pa.int64(), False), pa.field("bot", pa.string(), False)]
    for name, info in kind.model.model_fields.items():
        if name == "bot":
            continue  # the stream's bot (a record's own ``bot`` is the same)
        typ, _ = _arrow_type(info.annotation)
        fields.append(pa.field(name, typ, True))
    return pa.schema(fields)


def _json_columns(kind: RecordKind) -> set[str]:
    return {n for n, info in kind.model.model_fields.items() if _arrow_type(info.annotation)[1]}


def row(kind: RecordKind, bot: str, entry: Entry) -> dict[str, Any]:
    """One stream entry as a row of ``schema(kind)`` (the entry's JSON validated by the kind's model)."""
    values = kind.parse(entry.data)
    ms, seq = id_tuple(entry.id)
    # the audit stream is global: its rows belong to the command's target (a bot, a mode or '')
    owner = bot or str(values.get("bot") or values.get("target") or "")
    out: dict[str, Any] = {"stream_id": entry.id, "stream_ms": ms, "stream_seq": seq, "bot": owner}
    json_cols = _json_columns(kind)
    for name in kind.model.model_fields:
        if name == "bot":
            continue
        v = values.get(name)
        out[name] = json.dumps(v) if name in json_cols and v is not None else v
    return out


def month_of(kind: RecordKind, r: dict[str, Any]) -> str:
    """The month partition of a row: its record time's UTC month ('2025-01'); the entry's own time
    when the record carries none."""
    t = r.get(kind.time_field) or r["stream_ms"]
    return datetime.fromtimestamp(int(t) / 1000, tz=timezone.utc).strftime("%Y-%m")


def table(kind: RecordKind, rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema(kind))


def empty(kind_name: str) -> pa.Table:
    return schema(KINDS[kind_name]).empty_table()
