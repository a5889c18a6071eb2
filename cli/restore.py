"""``bot_manager.py restore ARCHIVE [--redis-url URL] [--replace]``: verify an archive made by ``backup``
(manifest, checksums) and put it back — Redis, the records store, the local exchange's state file; the
backup's config is written beside, not over, the one in use. A corrupt or foreign archive is refused
before anything is written. Stop ``make run`` first. Exit codes: 0 restored, 2 refused (the reason)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli._common import redis_url
import records.backup as backup
from records.paths import exchange_state_file, records_dir, var_dir

HELP = "verify a backup archive and restore it into a fresh Redis (refuses corrupt or foreign ones)"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bot_manager.py restore", description=__doc__)
    p.add_argument("archive", type=Path)
    p.add_argument("--verify-only", action="store_true", help="check the archive and print its manifest")
    p.add_argument("--replace", action="store_true", help="empty a non-empty target Redis first")
    p.add_argument("--dir", type=Path, help="where the records store goes (default: $BOT_VAR/records)")
    p.add_argument("--exchange-state", type=Path, help="default: var/exchange-state.json")
    p.add_argument("--config-out", type=Path, help="where the backup's config goes (default: var/restored-config.yaml)")
    p.add_argument("--config", help="config file to take redis.url from")
    p.add_argument("--redis-url", help="the target Redis (default: $BOT_REDIS__URL, else redis.url of the config)")
    args = p.parse_args(argv)
    try:
        contents = backup.verify(args.archive)
    except backup.BackupError as exc:
        print(f"bot_manager.py restore: refused: {exc}", file=sys.stderr)
        return 2
    m = contents.manifest
    print(f"{args.archive}: backup of {m['created_at_utc']} from {m.get('host')}: {m['redis']['keys']} Redis keys, "
          f"{m['records']['rows']:,} archived records, {len(m['files'])} files, every checksum matches")
    if args.verify_only:
        return 0
    try:
        done = backup.restore(contents, redis_url(args.redis_url, args.config), args.dir or records_dir(),
                              args.exchange_state or exchange_state_file(),
                              args.config_out or var_dir() / "restored-config.yaml")
    except backup.BackupError as exc:
        print(f"bot_manager.py restore: refused: {exc}", file=sys.stderr)
        return 2
    print(f"restored {done.keys} Redis keys"
          + (f", {done.records_rows:,} records into {done.records_dir}" if done.records_dir else "")
          + (f", the exchange state into {done.exchange_state}" if done.exchange_state else ""))
    for moved in done.moved_aside:
        print(f"  what was there is kept as {moved}")
    if done.config:
        print(f"  the backup's config is at {done.config}: compare it with the config you run (it was not replaced)")
    print("start the stack (make run): the worker continues from the restored positions and states")
    return 0
