#!/usr/bin/env python3
"""Worker entry point and command line.

    python bot_manager.py run              run every configured bot (the worker)
    python bot_manager.py check-config     validate config.yaml + environment, print the bots
    python bot_manager.py status           heartbeat, bots, states and P&L from Redis
    python bot_manager.py send CMD ...     post a kill-switch command (pause, flatten, resume, ...)
    python bot_manager.py dca-preview ...  print a DCA ladder before launching a deal
    python bot_manager.py backtest ...     run bots over stored candles (backtest --help)
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from settings import AppConfig, ConfigError, load_config


def build_feed(app: AppConfig, r) -> "object":  # type: ignore[no-untyped-def]
    """The configured market feed, continuing from the candles already stored in Redis."""
    from state.writer import StateWriter

    writer = StateWriter(r)
    if app.market.source == "exchange":
        # Every mode sees the venue's market (the local exchange by default).
        from exchange.marketdata import ExchangeFeed
        from exchange.venues import DEFAULT_LOCAL, venue_urls

        urls = venue_urls(app.exchange.venue, app.exchange.base_url or DEFAULT_LOCAL)
        return ExchangeFeed(urls, app.market.symbols, app.market.interval, market="spot",
                            stale_after_s=app.exchange.stale_after_s)
    if app.market.source == "replay":
        from market.feed import ReplayFeed
        from market.replay import load_candles

        series = []
        for path in app.market.replay_files:
            series.extend(load_candles(path).candles)
        return ReplayFeed(series, speed=app.market.speed)
    from market.feed import SyntheticFeed
    from market.synthetic import DEFAULT_SYMBOLS, SyntheticMarket

    resume = {}
    for symbol in app.market.symbols:
        stored = writer.recent_candles(symbol, 1)
        if stored:
            resume[symbol] = stored[-1]
    # Unknown symbols start at 100 (a neutral level); the known ones at realistic prices.
    market = SyntheticMarket({s: DEFAULT_SYMBOLS.get(s, 100.0) for s in app.market.symbols}, seed=app.market.seed,
                             interval=app.market.interval)
    return SyntheticFeed(market, speed=app.market.speed, resume=resume or None)


def _load(path: str | None) -> AppConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None


def _redis(app: AppConfig):  # type: ignore[no-untyped-def]
    import redis

    return redis.Redis.from_url(app.redis.url, socket_timeout=5, health_check_interval=30)


def cmd_run(args: argparse.Namespace) -> int:
    app = _load(args.config)  # a bad config exits here, before Redis is touched
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import redis

    from engine.worker import Worker, wait_for_redis

    r = _redis(app)
    try:
        wait_for_redis(r, timeout_s=10)
    except redis.ConnectionError as exc:
        print(f"cannot reach Redis at {app.redis.url}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker = Worker(app, r, build_feed(app, r))
    worker.start()
    worker.run(stop)
    logging.getLogger("worker").info("worker stopped")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    app = _load(args.config)
    print(f"config OK: {len(app.bots)} bots, market {app.market.source} {', '.join(app.market.symbols)}")
    for b in app.bots:
        print(f"  {b.name:24} {b.mode:6} {b.symbol:10} {b.strategy} {b.params}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    app = _load(args.config)
    from state.reader import StateReader

    reader = StateReader(_redis(app))
    hb = reader.heartbeat()
    print("worker:", f"up (pid {hb.pid}, {hb.bots} bots)" if hb else "DOWN (no heartbeat)")
    g = reader.control("global")
    print(f"global state: {g.state.value} (by {g.set_by}: {g.reason})")
    for snap in reader.snapshots().values():
        print(f"  {snap.name:24} {snap.mode:6} {snap.effective_state.value:8} equity {snap.equity:12.2f} "
              f"P&L {snap.pnl:+10.2f} trades {snap.trade_count}")
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    app = _load(args.config)
    from state.commands import new_command, post_command

    if args.cmd in ("emergency_stop", "resume_all"):
        scope, target = "global", ""
    elif args.bot:
        scope, target = "bot", args.bot
    elif args.mode:
        scope, target = "mode", args.mode
    else:
        scope, target = "global", ""
    command = new_command(args.cmd, scope, target, user=args.user, reason=args.reason, limit=args.limit,
                          value=args.value)
    entry = post_command(_redis(app), command)
    print(f"posted {command.label} as {entry} (nonce {command.nonce})")
    return 0


def cmd_dca_preview(argv: list[str]) -> int:
    from strategy.dca_report import main as dca_main

    return dca_main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "dca-preview":  # its own argparse, shared with the dashboard preview
        return cmd_dca_preview(argv[1:])
    if argv and argv[0] == "backtest":  # its own argparse (backtest/cli.py)
        import backtest.cli

        return backtest.cli.main(argv[1:])
    p = argparse.ArgumentParser(prog="bot_manager.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="config file (default: $BOT_CONFIG or config.yaml)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the worker")
    sub.add_parser("check-config", help="validate the configuration")
    sub.add_parser("status", help="print worker, bot states and P&L from Redis")
    s = sub.add_parser("send", help="post a command to the worker")
    s.add_argument("cmd", choices=["pause", "flatten", "resume", "reduce_only", "halt", "set_limit", "adopt",
                                   "ignore_drift", "emergency_stop", "resume_all"])
    s.add_argument("--bot")
    s.add_argument("--mode", choices=["ghost", "paper", "live"])
    s.add_argument("--user", default="cli")
    s.add_argument("--reason", default="")
    s.add_argument("--limit", default="", help="set_limit: the limit to lower, e.g. max_position_pct")
    s.add_argument("--value", default="", help="set_limit: its new, lower value")
    sub.add_parser("dca-preview", help="print a DCA ladder (see dca-preview --help)")
    args = p.parse_args(argv)
    return {"run": cmd_run, "check-config": cmd_check, "status": cmd_status, "send": cmd_send}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
