"""`make run`'s part for operator reach (issue 13): the REST API (`python -m api`, 127.0.0.1:8503)
and the notifier (`python -m notify`), each a process of its own with its log in var/log/.

Their settings (tokens, webhook secrets, notification URLs, the Telegram bot) come from the
environment only; see docs/operations.md. Neither can slow the worker: they only read Redis and
post commands onto its stream. The launcher starts (and keeps running) what this returns.
"""
from __future__ import annotations

import sys
from typing import Callable

from ops.redis_server import port_in_use


def reach_processes(say: Callable[[str], None] = print) -> list[tuple[str, list[str]]]:
    """(name, command) of the API (unless its port is taken: then say how to move it) and the notifier."""
    from api.settings import ApiSettings  # only its host and port: the secrets are the API process's own

    out: list[tuple[str, list[str]]] = []
    api = ApiSettings()
    if port_in_use(api.port, api.host):
        say(f"not starting the REST API: port {api.port} is taken (set BOT_API_PORT=OTHER)")
    else:
        say(f"starting the REST API on http://{api.host}:{api.port} (docs at /docs; log: var/log/api.log)")
        out.append(("api", [sys.executable, "-m", "api"]))
    say("starting the notifier (log: var/log/notify.log)")
    out.append(("notify", [sys.executable, "-m", "notify"]))
    return out
