"""``bot_manager.py run``: the worker. A bad config exits 2 before Redis is touched."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

import redis

from cli._common import load_or_exit

HELP = "run every configured bot (the worker)"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bot_manager.py run", description=HELP)
    p.add_argument("--config", help="config file (default: $BOT_CONFIG or config.yaml)")
    p.add_argument("--shards", help="the shards this worker trades, e.g. 0,1 (default: all of worker.shards); "
                                    "it waits one heartbeat TTL for a dead holder's lease, then refuses")
    p.add_argument("--standby", action="store_true", help="start holding no shard: take over whichever shard's "
                                                          "worker dies")
    p.add_argument("--no-takeover", action="store_true", help="never take over another worker's shards")
    args = p.parse_args(argv)
    app = load_or_exit(args.config)
    try:
        wanted = _shards(args.shards, args.standby, app.worker.shards)
    except ValueError as exc:
        print(f"--shards: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from backtest.ml.artifact import install_loader
    from backtest.service import launch
    from engine.assembly import build_feed
    from engine.worker import Worker
    from state.connection import connect, wait_for_redis
    from state.lease import LeaseHeld

    r = connect(app.redis.url)
    try:
        wait_for_redis(r, timeout_s=10)
    except redis.ConnectionError as exc:
        from ops.redis_acl import shown  # never the password of a make run ACL user

        print(f"cannot reach Redis at {shown(app.redis.url)}: {exc}", file=sys.stderr)
        return 1
    install_loader()  # ml_classifier bots read their model files once, when built
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker = Worker(app, r, build_feed(app, r), backtests=launch, shards=wanted, takeover=not args.no_takeover)
    if os.environ.get("BOT_CHAOS") and worker.venue is not None:
        from ops.chaos import arm

        worker.venue.on_executor = arm
    try:
        worker.start()
    except LeaseHeld as exc:
        print(f"not started: {exc}", file=sys.stderr)
        return 3
    worker.run(stop)
    if worker.lease_lost:
        logging.getLogger("worker").critical("worker stopped: it lost its lease to another worker")
        return 3
    logging.getLogger("worker").info("worker stopped")
    return 0


def _shards(text: str | None, standby: bool, count: int) -> list[int] | None:
    """The shards asked for (None: all of them); ValueError naming the rule."""
    if standby:
        if text:
            raise ValueError("give either --shards or --standby")
        return []
    if not text:
        return None
    try:
        shards = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise ValueError(f"{text!r} is not a comma-separated list of shard numbers like 0,1") from None
    bad = [s for s in shards if not 0 <= s < count]
    if bad or not shards:
        raise ValueError(f"shards must be in 0..{count - 1} (worker.shards is {count}); got {text!r}")
    return shards
