"""Trading-state controls: the global, per-mode and per-bot state records, the effective state of a
bot (the most restrictive of the three), and every change to them.

The worker is the only writer of the control keys, so this in-memory copy is the level-triggered
state the risk engine reads before every order; it is loaded from Redis at start, so a paused bot
stays paused. A change returns a ``ControlChange`` that the caller commits with its audit record in
one transaction. Rules and automatic actors (risk, reconciliation, pre-flight) only ever tighten a
state (``tighten``); loosening is an operator's command.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from core.types import TradingState
from risk.states import is_more_restrictive, most_restrictive
from state.models import AuditRecord, ControlRecord
from state.models import ControlChange
from state.writer import StateWriter

MODES = ("ghost", "paper", "live")


class Controlled(Protocol):
    name: str

    @property
    def mode(self) -> object: ...


class TradingControls:
    def __init__(self) -> None:
        self.records: dict[tuple[str, str], ControlRecord] = {}
        self.fenced_out = False  # this worker lost its lease: no bot may place anything
        self.on_bot_change = lambda name, rec: None  # the fleet mirrors a bot's record onto the bot
        # called with (bot, rule, now) on every risk breach (engine.golive drops a live bot back a stage)
        self.breach_hooks: list[Callable[[str, str, int], None]] = []

    def load(self, writer: StateWriter, bots: Iterable[str] = ()) -> None:
        self.records[("global", "")] = writer.load_control("global")
        for m in MODES:
            self.records[("mode", m)] = writer.load_control("mode", m)
        for name in bots:
            self.records[("bot", name)] = writer.load_control("bot", name)

    def get(self, scope: str, target: str = "") -> ControlRecord:
        return self.records.get((scope, target)) or ControlRecord()

    def effective(self, bot: Controlled) -> TradingState:
        if self.fenced_out:
            return TradingState.HALTED
        mode = bot.mode.value if hasattr(bot.mode, "value") else str(bot.mode)
        return most_restrictive(self.get("global").state, self.get("mode", mode).state,
                                self.get("bot", bot.name).state)

    def set(self, scope: str, target: str, state: TradingState, who: str, reason: str, now: int,
            then: TradingState | None = None) -> ControlChange:
        """Set a state (an operator's command may loosen it; rules use ``tighten``). ``then``: for
        FLATTEN, the state once the bot is flat."""
        old = self.get(scope, target).state
        rec = ControlRecord(state=state, set_by=who, set_at=now, reason=reason, then=then)
        self.records[(scope, target)] = rec
        if scope == "bot":
            self.on_bot_change(target, rec)
        return ControlChange(scope, target, rec, old)

    def tighten(self, bot: str, state: TradingState, who: str, reason: str, now: int) -> ControlChange | None:
        """A rule moves a bot's own state down, never up; None when it already is as tight."""
        current = self.get("bot", bot).state
        if not is_more_restrictive(state, current):
            return None
        return self.set("bot", bot, state, who, reason, now)

    def flatten(self, bot: str, who: str, reason: str, now: int, after: TradingState = TradingState.PAUSED
                ) -> ControlChange:
        """A close asked for: FLATTEN at once (only orders that shrink exposure), then ``after`` once the
        bot is flat (``settle_flatten``). It never loosens: a HALTED bot goes back to HALTED."""
        current = self.get("bot", bot)
        if current.state is TradingState.FLATTEN and current.then is not None:
            after = most_restrictive(after, current.then)
        elif current.state is TradingState.HALTED:
            after = TradingState.HALTED
        return self.set("bot", bot, TradingState.FLATTEN, who, reason, now, then=after)

    def settle_flatten(self, bot: str, now: int) -> ControlChange | None:
        """The bot is flat: FLATTEN gives way to the state asked for (None when it is not in FLATTEN)."""
        rec = self.get("bot", bot)
        if rec.state is not TradingState.FLATTEN:
            return None
        return self.set("bot", bot, rec.then or TradingState.PAUSED, rec.set_by, rec.reason, now)

    def flattening(self) -> list[str]:
        return [t for (scope, t), rec in self.records.items() if scope == "bot" and rec.state is TradingState.FLATTEN]

    def breach(self, bot: str, rule: str, state: TradingState, reason: str, now: int
               ) -> tuple[ControlChange | None, AuditRecord]:
        """A risk rule tripped on ``bot``: its state tightened (never loosened) and the audit record."""
        change = self.tighten(bot, state, "risk", reason, now)
        for hook in self.breach_hooks:
            hook(bot, rule, now)
        applied = change.record.state if change else self.get("bot", bot).state
        audit = AuditRecord(time=now, who="risk", command=rule, target=bot, result="applied",
                            detail=f"{applied.value}: {reason}")
        return change, audit
