"""Write what changed: which bots' snapshots a trading step writes, and how a restart catches up.

A bot's snapshot (``Ledger.drain``: the snapshot with its risk view, serialised) is the costly part of
a step. The trading loop writes it only when:

* the bot produced records since its last drain (orders, fills, trades, signals, risk decisions,
  closed deals: ``Ledger.has_records``), or
* something else the dashboard or a restart reads changed (``fingerprint``: its own state record,
  breaches, position, balances, counters of orders and trades), or
* the bot trades on a venue (live, or paper on the testnet): its snapshot is written with every
  candle, as before, or
* its marks (last price, equity, unrealized P&L, high-water, daily equity) moved and the last write is
  at least ``marks_every_ms`` old (the dashboard's refresh interval): at most one such write a refresh;
  the worker's health loop writes the marks a burst left behind once a second (``behind``), so the
  page shows the last candle's marks within a refresh or two.

Between writes the bot's equity points are dropped (the equity history keeps one point a refresh).
Commands (kill switches, flatten, emergency stop), breaches, the venue loop and the fills thread drain
and write their bots at once, outside this policy: nothing an operator does waits for the throttle.

Every step also writes each bot's cursor, the last closed candle it processed (one HSET per step,
``state.keys.SNAPSHOT_CURSORS``), in the same transaction as the candles. Since any change but a mark
forces a write, between a bot's last written snapshot and a crash it only marked candles; at start
``resume`` runs those stored candles (after the snapshot's, up to the cursor) through the bot's
``on_candle`` again, which recomputes the same counters, high-water, drawdown, daily equity and
monitor state: the restart restores what the killed worker held, exactly (tests/integration/
test_snapshot_restore.py kills a worker with SIGKILL and compares with an uninterrupted run).
"""
from __future__ import annotations

from typing import Callable, Iterable, Sequence

from core.types import Candle
from engine.bot import Bot
from engine.dca_bot import DcaBot
from state.models import BotUpdate

AnyBot = Bot | DcaBot


def fingerprint(bot: AnyBot) -> tuple[object, ...]:
    """What of a bot, besides its records and marks, a change of must reach Redis at once. Its state is
    seen through its own control record (every state change of a bot passes there or through a command,
    which writes its bots itself) and its breaches."""
    pf = bot.portfolio
    b = bot.breaches
    return (bot.control, len(b), b[-1] if b else "", pf.quote, pf.realized_pnl, bot.trade_count, bot.orders_sent,
            [(s, p.quantity, p.avg_entry, p.stop_loss, p.take_profit) for s, p in pf.positions.items() if p.quantity],
            getattr(bot, "signals_total", 0), getattr(bot, "deal_seq", 0), len(getattr(bot, "deals", ())))


def restored_time(bot: AnyBot, symbol: str) -> int:
    """The last candle of ``symbol`` the bot's restored snapshot had processed."""
    if isinstance(bot, DcaBot):
        return bot.last_time.get(symbol, 0)
    return bot.last_candle_time


class SnapshotPolicy:
    """Decides, per trading step, which bots' snapshots are written (see the module docstring).
    ``enabled=False`` writes every bot's snapshot every step (the behaviour before; the benchmark's
    reference)."""

    def __init__(self, marks_every_ms: int, always: Callable[[str], bool] = lambda name: False,
                 enabled: bool = True) -> None:
        self.marks_every_ms = marks_every_ms
        self.always = always  # bots whose snapshot goes out with every candle (venue bots)
        self.enabled = enabled
        self._fp: dict[str, tuple[object, ...]] = {}
        self._marked: dict[str, tuple[int, int]] = {}  # bot -> (last candle, wall ms) of its last write
        self._cursor_sent: dict[str, int] = {}
        self._cursor_due: dict[str, int] = {}
        self.written = 0
        self.skipped = 0

    def drain(self, bots: Iterable[AnyBot], now_ms: int, force: Sequence[AnyBot] = ()) -> list[BotUpdate]:
        """The updates to write for this step: full drains of the bots that are due, nothing for the
        others (their marks dropped). ``force``: bots written whatever the policy says."""
        out: list[BotUpdate] = []
        forced = {b.name for b in force}
        for bot in bots:
            name = bot.name
            lct = bot.last_candle_time
            if self._cursor_sent.get(name) != lct:
                self._cursor_due[name] = lct
            if self.enabled and name not in forced and not self.always(name) and not bot.has_records():
                last = self._marked.get(name)
                if last is not None and last[0] == lct:
                    continue  # no candle since its last write (what other paths change, they write)
                fp = fingerprint(bot)
                if fp == self._fp.get(name) and last is not None and (
                        last[0] == lct or now_ms - last[1] < self.marks_every_ms):
                    bot.drop_marks()
                    self.skipped += 1
                    continue
                self._fp[name] = fp
            else:
                self._fp[name] = fingerprint(bot)
            self._marked[name] = (lct, now_ms)
            out.append(bot.drain(now_ms))
            self.written += 1
        return out

    def behind(self, bots: Iterable[AnyBot], now_ms: int) -> list[BotUpdate]:
        """The trailing write: full drains of the bots whose last marks were not written (the worker's
        health loop asks once a second, so a burst's last marks reach the dashboard within a second)."""
        out = []
        for bot in bots:
            last = self._marked.get(bot.name)
            if last is not None and last[0] != bot.last_candle_time:
                self._fp[bot.name] = fingerprint(bot)
                self._marked[bot.name] = (bot.last_candle_time, now_ms)
                out.append(bot.drain(now_ms))
                self.written += 1
        return out

    def take_cursors(self) -> dict[str, int]:
        """bot -> last candle processed, for the bots whose cursor moved since the last were taken (the
        writer keeps what a failed commit held and writes it with the next: state.writer)."""
        due, self._cursor_due = self._cursor_due, {}
        self._cursor_sent.update(due)
        return due

    def forget(self, name: str) -> None:
        """A bot written outside the policy or removed: its next step is judged afresh."""
        self._fp.pop(name, None)
        self._marked.pop(name, None)


def resume(bot: AnyBot, history: list[Candle], cursor: int, restored: bool) -> int:
    """Warm a bot with a series' stored ``history`` at start. For a bot restored from a snapshot, the
    candles after the snapshot's and up to its ``cursor`` (processed by the previous worker, only marked
    since its last write) go through ``on_candle`` again; the rest is history only, as before.
    Returns how many candles were run again."""
    if not restored or not history:
        bot.warm(history)
        return 0
    since = restored_time(bot, history[-1].symbol)
    if cursor <= since:
        bot.warm(history)
        return 0
    before = [c for c in history if c.open_time <= since]
    again = [c for c in history if since < c.open_time <= cursor]
    after = [c for c in history if c.open_time > cursor]
    bot.warm(before)
    for c in again:
        bot.on_candle(c)
    if after:
        bot.warm(after)
    return len(again)
