"""The dashboard's side of the state store: read-only views of what the worker wrote.

Nothing here writes; the dashboard's one write is state.commands.post_command().
"""
from __future__ import annotations

import json
from typing import TypeVar

import redis
from pydantic import BaseModel

from state import keys
from state.models import (
    AuditRecord,
    BotMeta,
    BotSnapshot,
    CandleRecord,
    CommandResult,
    ControlRecord,
    EquityRecord,
    FillRecord,
    Heartbeat,
    OrderRecord,
    RiskDecisionRecord,
    SignalRecord,
    TradeRecord,
)

M = TypeVar("M", bound=BaseModel)


def _s(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class StateReader:
    def __init__(self, r: redis.Redis) -> None:
        self.r = r

    def heartbeat(self) -> Heartbeat | None:
        raw = self.r.get(keys.HEARTBEAT)
        return Heartbeat.model_validate_json(raw) if raw else None

    def last_heartbeat(self) -> Heartbeat | None:
        """The last heartbeat the worker wrote, also after it died (None: never started here)."""
        raw = self.r.get(keys.LAST_HEARTBEAT)
        return Heartbeat.model_validate_json(raw) if raw else None

    def health(self) -> dict[str, object] | None:
        """The worker's last market and venue health view (engine/health.py)."""
        raw = self.r.get(keys.HEALTH)
        return json.loads(raw) if raw else None

    def bots(self) -> dict[str, BotMeta]:
        raw = self.r.hgetall(keys.BOTS)
        metas = [BotMeta.model_validate_json(v) for v in raw.values()]
        return {m.name: m for m in sorted(metas, key=lambda m: m.name)}

    def snapshots(self, names: list[str] | None = None) -> dict[str, BotSnapshot]:
        names = list(self.bots()) if names is None else names
        if not names:
            return {}
        raws = self.r.mget([keys.snapshot(n) for n in names])
        return {n: BotSnapshot.model_validate_json(raw) for n, raw in zip(names, raws) if raw}

    def bot_controls(self) -> dict[str, ControlRecord]:
        """Every bot's control record (state, who, when, what after a close): one pipelined HGETALL a
        bot, without their snapshots (what a once-a-second check of the trading states needs)."""
        names = [_s(n) for n in self.r.hkeys(keys.BOTS)]
        pipe = self.r.pipeline(transaction=False)
        for n in names:
            pipe.hgetall(keys.control("bot", n))
        return {n: ControlRecord.model_validate({_s(k): _s(v) for k, v in raw.items()}) if raw else ControlRecord()
                for n, raw in zip(names, pipe.execute())}

    def control(self, scope: str, target: str = "") -> ControlRecord:
        raw = self.r.hgetall(keys.control(scope, target))
        return ControlRecord.model_validate({_s(k): _s(v) for k, v in raw.items()}) if raw else ControlRecord()

    def _stream(self, key: str, model: type[M], n: int) -> list[M]:
        """Newest first."""
        return [model.model_validate_json(fields[b"data"] if b"data" in fields else fields["data"])
                for _id, fields in self.r.xrevrange(key, count=n)]

    def trades(self, bot: str, n: int = 200) -> list[TradeRecord]:
        return self._stream(keys.trades(bot), TradeRecord, n)

    def signals(self, bot: str, n: int = 200) -> list[SignalRecord]:
        return self._stream(keys.signals(bot), SignalRecord, n)

    def orders(self, bot: str, n: int = 200) -> list[OrderRecord]:
        return self._stream(keys.orders(bot), OrderRecord, n)

    def fills(self, bot: str, n: int = 200) -> list[FillRecord]:
        return self._stream(keys.fills(bot), FillRecord, n)

    def equity(self, bot: str, n: int = 2000) -> list[EquityRecord]:
        return self._stream(keys.equity(bot), EquityRecord, n)

    def decisions(self, bot: str, n: int = 50) -> list[RiskDecisionRecord]:
        """Every risk decision, allowed and denied, newest first."""
        return self._stream(keys.risk_decisions(bot), RiskDecisionRecord, n)

    def denials(self, bot: str, n: int = 20) -> list[RiskDecisionRecord]:
        return [d for d in self.decisions(bot, n * 10) if not d.allowed][:n]

    def deals(self, bot: str, n: int = 100) -> list[dict[str, object]]:
        """Closed DCA deals, newest first (plain dicts: engine.deal.Deal.dump())."""
        import json

        return [json.loads(f[b"data"] if b"data" in f else f["data"]) for _, f in self.r.xrevrange(keys.deals(bot),
                                                                                                   count=n)]

    def dynamic_bot(self, bot: str) -> dict[str, object] | None:
        """The stored config of a bot created on the dashboard (None for config bots)."""
        import json

        raw = self.r.hget(keys.DYNAMIC_BOTS, bot)
        return json.loads(raw) if raw else None

    def preflight(self, bot: str) -> dict[str, object] | None:
        """A live bot's last pre-flight report (engine.live writes it)."""
        import json

        raw = self.r.get(keys.preflight(bot))
        return json.loads(raw) if raw else None

    def venue_view(self, bot: str) -> dict[str, object] | None:
        """What the venue holds for a live bot, and the last reconciliation."""
        import json

        raw = self.r.get(keys.venue_view(bot))
        return json.loads(raw) if raw else None

    def audit(self, n: int = 50) -> list[AuditRecord]:
        return self._stream(keys.AUDIT, AuditRecord, n)

    def candles(self, symbol: str, n: int = 300) -> list[CandleRecord]:
        return [CandleRecord.model_validate_json(row) for row in self.r.lrange(keys.candles(symbol), -n, -1)]

    def command_result(self, nonce: str) -> CommandResult | None:
        raw = self.r.get(keys.command_result(nonce))
        return CommandResult.model_validate_json(raw) if raw else None

    def candle_rejects(self) -> dict[str, int]:
        return {_s(k): int(v) for k, v in self.r.hgetall(keys.CANDLE_REJECTS).items()}
