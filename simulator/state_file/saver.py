"""The state file on disk: atomic writes, strict loading, and ``StateSaver``, which keeps the file up
to date while the exchange trades (capture on the loop, encode and write on a worker thread)."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator

from simulator.algo import AlgoOrder
from simulator.prices import Bar
from simulator.state_file.codec import StateFileError, _Bad, _dumps
from simulator.state_file.document import capture, dumps, render, restore

if TYPE_CHECKING:
    from aiohttp import web

    from simulator.state import SimExchange

log = logging.getLogger("simulator.state_file")

SAVE_INTERVAL_S = 0.2  # a SIGKILL loses at most this much (plus one write)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` so that ``path`` is always either the old or the new file: temp file in the
    same directory (same filesystem, so the rename is atomic), fsync, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save(ex: SimExchange, path: Path | str) -> None:
    write_atomic(Path(path), dumps(ex))


def load(ex: SimExchange, path: Path | str) -> bool:
    """Restore ``ex``'s accounts from ``path``. False if there is no file yet (``ex`` unchanged);
    ``StateFileError`` if the file cannot be read or used."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StateFileError(p, f"cannot read it ({exc.strerror or exc})") from None
    if not data.strip():
        raise StateFileError(p, "the file is empty (expected a saved exchange state)")
    try:
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise StateFileError(p, "not UTF-8 text (corrupt?)") from None
    except json.JSONDecodeError as exc:
        raise StateFileError(p, f"not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg}); "
                                "corrupt or truncated?") from None
    try:
        restore(ex, doc)
    except _Bad as exc:
        raise StateFileError(p, str(exc)) from None
    return True


class StateSaver:
    """Keeps ``path`` up to date with ``ex``: marks dirty on changes, writes every ``interval`` s.

    A save captures the state on the event loop (``capture``: copies only, ~10 ms at 5k orders) and
    encodes and writes it on a worker thread, so a big account does not stall every REST answer for
    the whole ``json.dumps`` + fsync. One write at a time (they share the ``.tmp`` file), never an
    older state over a newer one. The next save waits at least as long as the last one took: the
    worker thread shares the interpreter (GIL) with the loop, so saving a very large account takes
    at most about half of the time instead of all of it (below ~10k orders a save takes less than
    ``SAVE_INTERVAL_S`` and the spacing is unchanged)."""

    def __init__(self, ex: SimExchange, path: Path | str, interval: float = SAVE_INTERVAL_S) -> None:
        self.ex = ex
        self.path = Path(path)
        self.interval = interval
        self.dirty = False
        self.saves = 0
        self._write_lock = threading.Lock()  # one write at a time: they share the .tmp path
        self._captured = 0  # sequence number of the last capture (event loop)
        self._written = 0  # ... and of the capture on disk (under _write_lock)
        self._pending: asyncio.Future[None] | None = None  # the background write in progress
        self._trailing: dict[int, tuple[bool, Decimal]] = {}  # open trailing stop -> (activated, extreme) seen
        ex.engine.listeners.append(lambda order, trade: self.mark())
        ex.order_lists.listeners.append(lambda order_list: self.mark())
        ex.futures.listeners.append(lambda order, trade: self.mark())
        # a settlement changes wallets and the rate history; the premium samples of a bar do not
        # mark the state dirty (they are saved with the next change or on exit)
        ex.funding.listeners.append(lambda settlement: self.mark())
        ex.algo.listeners.append(self._on_algo)
        ex.change_listeners.append(self.mark)
        ex.bar_listeners.append(self._on_bar)

    def mark(self) -> None:
        self.dirty = True

    def _on_algo(self, a: AlgoOrder) -> None:
        if a.is_open and a.type == "TRAILING_STOP_MARKET":
            self._trailing[a.algo_id] = (a.activated, a.extreme)  # what this change's save will hold
        else:
            self._trailing.pop(a.algo_id, None)
        self.dirty = True

    def _on_bar(self, bar: Bar) -> None:
        # a trailing stop moves its extreme (or activates) on a bar without an event: mark dirty when
        # one did (a stop restored from the file counts once); other bar effects (fills, triggers,
        # liquidations) emit events and are marked by the listeners
        for a in self.ex.algo.orders.values():
            if a.type == "TRAILING_STOP_MARKET" and a.is_open and a.symbol == bar.symbol:
                seen = (a.activated, a.extreme)
                if self._trailing.get(a.algo_id) != seen:
                    self._trailing[a.algo_id] = seen
                    self.dirty = True

    def _capture(self) -> tuple[int, dict[str, Any]]:
        """On the event loop: clear the dirty flag and copy the state (changes after this mark again)."""
        self.dirty = False
        self._captured += 1
        return self._captured, capture(self.ex)

    def _write(self, seq: int, cap: dict[str, Any]) -> None:
        """Any thread: encode and write a capture, unless a newer one is already on disk."""
        text = _dumps(render(cap))
        with self._write_lock:
            if seq < self._written:
                return
            write_atomic(self.path, text)
            self._written = seq
            self.saves += 1

    def save_now(self) -> None:
        """Save right here, synchronously (start-up check, final save); waits for a write in progress."""
        seq, cap = self._capture()
        try:
            self._write(seq, cap)
        except BaseException:
            self.dirty = True  # try again next tick
            raise

    async def run(self) -> None:
        """Save whenever dirty, at most every ``interval`` seconds, until cancelled."""
        loop = asyncio.get_running_loop()
        wait = self.interval
        while True:
            await asyncio.sleep(wait)
            wait = self.interval
            if not self.dirty:
                continue
            started = time.monotonic()
            seq, cap = self._capture()
            self._pending = loop.run_in_executor(None, self._write, seq, cap)
            try:
                # shielded: a cancel (shutdown) must not abandon the write; context() waits for it
                await asyncio.shield(self._pending)
            except OSError:
                self.dirty = True
                log.exception("saving the exchange state to %s failed; retrying", self.path)
            wait = max(self.interval, time.monotonic() - started)

    async def context(self, app: web.Application) -> AsyncIterator[None]:
        """aiohttp cleanup context: run the saver, and save once more on shutdown (SIGTERM/SIGINT)."""
        task = asyncio.create_task(self.run())
        yield
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        if self._pending is not None:
            try:
                await self._pending  # let a write in progress finish first (save_now would block on it)
            except Exception:  # noqa: BLE001 - the final save below writes everything again
                log.exception("saving the exchange state to %s failed; saving once more", self.path)
        self.save_now()
        log.info("exchange state saved to %s", self.path)
