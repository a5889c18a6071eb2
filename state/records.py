"""The record streams seen as one set of kinds (trades, fills, orders, equity, signals, audit, risk
decisions, DCA deals): what each kind's entries are, which time they carry, and how they are read
from Redis by last-id bookkeeping — for the archiver (``records.archiver``), which copies them into
the long-term store, and for exports, which add the entries the store has not taken yet.

Stream entry ids (``<ms>-<seq>``) are the records' identity: the store keeps each entry's id, so an
entry is archived once however often it is read. Nothing here writes a record; the archiver's own
status is the one key written (``keys.ARCHIVER_STATUS``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import redis
from pydantic import BaseModel, ConfigDict

from state import keys
from state.models import (
    AuditRecord,
    CandleRecord,
    EquityRecord,
    FillRecord,
    OrderRecord,
    RiskDecisionRecord,
    SignalRecord,
    TradeRecord,
)


class DealRecord(BaseModel):
    """A closed DCA deal as the records keep it: the figures a report reads as columns, and the whole
    deal (``engine.deal.Deal.dump()``: tranches, settings, transitions) as JSON in ``detail``."""

    model_config = ConfigDict(extra="ignore")
    id: str
    bot: str
    symbol: str
    side: str
    status: str
    opened_at: int = 0
    closed_at: int = 0
    base_price: float = 0.0
    safety_filled: int = 0
    tp_steps_filled: int = 0
    realized_pnl: float = 0.0
    fees: float = 0.0
    max_drawdown_pct: float = 0.0
    close_reason: str = ""
    detail: str = ""

    @classmethod
    def of_json(cls, data: str) -> "DealRecord":
        return cls.model_validate({**json.loads(data), "detail": data})


@dataclass(frozen=True, slots=True)
class RecordKind:
    """One kind of record: its stream key (per bot, or one global stream), its model and the field
    holding its time (epoch ms, market time)."""

    name: str
    model: type[BaseModel]
    time_field: str
    key_of: Callable[[str], str] | None  # bot -> stream key; None: the one global stream ``global_key``
    global_key: str = ""
    label: str = ""

    @property
    def per_bot(self) -> bool:
        return self.key_of is not None

    def key(self, bot: str = "") -> str:
        return self.key_of(bot) if self.key_of is not None else self.global_key

    def pattern(self) -> str:
        """SCAN pattern of this kind's streams."""
        return self.key("*") if self.key_of is not None else self.global_key

    def bot_of(self, key: str) -> str:
        """The bot a stream key belongs to ('' for a global stream)."""
        if self.key_of is None:
            return ""
        prefix = self.key("")
        return key[len(prefix):] if key.startswith(prefix) else ""

    def parse(self, data: str) -> dict[str, Any]:
        """An entry's JSON as a validated dict (the model's fields, in order)."""
        if self.model is DealRecord:
            return DealRecord.of_json(data).model_dump(mode="json")
        return self.model.model_validate_json(data).model_dump(mode="json")


KINDS: dict[str, RecordKind] = {k.name: k for k in (
    RecordKind("trades", TradeRecord, "exit_time", keys.trades, label="closed round trips"),
    RecordKind("fills", FillRecord, "time", keys.fills, label="fills"),
    RecordKind("orders", OrderRecord, "created_at", keys.orders, label="orders"),
    RecordKind("equity", EquityRecord, "time", keys.equity, label="mark-to-market equity per candle"),
    RecordKind("signals", SignalRecord, "time", keys.signals, label="signals"),
    RecordKind("audit", AuditRecord, "time", None, keys.AUDIT, label="operator commands and rule changes"),
    RecordKind("risk", RiskDecisionRecord, "time", keys.risk_decisions, label="risk decisions"),
    RecordKind("deals", DealRecord, "closed_at", keys.deals, label="closed DCA deals"),
    # not a stream: the worker's recent-candles LIST, archived by open time (the owner is the symbol);
    # reports measure buy-and-hold on them
    RecordKind("candles", CandleRecord, "t", keys.candles, label="closed candles"),
)}
EXPORTABLE = ("trades", "fills", "equity", "orders", "signals", "audit", "risk", "deals")


@dataclass(frozen=True, slots=True)
class StreamRef:
    kind: str
    bot: str
    key: str


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    id: str
    data: str  # the entry's ``data`` field (JSON)


def id_tuple(entry_id: str) -> tuple[int, int]:
    """``'1700000000000-3'`` -> (1700000000000, 3): stream ids compare as pairs of integers."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _s(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _stream_entries(resp: object) -> list[Entry]:
    """XREAD replies (RESP2 list or RESP3 dict) as entries, in stream order."""
    if not resp:
        return []
    streams = resp.items() if isinstance(resp, dict) else resp
    out: list[Entry] = []
    for name, entries in streams:
        if entries and isinstance(entries[0], list) and not isinstance(entries[0][0], (bytes, str)):
            entries = entries[0]
        for entry_id, fields in entries:
            data = (fields or {}).get("data", (fields or {}).get(b"data")) if fields else None
            out.append(Entry(_s(name), _s(entry_id), _s(data) if data is not None else ""))
    return out


class ArchiverStatus(BaseModel):
    """What the archiver last said about itself (the dashboard's records line reads it)."""

    model_config = ConfigDict(extra="ignore")
    pid: int
    time: int  # wall ms
    store: str  # where the long-term store is
    streams: int = 0
    rows: int = 0  # rows in the store
    lag: int = 0  # entries read but not committed yet
    last_commit: int = 0  # wall ms
    gaps: list[str] = []  # streams trimmed past the archive's cursor while it was away (records lost)
    error: str = ""


class RecordStreams:
    """Read access to every record stream (the archiver and exports use it; only reads, plus the
    archiver's status)."""

    def __init__(self, r: redis.Redis) -> None:
        self.r = r

    def discover(self, kinds: Iterable[str] = EXPORTABLE) -> list[StreamRef]:
        """Every record stream present now, by kind (SCAN, so a bot created at run time is found)."""
        out: list[StreamRef] = []
        for name in kinds:
            kind = KINDS[name]
            if not kind.per_bot:
                if self.r.exists(kind.global_key):
                    out.append(StreamRef(name, "", kind.global_key))
                continue
            for key in sorted({_s(k) for k in self.r.scan_iter(match=kind.pattern(), count=500, _type="stream")}):
                bot = kind.bot_of(key)
                if bot and ":" not in bot:  # e.g. bot:risk:x, never bot:intents:events:x under another kind
                    out.append(StreamRef(name, bot, key))
        return out

    def read(self, cursors: dict[str, str], count: int = 1000, block_ms: int | None = None) -> list[Entry]:
        """Entries after each stream's cursor (``'0'``: from the start), at most ``count`` a stream."""
        if not cursors:
            return []
        return _stream_entries(self.r.xread(dict(cursors), count=count, block=block_ms))

    def after(self, key: str, after_id: str, count: int | None = None) -> list[Entry]:
        """Entries of one stream newer than ``after_id`` (exclusive), oldest first."""
        start = "-" if after_id in ("", "0", "0-0") else f"({after_id}"
        return [Entry(key, _s(i), _s((f or {}).get("data", ""))) for i, f in self.r.xrange(key, start, "+",
                                                                                            count=count)]

    def newest_id(self, key: str) -> str:
        rows = self.r.xrevrange(key, count=1)
        return _s(rows[0][0]) if rows else "0-0"

    def counts(self, key: str) -> tuple[int | None, int, str]:
        """(entries ever added — None when the server cannot say (Redis < 7) —, entries present now, the
        last id generated). Trimming removes the oldest entries, so ``added - present`` entries are gone."""
        try:
            info = {_s(k): v for k, v in self.r.xinfo_stream(key).items()}
        except redis.ResponseError:
            return None, 0, "0-0"
        added = info.get("entries-added")
        return (int(added) if added is not None else None), int(info.get("length", 0)), \
            _s(info.get("last-generated-id", "0-0"))

    # ---- candles (a LIST per symbol, oldest first, trimmed by the worker) -----------------------
    def candle_keys(self) -> dict[str, str]:
        """symbol -> its candle list key."""
        kind = KINDS["candles"]
        found = {_s(k) for k in self.r.scan_iter(match=kind.pattern(), count=500, _type="list")}
        return {kind.bot_of(k): k for k in sorted(found) if kind.bot_of(k)}

    def candles(self, key: str) -> list[CandleRecord]:
        return [CandleRecord.model_validate_json(_s(raw)) for raw in self.r.lrange(key, 0, -1)]

    # ---- the archiver's status -------------------------------------------------------------
    def write_status(self, status: ArchiverStatus, ttl_s: int) -> None:
        self.r.set(keys.ARCHIVER_STATUS, status.model_dump_json(), ex=ttl_s)

    def status(self) -> ArchiverStatus | None:
        raw = self.r.get(keys.ARCHIVER_STATUS)
        return ArchiverStatus.model_validate_json(raw) if raw else None
