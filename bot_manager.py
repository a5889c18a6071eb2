#!/usr/bin/env python3
"""Worker entry point and command line: ``python bot_manager.py SUBCOMMAND ...``.

Every subcommand is a module of ``cli/`` (``bot_manager.py --help`` lists them); ``SUBCOMMAND --help``
shows its options. ``--config FILE`` before the subcommand is the same as ``BOT_CONFIG=FILE``.
"""
from __future__ import annotations

import os
import sys

import cli


def usage() -> str:
    lines = [__doc__.strip(), "", "subcommands:"]
    for name in sorted(cli.subcommands()):
        module = cli.load(name)
        lines.append(f"  {name:14} {getattr(module, 'HELP', '')}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) >= 2 and argv[0] == "--config":
        os.environ["BOT_CONFIG"] = argv[1]
        argv = argv[2:]
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    module = cli.load(argv[0])
    if module is None:
        print(f"bot_manager.py: unknown subcommand {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
