"""The long-term store through the real path: a real redis-server, the real worker and the real archiver
as subprocesses, each SIGKILLed while they run. Afterwards every entry of every record stream is in the
store exactly once, with the same content (no record lost, none doubled)."""
from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

from records import schema
from records.store import RecordStore
from state.connection import connect
from state.records import EXPORTABLE, KINDS, RecordStreams
from support import PY, ROOT, fast_config, snapshots, start_worker, wait_for, write_config


class ArchiverProcess:
    def __init__(self, url: str, store: Path, log: Path, flush_s: float = 0.2) -> None:
        self.args = [PY, "-m", "records.archiver", "--redis-url", url, "--dir", str(store), "--flush-s", str(flush_s)]
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "ArchiverProcess":
        self.proc = subprocess.Popen(self.args, cwd=ROOT, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        return self

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)


def redis_rows(url: str) -> dict[str, dict[str, dict]]:
    """stream key -> entry id -> the row the store should hold for it."""
    streams = RecordStreams(connect(url))
    out: dict[str, dict[str, dict]] = {}
    for ref in streams.discover(EXPORTABLE):
        out[ref.key] = {e.id: schema.row(KINDS[ref.kind], ref.bot, e) for e in streams.after(ref.key, "0")}
    return out


def store_rows(store: RecordStore) -> tuple[dict[str, dict[str, dict]], Counter]:
    """The same from the store, and how often each (stream, id) occurs in it."""
    seen: Counter = Counter()
    out: dict[str, dict[str, dict]] = {}
    for name in EXPORTABLE:
        kind = KINDS[name]
        for row in store.read(name).to_pylist():
            key = kind.key(row["bot"]) if kind.per_bot else kind.global_key
            seen[(key, row["stream_id"])] += 1
            out.setdefault(key, {})[row["stream_id"]] = row
    return out, seen


def test_no_record_lost_or_doubled_across_sigkills_of_the_archiver_and_the_worker(redis_server, r, tmp_path):
    url = redis_server.url
    cfg = write_config(tmp_path / "config.yaml", fast_config(url))
    store_dir = tmp_path / "records"
    worker = start_worker(cfg, tmp_path / "worker.log", r)
    archiver = ArchiverProcess(url, store_dir, tmp_path / "archiver.log").start()
    rng = random.Random(17)
    try:
        wait_for(lambda: sum(s.trade_count for s in snapshots(r).values()) >= 3, 60, "a few trades")
        statuses = RecordStreams(r)
        commits = []
        for i in range(8):  # the archiver killed at random moments: mid-read, mid-write, mid-commit
            wait_for(lambda: (st := statuses.status()) is not None and st.pid == archiver.proc.pid, 30,
                     "the archiver at work")
            time.sleep(rng.uniform(0.1, 1.5))
            archiver.kill9()
            commits.append(RecordStore(store_dir).manifest().seq)
            if i == 3:  # and the worker once, while the archiver is down
                worker.kill9()
                worker = start_worker(cfg, tmp_path / "worker.log", r)
            archiver.start()
        time.sleep(1.0)
        assert len(set(commits)) >= 4, f"the archiver committed between too few of the kills: {commits}"
    except BaseException:
        archiver.kill9()
        raise
    finally:
        worker.stop()
    # the worker is stopped: the streams are final; the archiver catches up and stops cleanly
    redis_side = redis_rows(url)
    total = sum(len(v) for v in redis_side.values())
    try:
        wait_for(lambda: RecordStore(store_dir).manifest().rows("candles") and
                 RecordStore(store_dir).manifest().rows() - RecordStore(store_dir).manifest().rows("candles") >= total,
                 30, f"the archive to hold {total} rows")
    finally:
        assert archiver.stop() == 0
    assert RecordStore(store_dir).manifest().gaps == []
    stored, seen = store_rows(RecordStore(store_dir))
    doubled = {k: n for k, n in seen.items() if n > 1}
    assert not doubled, f"archived more than once: {list(doubled)[:5]}"
    assert set(stored) == set(redis_side), "the same streams"
    for key, entries in redis_side.items():
        missing = set(entries) - set(stored[key])
        assert not missing, f"{key}: {len(missing)} entries never archived, e.g. {sorted(missing)[:3]}"
        assert set(stored[key]) == set(entries), f"{key}: rows the stream never had"
        for entry_id, row in entries.items():
            got = stored[key][entry_id]
            assert json.dumps(got, sort_keys=True, default=str) == json.dumps(row, sort_keys=True, default=str), \
                f"{key} {entry_id}: stored {got} != {row}"
    kinds = Counter(k.split(":")[1] for k in redis_side)
    assert kinds["trades"] and kinds["equity"] and kinds["fills"] and kinds["orders"] and kinds["signals"], kinds
    assert total > 500, f"too little traffic to prove anything: {total} entries"
    candles = RecordStore(store_dir).read("candles")
    streams = RecordStreams(connect(url))
    for symbol, key in streams.candle_keys().items():
        mine = [t for s, t in zip(candles.column("bot").to_pylist(), candles.column("t").to_pylist()) if s == symbol]
        assert len(mine) == len(set(mine)), f"{symbol}: a candle archived twice"
        assert {c.t for c in streams.candles(key)} <= set(mine), f"{symbol}: candles in Redis not archived"
    assert "Traceback" not in (tmp_path / "archiver.log").read_text(), (tmp_path / "archiver.log").read_text()[-3000:]


def test_a_second_archiver_on_the_same_store_refuses_and_names_the_first(redis_server, r, tmp_path):
    store_dir = tmp_path / "records"
    first = ArchiverProcess(redis_server.url, store_dir, tmp_path / "a1.log").start()
    try:
        wait_for(lambda: (store_dir / ".lock").exists() and (store_dir / ".lock").read_text().strip(), 20,
                 "the first archiver's lock")
        second = subprocess.run(ArchiverProcess(redis_server.url, store_dir, tmp_path / "a2.log").args, cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert f"pid {first.proc.pid}" in second.stderr and "writes the records store" in second.stderr
    finally:
        first.stop()
