"""`make run`'s part for operator reach (issue 13): the REST API (`python -m api`, 127.0.0.1:8503)
and the notifier (`python -m notify`), each a process of its own with its log in var/log/.

Their settings (tokens, webhook secrets, notification URLs, the Telegram bot) come from the
environment only; see docs/operations.md. Neither can slow the worker: they only read Redis and
post commands onto its stream.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ops.redis_server import port_in_use

ROOT = Path(__file__).resolve().parents[1]


def start_reach(procs: list[tuple[str, subprocess.Popen[bytes]]], env: dict[str, str], logs: Path) -> None:
    """Start the API (unless its port is taken: then say how to move it) and the notifier."""
    from api.settings import ApiSettings  # only its host/port: the secrets are the API process's own

    api = ApiSettings()
    if port_in_use(api.port, api.host):
        print(f"not starting the REST API: port {api.port} is taken (set BOT_API_PORT=OTHER)", file=sys.stderr)
    else:
        print(f"starting the REST API on http://{api.host}:{api.port} (docs at /docs; log: var/log/api.log)")
        procs.append(("api", subprocess.Popen([sys.executable, "-m", "api"], cwd=ROOT, env=env,
                                              stdout=open(logs / "api.log", "ab"), stderr=subprocess.STDOUT)))
    print("starting the notifier (log: var/log/notify.log)")
    procs.append(("notify", subprocess.Popen([sys.executable, "-m", "notify"], cwd=ROOT, env=env,
                                             stdout=open(logs / "notify.log", "ab"), stderr=subprocess.STDOUT)))
