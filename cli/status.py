"""``bot_manager.py status``: the worker's heartbeat, each bot's state and P&L, read from Redis.
Needs only the Redis URL (works while config.yaml is invalid)."""
from __future__ import annotations

import argparse

from cli._common import redis_client, redis_url

HELP = "print worker, bot states and P&L from Redis"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bot_manager.py status", description=HELP)
    p.add_argument("--config", help="config file to take redis.url from (default: $BOT_CONFIG or config.yaml)")
    p.add_argument("--redis-url", help="default: $BOT_REDIS__URL, else redis.url of the config file")
    args = p.parse_args(argv)
    from state.reader import StateReader

    reader = StateReader(redis_client(redis_url(args.redis_url, args.config)))
    hb = reader.heartbeat()
    print("worker:", f"up (pid {hb.pid}, {hb.bots} bots)" if hb else "DOWN (no heartbeat)")
    from state.shards import holders

    rows = holders(reader.r)
    for row in rows if len(rows) > 1 else []:  # several shards: which worker holds which bots
        who = f"worker {row.holder.worker}" if row.holder else "NO WORKER (its bots do not trade)"
        print(f"  shard {row.shard}: {who}: {', '.join(row.bots) or 'no bots'}")
    g = reader.control("global")
    print(f"global state: {g.state.value} (by {g.set_by}: {g.reason})")
    for snap in reader.snapshots().values():
        print(f"  {snap.name:24} {snap.mode:6} {snap.effective_state.value:8} equity {snap.equity:12.2f} "
              f"P&L {snap.pnl:+10.2f} trades {snap.trade_count}")
        c = snap.control
        if c.state.value == "FLATTEN":
            print(f"    ! close NOT confirmed yet (asked by {c.set_by}: {c.reason}); retried every step, "
                  f"then {(c.then.value if c.then else 'PAUSED')}")
        elif c.state.value != "ACTIVE":
            print(f"    {c.state.value} by {c.set_by}: {c.reason}")
    return 0
