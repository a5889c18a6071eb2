"""Go-live stages in Redis (``keys.golive``): each live bot's ``GoLiveRecord`` (stage, since when, who
approved it, what configuration and venue it was approved for, every transition with its evidence),
and ``collect``, which reads the measured facts a stage change needs (risk.stages.Evidence) from what
the worker already stores: backtest results, ghost and paper bots of the same strategy and
parameters, the pre-flight, the audit (a kill switch applied), the bot's closed round trips.

The worker writes the records (in the same transaction as the command or breach that moves them);
the dashboard reads them and ``collect``s the same evidence to show the checklist.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Iterable

import redis
from pydantic import BaseModel, Field

from risk.stages import DAY_MS, Evidence, Stage
from state import backtest_store, keys
from state.events import read_audit
from state.models import BotMeta, BotSnapshot
from state.reader import StateReader

HISTORY_KEPT = 50
KILL_SWITCHES = ("flatten", "emergency_stop")
DONE = ("applied", "pending", "closed")


class Transition(BaseModel):
    time: int
    who: str
    from_stage: str
    to_stage: str
    reason: str = ""
    evidence: str = ""


class KillSwitchTest(BaseModel):
    time: int
    who: str
    target: str
    where: str


class GoLiveRecord(BaseModel):
    bot: str
    enforced: bool = True  # False: a live bot on the local exchange with golive.stages auto (shown, not applied)
    stage: Stage = Stage.UNAPPROVED
    since: int = 0  # wall ms of the last transition
    since_market: int = 0  # the bot's market time then (the days in a stage are counted from it)
    # the bot's closed-trade count then: the round trips of a stage are the trades after it, counted, not
    # compared by time (a live bot's trades carry the venue's clock, its candles the market's; on the local
    # exchange at speed the two differ). None in records from before it was kept: then by time.
    since_trades: int | None = None
    approved_by: str = ""
    fingerprint: str = ""  # of the strategy, its parameters, symbols and market the stage was earned with
    fingerprint_since: int = 0  # since when the worker runs these exact parameters (backtests after count)
    venue: str = ""
    real_money: bool = False
    venue_since: int = 0
    cap: float | None = 0.0  # the position cap in force (stage cap and configured limit together)
    configured_cap: float | None = None  # the bot's configured max_position_value (a stage cap only lowers it)
    prior_tests: list[KillSwitchTest] = Field(default_factory=list)  # kill switches tested on earlier venues
    history: list[Transition] = Field(default_factory=list)

    def moved(self, to: Stage, who: str, reason: str, evidence: str, now: int, market_now: int,
              trades_now: int | None = None) -> "GoLiveRecord":
        """A copy at stage ``to`` with the transition recorded (``trades_now``: the bot's closed trades then)."""
        t = Transition(time=now, who=who, from_stage=self.stage.value, to_stage=to.value, reason=reason,
                       evidence=evidence)
        return self.model_copy(update={"stage": to, "since": now, "since_market": market_now, "since_trades": trades_now,
                                       "approved_by": who if to.index > self.stage.index else self.approved_by,
                                       "history": [*self.history, t][-HISTORY_KEPT:]})


def fingerprint(kind: str, strategy: str | None, params: dict[str, object], symbols: Iterable[str],
                market: str) -> str:
    """What a stage is earned for: a change of any of these puts the bot back to unapproved."""
    body = json.dumps({"kind": kind, "strategy": strategy, "params": params, "symbols": sorted(symbols),
                       "market": market}, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def load(r: redis.Redis, bot: str) -> GoLiveRecord | None:
    raw = r.get(keys.golive(bot))
    return GoLiveRecord.model_validate_json(raw) if raw else None


def queue(pipe: "redis.client.Pipeline", record: GoLiveRecord) -> None:
    pipe.set(keys.golive(record.bot), record.model_dump_json())


def when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if ms else "—"


def same_strategy(a: BotMeta, b: BotMeta) -> bool:
    return (a.kind, a.strategy, a.symbol, a.market, a.params) == (b.kind, b.strategy, b.symbol, b.market, b.params)


def kill_switch_tests(r: redis.Redis, record: GoLiveRecord, paper_bots: Iterable[str]) -> list[KillSwitchTest]:
    """Kill switches that count as tested, newest first: a close applied to this bot while its venue
    was the local exchange or a testnet (this venue, or an earlier one), or to a paper bot with the
    same strategy and parameters."""
    out = list(record.prior_tests)
    if not record.real_money:
        for a in read_audit(r, bot=record.bot, results=DONE, since_ms=record.venue_since, limit=20):
            if a.command in KILL_SWITCHES:
                out.append(KillSwitchTest(time=a.time, who=a.who, target=a.target, where=record.venue or "venue"))
        for a in read_audit(r, bot="global", results=DONE, since_ms=record.venue_since, limit=20):
            if a.command == "emergency_stop":
                out.append(KillSwitchTest(time=a.time, who=a.who, target=record.bot, where=record.venue or "venue"))
    for name in paper_bots:
        for a in read_audit(r, bot=name, results=DONE, limit=20):
            if a.command in KILL_SWITCHES:
                out.append(KillSwitchTest(time=a.time, who=a.who, target=name, where="paper"))
    return sorted(out, key=lambda t: -t.time)


def collect(r: redis.Redis, record: GoLiveRecord, market_now: int) -> Evidence:
    """The measured facts about ``record.bot`` (see the module docstring); ``market_now``: the bot's
    market time (its last candle), which round trips and the week are counted in."""
    reader = StateReader(r)
    metas = reader.bots()
    me = metas.get(record.bot)
    ev = Evidence()
    for m in backtest_store.list_results(r):
        if m.get("bot") == record.bot and m.get("status") == "done" and \
                int(m.get("created_at", 0)) >= record.fingerprint_since:
            head = m.get("headline") or {}
            ev.backtest = {"id": m.get("id"), "finished": when(int(m.get("updated_at", 0))), **head}
            break
    twins = [m for m in metas.values() if me is not None and m.name != me.name and same_strategy(m, me)]
    ev.ghost_bots = [m.name for m in twins if m.mode == "ghost"]
    ev.paper_bots = [m.name for m in twins if m.mode == "paper"]
    snaps: dict[str, BotSnapshot] = reader.snapshots(ev.ghost_bots + ev.paper_bots) if twins else {}
    ghost = [snaps[n].signal_stats for n in ev.ghost_bots if n in snaps and snaps[n].signal_stats is not None]
    ev.ghost_signals = sum(s.total_signals for s in ghost if s is not None)
    closed = sum(s.closed for s in ghost if s is not None)
    if closed:
        ev.ghost_accuracy_pct = sum(s.accuracy_pct * s.closed for s in ghost if s is not None) / closed
    paper = [snaps[n] for n in ev.paper_bots if n in snaps]
    ev.paper_trades = sum(s.trade_count for s in paper)
    ev.paper_pnl = sum(s.realized_pnl for s in paper)
    if ev.paper_trades:
        ev.paper_win_rate_pct = 100.0 * sum(s.wins for s in paper) / ev.paper_trades
    pre = reader.preflight(record.bot)
    if pre is not None:
        ev.preflight_ok = bool(pre.get("ok"))
        ev.preflight_detail = str(pre.get("summary") or ("passed" if pre.get("ok") else "failed"))
    tests = kill_switch_tests(r, record, ev.paper_bots)
    if tests:
        t = tests[0]
        ev.kill_switch = {"time": t.time, "when": when(t.time), "who": t.who, "where": t.where, "target": t.target}
    if record.stage in (Stage.FIRST_TRADE, Stage.SCALING, Stage.FULL) and record.since_market:
        mine = reader.snapshots([record.bot]).get(record.bot) if record.since_trades is not None else None
        if mine is not None and record.since_trades is not None:
            n = mine.trade_count - record.since_trades
            trades = reader.trades(record.bot, n) if n > 0 else []
        else:
            trades = [t for t in reader.trades(record.bot, 2000) if t.exit_time >= record.since_market]
        ev.live_trades = len(trades)
        ev.live_wins = sum(1 for t in trades if t.pnl > 0)
        ev.live_pnl = sum(t.pnl for t in trades)
        ev.days_in_stage = max(0.0, (market_now - record.since_market) / DAY_MS)
        # the last 7 days of the stage's trading, on the trades' own clock
        last = max((t.exit_time for t in trades), default=0)
        ev.week_pnl = sum(t.pnl for t in trades if t.exit_time >= last - 7 * DAY_MS)
    return ev
