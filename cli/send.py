"""``bot_manager.py send CMD``: post an operator command (kill switches included) onto the command
stream, as the dashboard does. Needs only the Redis URL: a kill switch must be sendable while
config.yaml does not validate (a live override missing, a typo)."""
from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from cli._common import redis_client, redis_url
from core.validation import format_errors

HELP = "post a command to the worker (pause, flatten, resume, emergency_stop, ...)"
COMMANDS = ["pause", "flatten", "resume", "reduce_only", "halt", "set_limit", "adopt", "ignore_drift",
            "emergency_stop", "resume_all"]


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bot_manager.py send", description=HELP)
    p.add_argument("cmd", choices=COMMANDS)
    p.add_argument("--bot")
    p.add_argument("--mode", choices=["ghost", "paper", "live"])
    p.add_argument("--user", default="cli")
    p.add_argument("--reason", default="")
    p.add_argument("--limit", default="", help="set_limit: the limit to lower, e.g. max_position_pct")
    p.add_argument("--value", default="", help="set_limit: its new, lower value")
    p.add_argument("--otp", default="", help="a live action's TOTP code (with --user cli:NAME, a live-operator)")
    p.add_argument("--config", help="config file to take redis.url from (default: $BOT_CONFIG or config.yaml)")
    p.add_argument("--redis-url", help="default: $BOT_REDIS__URL, else redis.url of the config file")
    args = p.parse_args(argv)
    from state.commands import new_command, post_command

    if args.cmd in ("emergency_stop", "resume_all"):
        scope, target = "global", ""
    elif args.bot:
        scope, target = "bot", args.bot
    elif args.mode:
        scope, target = "mode", args.mode
    else:
        scope, target = "global", ""
    try:  # the worker's own validation, before anything is posted
        command = new_command(args.cmd, scope, target, user=args.user, reason=args.reason, limit=args.limit,
                              value=args.value, otp=args.otp)
    except ValidationError as exc:
        print(f"bot_manager.py send: not posted: {format_errors(exc)}", file=sys.stderr)
        return 2
    entry = post_command(redis_client(redis_url(args.redis_url, args.config)), command)
    print(f"posted {command.label} as {entry} (nonce {command.nonce})")
    return 0
