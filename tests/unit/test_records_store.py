"""The records store and the archiver's steps against a real redis-server: the commit protocol (a writer
dying between its files and its manifest leaves nothing behind), compaction, filters, gaps."""
from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from records import store as store_mod
from records.archiver import Archiver
from records.store import RecordStore, StoreLocked
from state import keys
from state.models import AuditRecord, EquityRecord, TradeRecord
from state.records import RecordStreams

DAY = 86_400_000
T0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC


def trade(bot: str, i: int, exit_time: int) -> str:
    return TradeRecord(bot=bot, symbol="BTCUSDT", side="LONG", quantity=0.00062937, entry_price=100.0 + i,
                       exit_price=101.0 + i, entry_time=exit_time - 60_000, exit_time=exit_time, pnl=0.5 * i,
                       return_pct=1.0, fees=0.01).model_dump_json()


def fill_streams(r, n: int = 10) -> None:
    for i in range(n):
        r.xadd(keys.trades("a"), {"data": trade("a", i, T0 + i * 5 * DAY)})
        r.xadd(keys.equity("a"), {"data": EquityRecord(time=T0 + i * 60_000, equity=1000.0 + i).model_dump_json()})
        r.xadd(keys.trades("b"), {"data": trade("b", i, T0 + i * DAY)})
    r.xadd(keys.AUDIT, {"data": AuditRecord(time=T0, who="cli", command="pause", target="a", result="applied",
                                             detail="").model_dump_json()})


def archive_all(r, root) -> RecordStore:
    store = RecordStore(root)
    a = Archiver(r, store, flush_s=0)
    a.start()
    a.discover()
    while a.poll(None):
        pass
    a.flush()
    store.close()
    return store


def ids(tbl: pa.Table) -> list[str]:
    return tbl.column("stream_id").to_pylist()


def test_a_writer_dying_between_its_files_and_its_manifest_leaves_nothing_and_the_entries_come_again(r, tmp_path,
                                                                                                     monkeypatch):
    fill_streams(r)
    store = RecordStore(tmp_path)
    a = Archiver(r, store, flush_s=0)
    a.start()
    a.discover()
    a.poll(None)
    real_replace = os.replace

    def die(src, dst):  # the process "dies" just before the commit point
        if str(dst).endswith("manifest.json"):
            raise SystemExit("killed")
        return real_replace(src, dst)

    monkeypatch.setattr(store_mod.os, "replace", die)
    with pytest.raises(SystemExit):
        a.flush()
    monkeypatch.setattr(store_mod.os, "replace", real_replace)
    store.close()
    orphans = list(tmp_path.rglob("*.parquet"))
    assert orphans, "the part files were written before the manifest"
    assert RecordStore(tmp_path).manifest().rows() == 0  # nothing committed
    again = RecordStore(tmp_path)
    again.open_for_writing()  # the next writer deletes what no manifest names
    assert not [p for p in orphans if p.exists()]
    again.close()
    archive_all(r, tmp_path)  # and reads the streams again from the committed cursors
    reread = RecordStore(tmp_path)
    assert reread.manifest().rows() == 31
    t = reread.read("trades")
    pairs = list(zip(t.column("bot").to_pylist(), ids(t)))
    assert len(pairs) == len(set(pairs)) == 20  # once each


def test_reads_filter_by_bot_and_time_and_partition_by_month(r, tmp_path):
    fill_streams(r)
    store = archive_all(r, tmp_path)
    months = {f.month for f in store.manifest().files if f.kind == "trades"}
    assert months == {"2025-01", "2025-02"}  # a's trades run to day 45
    t = store.read("trades", bots=["a"], start_ms=T0 + 10 * DAY, end_ms=T0 + 30 * DAY)
    assert t.column("exit_time").to_pylist() == [T0 + 10 * DAY, T0 + 15 * DAY, T0 + 20 * DAY, T0 + 25 * DAY]
    assert set(t.column("bot").to_pylist()) == {"a"}
    assert t.column("quantity").to_pylist()[0] == 0.00062937  # kept exactly, not rounded
    audit = store.read("audit")
    assert audit.column("bot").to_pylist() == ["a"] and audit.column("command").to_pylist() == ["pause"]


def test_compaction_merges_by_level_and_keeps_every_row_once(r, tmp_path, monkeypatch):
    monkeypatch.setattr(store_mod, "RETIRED_GRACE_S", 0.0)
    store = RecordStore(tmp_path)
    a = Archiver(r, store, flush_s=0)
    a.start()
    for i in range(40):  # 40 batches of one equity point each
        r.xadd(keys.equity("a"), {"data": EquityRecord(time=T0 + i * 60_000, equity=float(i)).model_dump_json()})
        a.discover()
        a.poll(None)
        a.flush()
        store.compact(max_parts=4)  # as the archiver does every 30 s
    files = store.manifest().files
    assert len(files) <= 6 and any("compact-L2" in f.path for f in files), [f.path for f in files]
    store.compact(max_parts=4)  # the retired files go once their grace period is over
    on_disk = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet")}
    assert on_disk == {f.path for f in store.manifest().files}
    t = store.read("equity")
    assert t.column("equity").to_pylist() == [float(i) for i in range(40)]
    store.close()


def test_a_file_from_before_a_field_was_added_reads_with_nulls(tmp_path):
    store = RecordStore(tmp_path)
    store.open_for_writing()
    from records.store import Batch

    store.append(Batch({"equity": [{"stream_id": "1-0", "stream_ms": 1, "stream_seq": 0, "bot": "a", "time": T0,
                                    "equity": 5.0}]}, {}))
    path = tmp_path / store.manifest().files[0].path
    old = pq.read_table(path).drop_columns(["equity"])  # as if written before 'equity' existed
    pq.write_table(old, path)
    t = store.read("equity")
    assert t.column("equity").to_pylist() == [None] and t.column("time").to_pylist() == [T0]
    store.close()


def test_one_writer_at_a_time(tmp_path):
    first = RecordStore(tmp_path)
    first.open_for_writing()
    with pytest.raises(StoreLocked, match=f"pid {os.getpid()}"):
        RecordStore(tmp_path).open_for_writing()
    first.close()
    RecordStore(tmp_path).open_for_writing()


def test_records_redis_trimmed_before_archiving_are_a_recorded_gap_not_a_silence(r, tmp_path):
    for i in range(5):
        r.xadd(keys.equity("a"), {"data": EquityRecord(time=T0 + i, equity=1.0).model_dump_json()})
    store = archive_all(r, tmp_path)
    assert store.manifest().gaps == []
    for i in range(50):  # the archiver is away; the worker's capped stream moves on
        r.xadd(keys.equity("a"), {"data": EquityRecord(time=T0 + 100 + i, equity=2.0).model_dump_json()},
               maxlen=10, approximate=False)
    store = archive_all(r, tmp_path)
    gaps = store.manifest().gaps
    assert len(gaps) == 1 and gaps[0].startswith("bot:equity:a: Redis trimmed entries after ")
    assert store.manifest().rows("equity") == 15  # what was there to take was taken


def test_an_unreadable_entry_is_noted_and_does_not_stall_the_archive(r, tmp_path):
    r.xadd(keys.trades("a"), {"data": "{not json"})
    r.xadd(keys.trades("a"), {"data": trade("a", 1, T0)})
    store = archive_all(r, tmp_path)
    assert store.read("trades").num_rows == 1
    assert "unreadable entry" in store.manifest().gaps[0]
    a = Archiver(r, store)
    a.manifest = store.manifest()
    status = a.status()
    assert status.gaps == store.manifest().gaps
    RecordStreams(r).write_status(status, 5)
    assert RecordStreams(r).status().rows == 1
