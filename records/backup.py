"""Backup and restore: one ``.tar.gz`` holding a snapshot of Redis (``state.redis_dump``), the long-term
records store, the local exchange's state file and the config, with a manifest (``backup.json``, the
archive's first member) listing every file with its size and SHA-256.

The store is copied before Redis is snapshot, so the store's cursors never run ahead of the streams
restored with it (the archiver simply reads what follows). ``verify`` refuses an archive that is not
one of ours (no manifest, another format, a newer version: "foreign") or whose files do not match
their checksums, are missing, extra or unreadable ("corrupt"), before anything is written; ``restore``
refuses a target Redis a worker is running on, or that is not empty (unless asked to replace it).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterator
from urllib.parse import urlparse

from records.store import MANIFEST as STORE_MANIFEST
from records.store import Manifest, describe
from state import redis_dump

FORMAT = "tradingbot-backup"
VERSION = 1
MANIFEST = "backup.json"
REDIS_FILE = "redis/keys.jsonl.gz"
CONFIG_FILE = "config/config.yaml"
EXCHANGE_FILE = "exchange/exchange-state.json"


class BackupError(Exception):
    """What is wrong with an archive or a target, said plainly (the CLI prints it and exits 2)."""


@dataclass(slots=True)
class Contents:
    manifest: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)  # archive path -> data (verified)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _redacted(url: str) -> str:
    u = urlparse(url)
    host = f"{u.hostname}:{u.port}" if u.port else str(u.hostname)
    return f"{u.scheme}://{host}{u.path}"


def create(out: Path, redis_url: str, store_dir: Path, config_file: Path | None,
           exchange_state: Path | None) -> dict[str, Any]:
    """Write the archive to ``out`` (atomically: a temporary file renamed at the end); returns its manifest."""
    files: dict[str, bytes] = {}
    store = Manifest()
    store_path = store_dir / STORE_MANIFEST
    if store_path.exists():
        # the store's manifest names immutable files: copy those it names, as of this manifest
        raw = store_path.read_bytes()
        store = Manifest.model_validate_json(raw)
        files[f"records/{STORE_MANIFEST}"] = raw
        for f in store.files:
            files[f"records/{f.path}"] = (store_dir / f.path).read_bytes()
    dumps, facts = redis_dump.snapshot(redis_url)  # after the store: its cursors are behind these streams
    files[REDIS_FILE] = gzip.compress("".join(redis_dump.lines(dumps)).encode(), mtime=0)
    if exchange_state is not None and exchange_state.exists():
        files[EXCHANGE_FILE] = exchange_state.read_bytes()
    if config_file is not None and config_file.exists():
        files[CONFIG_FILE] = config_file.read_bytes()
    now = int(time.time() * 1000)
    manifest = {
        "format": FORMAT, "version": VERSION, "created_at": now,
        "created_at_utc": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now / 1000)),
        "host": socket.gethostname(),
        "redis": {"url": _redacted(redis_url), "version": facts["redis_version"], "keys": len(dumps),
                  "worker_was_running": redis_dump.worker_alive(redis_url)},
        "records": {"rows": store.rows(), "kinds": describe(store), "gaps": store.gaps},
        "files": [{"path": p, "bytes": len(d), "sha256": _sha(d)} for p, d in sorted(files.items())],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".backup-", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as raw_out, tarfile.open(fileobj=raw_out, mode="w:gz") as tar:
            _add(tar, MANIFEST, json.dumps(manifest, indent=1).encode())
            for path, data in sorted(files.items()):
                _add(tar, path, data)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return manifest


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
    tar.addfile(info, io.BytesIO(data))


def _safe(path: str) -> bool:
    p = PurePosixPath(path)
    return not p.is_absolute() and ".." not in p.parts and bool(p.parts)


def verify(archive: Path) -> Contents:
    """Read and check the whole archive; BackupError says what is wrong."""
    if not archive.is_file():
        raise BackupError(f"{archive}: no such file")
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            members = [m for m in tar.getmembers()]
            if not members or members[0].name != MANIFEST:
                raise BackupError(f"{archive} is not a backup made by 'bot_manager.py backup' (a foreign archive): "
                                  f"its first file is {members[0].name if members else 'missing'}, not {MANIFEST}")
            manifest = _manifest(archive, tar.extractfile(members[0]))
            listed = {f["path"]: f for f in manifest["files"]}
            data: dict[str, bytes] = {}
            for m in members[1:]:
                if m.name not in listed or not m.isfile() or not _safe(m.name):
                    raise BackupError(f"{archive} is corrupt or was altered: {m.name!r} is not in its manifest")
                fh = tar.extractfile(m)
                data[m.name] = fh.read() if fh else b""
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile, zlib_error()) as exc:
        raise BackupError(f"{archive} is corrupt (truncated or damaged): {exc}") from None
    for path, f in listed.items():
        if path not in data:
            raise BackupError(f"{archive} is corrupt: {path} is listed in its manifest but missing")
        if len(data[path]) != f["bytes"] or _sha(data[path]) != f["sha256"]:
            raise BackupError(f"{archive} is corrupt: {path} does not match its checksum (sha256 {f['sha256'][:12]}…)")
    return Contents(manifest, data)


def zlib_error() -> type[Exception]:
    import zlib

    return zlib.error


def _manifest(archive: Path, fh: io.BufferedReader | None) -> dict[str, Any]:
    try:
        m = json.loads(fh.read() if fh else b"")
    except ValueError:
        raise BackupError(f"{archive}: its {MANIFEST} is not JSON (corrupt, or not one of our backups)") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise BackupError(f"{archive} is not a backup made by 'bot_manager.py backup' (a foreign archive): "
                          f"format {m.get('format') if isinstance(m, dict) else None!r}, expected {FORMAT!r}")
    if not isinstance(m.get("version"), int) or m["version"] > VERSION:
        raise BackupError(f"{archive} was made by a newer version of this program (backup format "
                          f"{m.get('version')!r}; this one reads up to {VERSION}): upgrade first")
    if not isinstance(m.get("files"), list) or not all(isinstance(f, dict) and {"path", "bytes", "sha256"} <= set(f)
                                                       for f in m["files"]):
        raise BackupError(f"{archive}: its manifest has no valid file list (corrupt)")
    return m


def _dumps(contents: Contents) -> Iterator[redis_dump.KeyDump]:
    text = gzip.decompress(contents.files[REDIS_FILE]).decode()
    for line in text.splitlines():
        if line:
            yield redis_dump.KeyDump.of_line(line)


@dataclass(slots=True)
class Restored:
    keys: int
    records_rows: int
    records_dir: Path | None
    exchange_state: Path | None
    config: Path | None
    moved_aside: list[Path] = field(default_factory=list)


def restore(contents: Contents, redis_url: str, store_dir: Path, exchange_state: Path, config_out: Path,
            replace: bool = False) -> Restored:
    """Put a verified archive back: Redis (must be empty and without a worker, unless ``replace``, which
    still refuses a running worker), the records store and the exchange's state file (what is there
    already is moved aside, never deleted), and the config next to, not over, the one in use."""
    try:
        redis_dump.wait(redis_url, 10.0)
        if redis_dump.worker_alive(redis_url):
            raise BackupError(f"a worker is running against {_redacted(redis_url)}: stop it (and make run) first")
        existing = redis_dump.key_count(redis_url)
    except redis_dump.RedisError as exc:
        raise BackupError(f"Redis at {_redacted(redis_url)} does not answer: {exc}") from None
    if existing and not replace:
        raise BackupError(f"Redis at {_redacted(redis_url)} is not empty ({existing} keys): restore into a fresh "
                          "Redis, or pass --replace to empty it first")
    moved: list[Path] = []
    stamp = time.strftime("%Y%m%d-%H%M%S")

    def aside(p: Path) -> None:
        if p.exists() and (p.is_file() or any(p.iterdir())):
            target = p.with_name(f"{p.name}.before-restore-{stamp}")
            shutil.move(str(p), target)
            moved.append(target)

    n = redis_dump.restore(redis_url, _dumps(contents), flush_first=replace)
    records = {p[len("records/"):]: d for p, d in contents.files.items() if p.startswith("records/")}
    rows = 0
    restored_dir = None
    if records:
        aside(store_dir)
        for rel, data in records.items():
            target = store_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        rows = Manifest.model_validate_json(records[STORE_MANIFEST]).rows() if STORE_MANIFEST in records else 0
        restored_dir = store_dir
    ex_path = None
    if EXCHANGE_FILE in contents.files:
        aside(exchange_state)
        exchange_state.parent.mkdir(parents=True, exist_ok=True)
        exchange_state.write_bytes(contents.files[EXCHANGE_FILE])
        ex_path = exchange_state
    cfg_path = None
    if CONFIG_FILE in contents.files:
        config_out.parent.mkdir(parents=True, exist_ok=True)
        config_out.write_bytes(contents.files[CONFIG_FILE])
        cfg_path = config_out
    return Restored(n, rows, restored_dir, ex_path, cfg_path, moved)
