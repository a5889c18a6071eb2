"""``bot_manager.py check-config``: validate config.yaml + environment and list the bots."""
from __future__ import annotations

import argparse

from cli._common import load_or_exit

HELP = "validate the configuration and list the bots"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bot_manager.py check-config", description=HELP)
    p.add_argument("--config", help="config file (default: $BOT_CONFIG or config.yaml)")
    app = load_or_exit(p.parse_args(argv).config)
    print(f"config OK: {len(app.bots)} bots, market {app.market.source} {', '.join(app.market.symbols)}")
    for b in app.bots:
        print(f"  {b.name:24} {b.mode:6} {b.symbol:10} {b.strategy} {b.params}")
    return 0
