"""``bot_manager.py report [--bot NAME ...] [--mode MODE ...] [--from DATE] [--to DATE] [--period month|week]
[--html FILE]`` — per bot and per mode: return, P&L, fees, trades, win rate, drawdown and buy-and-hold of
the same symbol, by month or ISO week, from the records (long-term store + Redis); ``--backtest ID``
reports a stored backtest result instead. Prints a text table; ``--html`` also writes the HTML page.
Exit codes: 0 done, 2 bad input (named)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from backtest.data import parse_time
from cli._common import redis_client, redis_url
import records.report as report
from records.paths import records_dir
from records.store import RecordStore

HELP = "monthly or weekly report per bot and mode (text, --html FILE)"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bot_manager.py report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bot", action="append", default=[], help="bot name (repeatable; default: every bot)")
    p.add_argument("--mode", action="append", default=[], choices=["ghost", "paper", "live"])
    p.add_argument("--from", dest="start", help="UTC date/ISO time or epoch ms (inclusive)")
    p.add_argument("--to", dest="end", help="exclusive")
    p.add_argument("--period", default="month", choices=["month", "week"])
    p.add_argument("--html", type=Path, help="also write the report as one HTML file")
    p.add_argument("--backtest", metavar="ID", help="report a stored backtest result (the Backtest tab's list)")
    p.add_argument("--dir", type=Path, help="the records store (default: $BOT_VAR/records)")
    p.add_argument("--config", help="config file to take redis.url from")
    p.add_argument("--redis-url", help="default: $BOT_REDIS__URL, else redis.url of the config file")
    args = p.parse_args(argv)
    try:
        start, end = parse_time(args.start), parse_time(args.end)
    except ValueError as exc:
        print(f"bot_manager.py report: --from/--to: not a date, ISO time or epoch ms ({exc})", file=sys.stderr)
        return 2
    r = redis_client(redis_url(args.redis_url, args.config))
    if args.backtest:
        from state import backtest_store

        doc = backtest_store.load(r, args.backtest)
        if doc is None:
            known = ", ".join(m["id"] for m in backtest_store.list_results(r)[:5]) or "none"
            print(f"bot_manager.py report: --backtest: no stored result {args.backtest!r} (latest: {known})",
                  file=sys.stderr)
            return 2
        rep = report.backtest(doc)
    else:
        from state.reader import StateReader

        store = RecordStore(args.dir or records_dir())
        metas = StateReader(r).bots()
        recorded = list(report.owners(store, r))
        names = args.bot or recorded
        unknown = [b for b in args.bot if b not in metas and b not in recorded]
        if unknown:
            print(f"bot_manager.py report: --bot: unknown {', '.join(unknown)}", file=sys.stderr)
            return 2
        bots = {n: (metas[n].mode, metas[n].symbol) if n in metas else ("unknown", "") for n in names}
        if args.mode:
            bots = {n: v for n, v in bots.items() if v[0] in args.mode}
        rep = report.running(store, r, bots, start, end, args.period)
    print(report.to_text(rep))
    if args.html:
        args.html.write_text(report.to_html(rep), encoding="utf-8")
        print(f"\nHTML report -> {args.html}")
    return 0
