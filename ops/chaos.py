"""Crash rehearsal for the chaos tests (``BOT_CHAOS``, never set in normal runs): armed by
``bot_manager.py run`` on each live executor as the worker creates it. The worker kills itself with
SIGKILL right after recording an intent (``kill_before_send``) or right after the venue answered an
order (``kill_after_send``), exactly where a real crash would hurt most."""
from __future__ import annotations

import logging
import os
import signal

from executors.live import LiveExecutor

log = logging.getLogger("chaos")


def arm(ex: LiveExecutor, chaos: str | None = None) -> None:
    chaos = os.environ.get("BOT_CHAOS", "") if chaos is None else chaos
    if chaos == "kill_before_send":
        ex.before_send = lambda _rec: os.kill(os.getpid(), signal.SIGKILL)
    elif chaos == "kill_after_send":
        place = ex.client.place_market

        def place_then_die(*args: object, **kw: object) -> object:
            place(*args, **kw)  # type: ignore[arg-type]
            os.kill(os.getpid(), signal.SIGKILL)
            raise AssertionError("unreachable")

        ex.client.place_market = place_then_die  # type: ignore[method-assign]
    elif chaos:
        log.warning("unknown BOT_CHAOS=%r ignored", chaos)
