"""``bot_manager.py export --what trades|fills|equity|orders|signals|audit|risk|deals|drift [--bot NAME ...]
[--from DATE] [--to DATE] [--format csv|parquet] [--out FILE]``: records from the long-term store plus
what the Redis streams hold beyond it (docs/records.md). ``--out -`` writes CSV to stdout.
Exit codes: 0 written, 2 bad input (named)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from backtest.data import parse_time
from cli._common import redis_client, redis_url
from records.export import FORMATS, collect, file_name, to_bytes
from records.paths import records_dir
from records.store import RecordStore
from state.records import EXPORTABLE

HELP = "export trades, fills, equity, orders, signals, audit, ... as CSV or Parquet"
WHAT = (*EXPORTABLE, "drift")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bot_manager.py export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--what", required=True, choices=WHAT)
    p.add_argument("--bot", action="append", default=[], help="bot name (repeatable; default: every bot)")
    p.add_argument("--from", dest="start", help="first record time, UTC date/ISO time or epoch ms (inclusive)")
    p.add_argument("--to", dest="end", help="last record time (exclusive)")
    p.add_argument("--format", default="csv", choices=FORMATS)
    p.add_argument("--out", help="file to write (default: <what>-<bots>-<dates>.<format> here; '-': stdout, csv)")
    p.add_argument("--dir", type=Path, help="the records store (default: $BOT_VAR/records)")
    p.add_argument("--config", help="config file to take redis.url from (default: $BOT_CONFIG or config.yaml)")
    p.add_argument("--redis-url", help="default: $BOT_REDIS__URL, else redis.url of the config file")
    p.add_argument("--no-redis", action="store_true", help="the long-term store only")
    args = p.parse_args(argv)
    try:
        start, end = parse_time(args.start), parse_time(args.end)
    except ValueError as exc:
        print(f"bot_manager.py export: --from/--to: not a date, ISO time or epoch ms ({exc})", file=sys.stderr)
        return 2
    if start is not None and end is not None and end <= start:
        print("bot_manager.py export: --to must be after --from", file=sys.stderr)
        return 2
    if args.out == "-" and args.format != "csv":
        print("bot_manager.py export: --out - (stdout) is for --format csv", file=sys.stderr)
        return 2
    store = RecordStore(args.dir or records_dir())
    r = None if args.no_redis else redis_client(redis_url(args.redis_url, args.config))
    bots = args.bot or None
    if args.what == "drift":
        from records.drift import drift_export

        ex = drift_export(store, r, bots, start, end)
    else:
        ex = collect(args.what, store, r, bots, start, end)
    data = to_bytes(ex, args.format)
    for note in ex.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.out == "-":
        sys.stdout.write(data.decode("utf-8"))
        return 0
    out = Path(args.out or file_name(args.what, bots, args.format, start, end))
    out.write_bytes(data)
    print(f"{ex.rows} {args.what} rows ({ex.from_store} from the long-term store, {ex.from_streams} from Redis) "
          f"-> {out}")
    if ex.rows == 0 and bots:
        print(f"no {args.what} for {', '.join(bots)} in that range (bot names are case-sensitive)", file=sys.stderr)
    return 0
