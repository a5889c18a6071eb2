"""Chat control on Telegram (python-telegram-bot), in the notifier process, when
``BOT_TELEGRAM_TOKEN`` is set.

Commands: /status, /balance, /trades, /pause [bot], /resume [bot], /stop (emergency stop),
/resumeall (asks for ``/resumeall confirm``: re-enabling everything deserves a second word; a kill
switch never waits for one). Only the chats in ``BOT_TELEGRAM_CHAT_IDS`` are answered; others are
logged and ignored. Every change is a command on the same stream as the dashboard's, posted with
``user`` ``telegram:<chat id>`` (so the audit says who), and the answer is the worker's result.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable

import redis
from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes, MessageHandler, filters

from state.commands import CommandName, Scope, await_result, new_command, post_command
from state.notifier_store import NotifierStatus
from state.reader import StateReader

log = logging.getLogger("notify.telegram")
RESULT_TIMEOUT_S = 10.0
MAX_TEXT = 4000  # Telegram's limit is 4096 characters


class ChatOps:
    """What each chat command does, as plain text (no Telegram here: testable on its own)."""

    def __init__(self, r: redis.Redis) -> None:
        self.r = r
        self.reader = StateReader(r)

    def status(self) -> str:
        hb = self.reader.heartbeat()
        g = self.reader.control("global")
        lines = [f"Worker: {'up' if hb else 'DOWN (no heartbeat)'}" + (f", {hb.bots} bots, market {hb.market}"
                                                                       if hb else ""),
                 f"Global state: {g.state.value}" + (f" ({g.reason})" if g.reason else "")]
        for name, s in self.reader.snapshots().items():
            lines.append(f"{name} [{s.mode}] {s.effective_state.value}: equity {s.equity:,.2f} {s.quote_asset}, "
                         f"P&L {s.pnl:+,.2f} ({s.pnl_pct:+.2f}%), {len(s.open_positions)} open")
        return "\n".join(lines)

    def balance(self) -> str:
        snaps = self.reader.snapshots()
        if not snaps:
            return "No bots have reported yet."
        lines, by_mode = [], {}
        for name, s in snaps.items():
            lines.append(f"{name} [{s.mode}]: {s.quote_balance:,.2f} {s.quote_asset} free, equity {s.equity:,.2f}")
            by_mode[s.mode] = by_mode.get(s.mode, 0.0) + s.equity
        lines.append("Total equity: " + ", ".join(f"{m} {v:,.2f}" for m, v in sorted(by_mode.items())))
        return "\n".join(lines)

    def trades(self, n: int = 10) -> str:
        trades = sorted((t for name in self.reader.bots() for t in self.reader.trades(name, n)),
                        key=lambda t: t.exit_time, reverse=True)[:n]
        if not trades:
            return "No closed trades yet."
        return "\n".join(f"{t.bot} {t.side} {t.quantity:.6g} {t.symbol}: {t.entry_price:.8g} -> {t.exit_price:.8g}, "
                         f"P&L {t.pnl:+.2f} ({t.exit_reason})" for t in trades)

    def command(self, cmd: CommandName, scope: Scope, target: str, chat_id: int) -> str:
        """Post the command as ``telegram:<chat id>`` and answer with the worker's result."""
        if scope == "bot" and target not in self.reader.bots():
            return f"No bot named {target!r}. Bots: {', '.join(self.reader.bots()) or 'none'}"
        command = new_command(cmd, scope, target, user=f"telegram:{chat_id}", reason="from Telegram")
        post_command(self.r, command)
        result = await_result(self.r, command.nonce, RESULT_TIMEOUT_S)
        if result is None:
            return (f"{command.label}: sent, but the worker has not answered within {RESULT_TIMEOUT_S:g} s. It stays "
                    "queued and is applied when the worker reads it (/status shows whether it is up).")
        return f"{command.label}: {result.status} — {result.message}"


def _target(args: list[str]) -> tuple[Scope, str]:
    return ("bot", args[0]) if args else ("global", "")


class ChatControl:
    def __init__(self, r: redis.Redis, token: str, chats: set[int], base_url: str, status: NotifierStatus) -> None:
        self.ops = ChatOps(r)
        self.chats = chats
        self.status = status
        self.app = Application.builder().token(token).base_url(base_url).build()
        allowed = filters.Chat(chat_id=sorted(chats))
        for name, fn in (("status", self._status), ("balance", self._balance), ("trades", self._trades),
                         ("pause", self._pause), ("resume", self._resume), ("stop", self._stop),
                         ("resumeall", self._resume_all), ("help", self._help), ("start", self._help)):
            self.app.add_handler(CommandHandler(name, fn, filters=allowed))
        self.app.add_handler(MessageHandler(~allowed, self._stranger))

    async def _reply(self, update: Update, fn: Callable[[], str]) -> None:
        try:
            text = await asyncio.to_thread(fn)
        except redis.RedisError as exc:
            text = f"State store unreachable: {exc}"
        if update.effective_message is not None:
            await update.effective_message.reply_text(text[:MAX_TEXT])

    @staticmethod
    def _chat(update: Update) -> int:
        return update.effective_chat.id if update.effective_chat is not None else 0

    async def _status(self, update: Update, ctx: ContextTypes.DEFAULT_TYPE) -> None:
        await self._reply(update, self.ops.status)

    async def _balance(self, update: Update, ctx: ContextTypes.DEFAULT_TYPE) -> None:
        await self._reply(update, self.ops.balance)

    async def _trades(self, update: Update, ctx: ContextTypes.DEFAULT_TYPE) -> None:
        await self._reply(update, self.ops.trades)

    async def _pause(self, update: Update, ctx: ContextTypes.DEFAULT_TYPE) -> None:
        scope, target = _target(ctx.args or [])
        await self._reply(update, lambda: self.ops.command("pause", scope, target, self._chat(update)))

    async def _resume(self, update: Update, ctx: ContextTypes.DEFAULT_TYPE) -> None:
        scope, target = _target(ctx.args or [])
        await self._reply(update, lambda: self.ops.command("resume", scope, target, self._chat(update)))

    async def _stop(self, update: Update, ctx: ContextTypes.DEFAULT_TYPE) -> None:
        await self._reply(update, lambda: self.ops.command("emergency_stop", "global", "", self._chat(update)))

    async def _resume_all(self, update: Update, ctx: ContextTypes.DEFAULT_TYPE) -> None:
        if (ctx.args or [""])[0].lower() != "confirm":
            await self._reply(update, lambda: "This returns every bot, every mode and the global state to ACTIVE: "
                                              "they may open positions at once. Send /resumeall confirm to do it.")
            return
        await self._reply(update, lambda: self.ops.command("resume_all", "global", "", self._chat(update)))

    async def _help(self, update: Update, ctx: ContextTypes.DEFAULT_TYPE) -> None:
        await self._reply(update, lambda: "/status · /balance · /trades · /pause [bot] · /resume [bot] · "
                                          "/stop (emergency stop) · /resumeall")

    async def _stranger(self, update: Update, ctx: ContextTypes.DEFAULT_TYPE) -> None:
        log.warning("telegram: ignored a message from chat %s (not in BOT_TELEGRAM_CHAT_IDS)", self._chat(update))

    def _poll_error(self, exc: Exception) -> None:
        self.status.telegram = f"error: {type(exc).__name__}"
        log.warning("telegram polling: %s", exc)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll the Bot API until ``stop``; a failing start is logged and retried, never fatal."""
        while not stop.is_set():
            try:
                async with self.app:
                    await self.app.start()
                    assert self.app.updater is not None
                    await self.app.updater.start_polling(poll_interval=0.0, timeout=5,
                                                         error_callback=self._poll_error)
                    self.status.telegram = f"on ({len(self.chats)} chat(s))"
                    log.info("telegram chat control on for %d chat(s)", len(self.chats))
                    await stop.wait()
                    await self.app.updater.stop()
                    await self.app.stop()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - unreachable API, bad token: say so, try again
                self.status.telegram = f"error: {type(exc).__name__}"
                log.error("telegram chat control not running (%s); retrying in 10 s", exc)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=10)
                except asyncio.TimeoutError:
                    pass
