"""``bot_manager.py backup [--out FILE]``: one archive with a snapshot of Redis, the long-term records
store, the local exchange's state file and the config, with a manifest of SHA-256 checksums
(docs/records.md). The worker may keep running: Redis is snapshot at one instant."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cli._common import redis_url
import records.backup as backup
from records.paths import exchange_state_file, records_dir, var_dir
from settings import config_path

HELP = "write one archive: Redis snapshot, records store, exchange state, config, with checksums"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bot_manager.py backup", description=__doc__)
    p.add_argument("--out", type=Path, help="archive to write (default: var/backups/backup-<UTC time>.tar.gz)")
    p.add_argument("--dir", type=Path, help="the records store (default: $BOT_VAR/records)")
    p.add_argument("--exchange-state", type=Path, help="the local exchange's state file (default: var/exchange-state.json)")
    p.add_argument("--config", help="the config file to include (default: $BOT_CONFIG or config.yaml)")
    p.add_argument("--redis-url", help="default: $BOT_REDIS__URL, else redis.url of the config file")
    args = p.parse_args(argv)
    out = args.out or var_dir() / "backups" / f"backup-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}.tar.gz"
    url = redis_url(args.redis_url, args.config)
    try:
        m = backup.create(out, url, args.dir or records_dir(), config_path(args.config),
                          args.exchange_state or exchange_state_file())
    except backup.redis_dump.RedisError as exc:
        print(f"bot_manager.py backup: Redis does not answer: {exc}", file=sys.stderr)
        return 1
    names = {f["path"].split("/")[0] for f in m["files"]}
    print(f"backup -> {out} ({out.stat().st_size:,} bytes): {m['redis']['keys']} Redis keys, "
          f"{m['records']['rows']:,} archived records, "
          f"{'the exchange state, ' if 'exchange' in names else 'no exchange state file, '}"
          f"{'the config' if 'config' in names else 'no config'}; {len(m['files'])} files with checksums")
    for gap in m["records"]["gaps"]:
        print(f"note: the records store has a gap: {gap}", file=sys.stderr)
    return 0
