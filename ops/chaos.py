"""Crash rehearsal for the chaos tests (``BOT_CHAOS``, never set in normal runs): armed by
``bot_manager.py run`` on each live executor as the worker creates it. The worker kills itself with
SIGKILL right after recording an intent (``kill_before_send``), right after the venue answered an
order (``kill_after_send``; ``kill_after_send_exit``: only an exit's), or right after a market
order's fills were recorded on its intent, before the bot's books are committed (``kill_after_fill``),
exactly where a real crash would hurt most."""
from __future__ import annotations

import logging
import os
import signal

from core.types import OrderPurpose
from executors.live import LiveExecutor

log = logging.getLogger("chaos")


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def arm(ex: LiveExecutor, chaos: str | None = None) -> None:
    chaos = os.environ.get("BOT_CHAOS", "") if chaos is None else chaos
    if chaos == "kill_before_send":
        ex.before_send = lambda _rec: os.kill(os.getpid(), signal.SIGKILL)
    elif chaos in ("kill_after_send", "kill_after_send_exit"):
        place, execute = ex.client.place_market, ex.execute
        sending: list[OrderPurpose] = []

        def execute_noted(order, *args, **kw):  # type: ignore[no-untyped-def]
            sending[:] = [order.purpose]
            return execute(order, *args, **kw)

        def place_maybe_die(*args: object, **kw: object) -> object:
            vo = place(*args, **kw)  # type: ignore[arg-type]
            if chaos == "kill_after_send" or (sending and sending[0] is not OrderPurpose.ENTRY):
                _die()
            return vo

        ex.execute = execute_noted  # type: ignore[method-assign]
        ex.client.place_market = place_maybe_die  # type: ignore[method-assign]
    elif chaos == "kill_after_fill":
        execute = ex.execute

        def execute_then_die(*args, **kw):  # type: ignore[no-untyped-def]
            fills = execute(*args, **kw)
            if fills:  # the intent is FILLED with its trades; the bot has not booked them, nothing committed
                _die()
            return fills

        ex.execute = execute_then_die  # type: ignore[method-assign]
    elif chaos:
        log.warning("unknown BOT_CHAOS=%r ignored", chaos)
