"""The worker: runs the loops, nothing else.

Threads: the trading loop (feed -> each bot's step -> the queued breaches applied -> one Redis
transaction per batch), the command reader (its own thread, so a slow market step never delays a
kill; commands in ``engine.commands``), the heartbeat, and for bots on a venue the venue loop
(``engine.supervisor``) and the fills thread. One lock keeps a bot from being traded and flattened
at the same moment. Bots are built and restored by ``engine.fleet``, their states kept by
``engine.controls``, the cross-bot risk view by ``engine.risk_env``.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import Counter
from typing import Callable

import redis

from core.clock import Clock, WallClock, utc_day
from core.types import Candle
from engine import commands
from engine.controls import TradingControls
from engine.fleet import AnyBot, Fleet, meta
from engine.golive import GoLive
from engine.account_guard import AccountGuard
from engine.health import HealthWatch
from engine.live import LiveVenue
from engine.loops import WorkerLoops
from engine.risk_env import WorkerRiskEnv
from engine.snapshot_policy import SnapshotPolicy, resume
from engine.shards import ShardRuntime, ShardSet, shard_loop
from engine.supervisor import VenueSupervisor
from market.feed import Feed
from settings import AppConfig, BotConfig
from state.events import daily_summary, worker_started, worker_stopped
from state.lease import LeaseLost
from state.shards import route
from state.models import AuditRecord, CommandResult, Heartbeat
from state.models import BotUpdate, ControlChange
from state.writer import StateWriter

log = logging.getLogger("worker")
VERSION = "0.1.0"
# (request JSON, target bot, app, result id) -> run id; ValueError when refused
BacktestLauncher = Callable[[str, str, AppConfig, str], str]


class Worker(WorkerLoops):
    def __init__(self, app: AppConfig, r: redis.Redis, feed: Feed, clock: Clock | None = None,
                 backtests: BacktestLauncher | None = None, shards: list[int] | None = None,
                 takeover: bool = True) -> None:
        self.app = app
        self.r = r
        self.feed = feed
        self.clock = clock or WallClock()
        # backtests: starts a backtest in its own process (backtest.service.launch, given by the CLI;
        # the worker does not import the backtester)
        self.backtests = backtests
        self.writer = StateWriter(r, app.worker.history_keep)
        self.lock = threading.RLock()
        self.consumer = f"{socket.gethostname()}-{os.getpid()}"
        self.started_at = self.clock.now_ms()
        self.crashed_before = 0
        self._day_marks: tuple[str, dict[str, tuple[float, int]]] = ("", {})
        self.controls = TradingControls()
        # shards (engine/shards.py): the leases this worker holds (default: every shard), and whether it
        # takes over a dead worker's shards
        self.shards = ShardSet(app, r, self.consumer, shards, takeover)
        self.lease_lost = False
        self.fleet = Fleet(app, self.writer, self.controls)
        # which bots' snapshots a trading step writes (marks at most once a dashboard refresh)
        self.snapshots = SnapshotPolicy(int(app.dashboard.refresh_s * 1000), self.fleet.on_venue)
        self.golive = GoLive(app, self.writer, self.controls)  # live bots' go-live stages and live actions' codes
        self.venue: LiveVenue | None = None
        self.supervisor: VenueSupervisor | None = None
        if any(b.mode == "live" for b in app.bots) or app.paper.venue == "testnet" or app.market.source == "exchange":
            self.venue = LiveVenue(app, r)
            self.supervisor = VenueSupervisor(self.venue, self.fleet, self.controls, self.writer, self.clock.now_ms)
        self.risk_env = WorkerRiskEnv(self.fleet, feed, self.supervisor)
        self.account = AccountGuard(app, self.venue, self.fleet, self.venue.records) if self.venue is not None else None
        self.health = HealthWatch(app, self.fleet, self.controls, self.risk_env, self.venue)
        self.last_candle_time = 0
        self._pending: list[BotUpdate] = []
        self._last_open: dict[str, int] = {}  # newest stored candle per symbol
        self._pending_controls: list[ControlChange] = []
        self._pending_audits: list[AuditRecord] = []
        self._pending_candles: list[Candle] = []
        self._rejects_seen: Counter[str] = Counter()
        m = app.market
        self._market_label = {"synthetic": f"synthetic {m.interval} ×{m.speed:g}",
                              "exchange": f"{app.exchange.venue} exchange {m.interval}"
                                          + (f" ×{m.speed:g}" if app.exchange.venue == "local" else ""),
                              }.get(m.source, f"replay {m.interval}")

    @property
    def bots(self) -> dict[str, AnyBot]:
        return self.fleet.bots

    @property
    def configs(self) -> dict[str, BotConfig]:
        return self.fleet.configs

    def effective_state(self, bot: AnyBot) -> object:
        return self.controls.effective(bot)

    # ---- start --------------------------------------------------------------------------
    def start(self) -> None:
        """Take the lease, load states and snapshots from Redis, build and warm the bots, register them.
        Raises LeaseHeld (naming the holder) when another worker trades these bots."""
        ttl = self.app.worker.heartbeat_ttl_s
        self.shards.acquire_wanted(wait_s=ttl + 1.0)  # a dead predecessor's lease expires within its TTL
        self.fence()
        self.writer.ensure_group()
        self.writer.open_events()
        self.crashed_before = self.writer.crashed_before()
        if self.crashed_before:
            log.warning("the previous worker did not stop cleanly (last seen at %d)", self.crashed_before)
        self.controls.load(self.writer)
        configured = self.fleet.configured()
        for cfg in configured:
            if self.shards.owns(cfg):  # shards: the bots of the shards this worker holds
                self.add_bot(cfg)
        now = self.clock.now_ms()
        overrides = self.fleet.risk_override_audits()
        for name, what in overrides:
            log.warning("RISK OVERRIDE for %s: %s", name, what)
        if overrides:
            self.writer.commit([], audits=[AuditRecord(time=now, who="operator (BOT_RISK_OVERRIDE)",
                                                       command="risk_override", target=name, result="applied",
                                                       detail=what) for name, what in overrides])
        self.shards.publish(configured)
        self.writer.register_bots(meta(c) for c in configured)
        # Stored candles win (they continue the market the bots already saw); the feed's own
        # warm-up history fills symbols Redis has never seen.
        warm = self.feed.warmup(self.app.market.warmup_candles)
        cursors = self.writer.load_cursors()
        fresh: list[Candle] = []
        backfill = getattr(self.feed, "backfill", None)
        for key in self.feed.symbols:
            stored = self.writer.recent_candles(key, interval=self.app.market.interval)
            history = stored or warm.get(key, [])
            if stored and backfill is not None:
                # What the venue traded while the worker was down, from its klines: the strategies get
                # every missed closed candle in order, none skipped, none twice; no order is placed on
                # them (trading resumes with the next live candle).
                missed = backfill(key, stored[-1].open_time)
                if missed:
                    log.info("%s: %d candle(s) missed while the worker was down, backfilled", key, len(missed))
                history = stored + missed
                fresh.extend(missed)
            elif not stored:
                fresh.extend(history)
            if history:
                self._last_open[key] = history[-1].open_time
            for c in history:
                self.risk_env.observe(c)
            for bot in self.fleet.by_symbol.get(key, ()):
                # the stored candles a restored bot processed after its last written snapshot run again
                resume(bot, stored, cursors.get(bot.name, 0), bot.name not in self.fleet.fresh)
                if len(history) > len(stored):
                    bot.warm(history[len(stored):])
        now = self.clock.now_ms()
        self.writer.commit([b.drain(now) for b in self.bots.values()], fresh if self.shards.primary else [])
        self._day_marks = self._marks()
        self.writer.publish(worker_started(os.getpid(), len(self.bots), VERSION))
        log.info("worker started: %d bots on %s", len(self.bots), ", ".join(self.fleet.by_symbol) or "no symbols")

    def _marks(self) -> tuple[str, dict[str, tuple[float, int]]]:
        """(UTC day on the wall clock, bot -> (realized P&L, trades)) for the daily summary."""
        marks = {n: (b.portfolio.realized_pnl, b.trade_count) for n, b in self.bots.items()}
        return utc_day(self.clock.now_ms()), marks

    def _daily_summary(self) -> None:
        """At the first commit of a new UTC day: each bot's P&L and trades of the day before."""
        day, marks = self._day_marks
        if utc_day(self.clock.now_ms()) == day:
            return  # asked at every commit: the bots' marks are gathered only when the day turned
        now_day, now_marks = self._marks()
        per_bot = {n: {"pnl": round(pnl - marks.get(n, (0.0, 0))[0], 8), "trades": count - marks.get(n, (0.0, 0))[1],
                       "equity": self.bots[n].equity()} for n, (pnl, count) in now_marks.items()}
        self._day_marks = (now_day, now_marks)
        self.writer.publish(daily_summary(day, per_bot))

    def add_bot(self, cfg: BotConfig) -> AnyBot:
        self.shards.of[cfg.name] = self.shards.shard(cfg)
        bot = self.fleet.add(cfg, self.risk_env, self.venue)
        self.golive.attach(bot, cfg)  # type: ignore[arg-type]
        if self.supervisor is not None and self.fleet.on_venue(cfg.name):
            self.supervisor.start(bot, cfg)
        return bot

    # ---- breaches -------------------------------------------------------------------------
    def settle(self, bots: list[AnyBot], now: int) -> tuple[list[ControlChange], list[AuditRecord]]:
        """Apply what the bots' steps queued (lock held): flatten where a breach asks for it, then
        tighten the bot's state (never loosen it), each with its audit record. Flattening may queue
        more (a losing close), so it runs until nothing is left."""
        changes: list[ControlChange] = []
        audits: list[AuditRecord] = []
        for bot in bots:
            while breaches := bot.take_breaches():
                for b in breaches:
                    if b.flatten:
                        bot.flatten(f"risk: {b.rule}")
                    change, audit = self.controls.breach(bot.name, b.rule, b.state, b.reason, now)
                    if change is not None:
                        changes.append(change)
                    audits.append(audit)
                    log.warning("risk %s on %s: %s -> %s", b.rule, bot.name, b.reason,
                                self.controls.get("bot", bot.name).state.value)
        return changes, audits

    def _settle_pending(self, bots: list[AnyBot], now: int) -> None:
        changes, audits = self.settle(bots, now)
        self._pending_controls += changes
        self._pending_audits += audits

    def retry_closes(self, now: int) -> list[AnyBot]:
        """Bots in FLATTEN (a close not confirmed yet): try again; once flat, they take the state the
        operator asked for, audited. Returns the bots touched (lock held)."""
        touched = []
        for name in self.controls.flattening():
            bot = self.bots.get(name)
            if bot is None:
                continue
            touched.append(bot)
            if bot.exposure:
                try:
                    bot.flatten("close retry")
                except Exception as exc:  # noqa: BLE001 - the next step tries again
                    log.warning("close of %s not done yet: %s", name, exc)
            if not bot.exposure:
                change = self.controls.settle_flatten(name, now)
                if change is not None:
                    self._pending_controls.append(change)
                    self._pending_audits.append(AuditRecord(
                        time=now, who=change.record.set_by, command="flatten", target=name, result="closed",
                        detail=f"flat; now {change.record.state.value}"))
                    log.info("bot %s closed: now %s", name, change.record.state.value)
        return touched

    # ---- the trading loop -------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        self._stop = stop
        threads = [
            threading.Thread(target=self.command_loop, args=(stop,), name="commands", daemon=True),
            threading.Thread(target=self.heartbeat_loop, args=(stop,), name="heartbeat", daemon=True),
            threading.Thread(target=self.health_loop, args=(stop,), name="health", daemon=True),
        ]
        venue_bots = [c for c in self.configs.values() if self.fleet.on_venue(c.name)]
        may_take = self.shards.takeover and len(self.shards.leases) < self.shards.count
        if may_take:
            threads.append(threading.Thread(target=shard_loop, args=(self, stop), name="shards", daemon=True))
        if self.supervisor is not None and (venue_bots or may_take):
            threads.append(threading.Thread(target=self.venue_loop, args=(stop,), name="venue", daemon=True))
            assert self.venue is not None
            try:
                if venue_bots:
                    self.venue.start_streams({c.market for c in venue_bots})
            except Exception as exc:  # noqa: BLE001 - REST polling (venue_loop) still books fills
                log.error("user-data stream not started (%s); fills come from REST polling", exc)
            threads.append(threading.Thread(target=self.fills_loop, args=(stop,), name="fills", daemon=True))
        for t in threads:
            t.start()
        while not stop.is_set():
            batch = self.feed.next_batch(stop)
            if batch is None:
                if not stop.is_set():
                    log.info("feed exhausted; the worker keeps serving commands")
                    self.write_marks()
                    stop.wait()
                break
            if batch:
                self.step(batch, defer=True)
        self.settle_writes()
        for t in threads:
            t.join(timeout=3)
        closer = getattr(self.feed, "close", None)
        if callable(closer):
            closer()
        if self.venue is not None:
            self.venue.close()
        if not self.lease_lost:
            try:
                self.writer.publish(worker_stopped(os.getpid(), "stopped cleanly", "info"))
                if self.shards.primary:
                    self.writer.clear_heartbeat(self._heartbeat())
                self.shards.release()
            except redis.RedisError:
                pass

    def step(self, batch: list[Candle], defer: bool = False) -> None:
        """Feed one batch of closed candles to the bots, apply their breaches, commit everything at once.
        ``defer`` (the trading loop): return once the commit is sent; its answer is read before the next
        write (``StateWriter.commit``), so Redis runs it while the next step is computed."""
        # A feed that starts over (a replay after a restart) re-sends what is stored: skip it.
        batch = [c for c in batch if c.open_time > self._last_open.get(c.key, -1)]
        if not batch:
            return
        started = time.perf_counter()
        with self.lock:
            for c in batch:
                self._last_open[c.key] = c.open_time
                self.risk_env.observe(c)
                self.last_candle_time = max(self.last_candle_time, c.open_time)
                for bot in self.fleet.by_symbol.get(c.key, ()):
                    try:
                        bot.on_candle(c)
                        if bot.breaches_queued:
                            self._settle_pending([bot], self.clock.now_ms())
                    except Exception:  # one bad bot must not stop the others
                        log.exception("bot %s failed on candle %s %s", bot.name, c.symbol, c.open_time)
            now = self.clock.now_ms()
            retried = self.retry_closes(now)
            self._pending.extend(self.snapshots.drain(self.bots.values(), now, force=retried))
            self._pending_candles.extend(self.shards.market_candles(batch))
            self._flush(self.snapshots.take_cursors(), defer)
        self.health.loop.add(1000 * (time.perf_counter() - started))  # the health panel's loop latency

    def _flush(self, cursors: dict[str, int] | None = None, defer: bool = False) -> None:
        rejects: dict[str, int] = {}
        new_rejections = []
        validator = getattr(self.feed, "validator", None)
        if validator is not None:
            # Count per reason since the last flush, and record each new rejected candle.
            for reason, n in validator.rejected.items():
                if n > self._rejects_seen.get(reason, 0):
                    rejects[reason] = n - self._rejects_seen.get(reason, 0)
            fresh = sum(rejects.values())
            if fresh:
                new_rejections = list(validator.recent_rejections)[-fresh:]
            self._rejects_seen = Counter(validator.rejected)
        written = self._writing(lambda: self.writer.commit(
            self._pending, self._pending_candles, rejects or None, new_rejections, self._pending_controls,
            self._pending_audits, cursors, defer=defer))
        # the writer holds them now: written, sent, or kept to be written first next time
        self._pending.clear()
        self._pending_candles.clear()
        self._pending_controls.clear()
        self._pending_audits.clear()
        if not written:
            return
        for rej in new_rejections:
            log.warning("candle rejected: %s %s: %s", rej.symbol, rej.open_time, rej.reason)
        try:
            self._daily_summary()
        except redis.RedisError as exc:
            log.error("daily summary not published: %s", exc)

    def _writing(self, write: Callable[[], None]) -> bool:
        """Run a write of the trading side (lock held); False when it failed: a moved fence stops the worker,
        anything else is logged (the writer keeps the batch and writes it first next time: nothing is lost)."""
        try:
            write()
        except LeaseLost as exc:
            self.lose_lease(str(exc))
            return False
        except redis.RedisError as exc:
            log.error("redis write failed (%s); %d records kept for the next write", exc, self.writer.kept)
            return False
        return True

    def settle_writes(self) -> None:
        """The answers of the commits the trading loop sent (``step(defer=True)``), read now: the health loop asks
        once a second, so a failed write is seen within a second while the feed is quiet."""
        with self.lock:
            self._writing(self.writer.settle)

    def write_marks(self) -> None:
        """The marks the snapshot policy held back (a burst of candles within a refresh), written now."""
        with self.lock:
            behind = self.snapshots.behind(self.bots.values(), self.clock.now_ms())
            if behind:
                self._pending.extend(behind)
                self._flush()
            else:
                self.settle_writes()

    def _commit_bots(self, bots: list[AnyBot]) -> None:
        """Settle and write what these bots did outside a candle step (lock held)."""
        now = self.clock.now_ms()
        self._settle_pending(bots, now)
        self._pending.extend(b.drain(now) for b in bots)
        self._flush()

    # ---- shards (engine/shards.py) -------------------------------------------------------------------
    def fence(self) -> None:
        """Every write from here on is fenced by the shards held now."""
        self.writer.fences = self.shards.fences()
        if self.venue is not None:
            self.venue.store.fence_of = self.shards.fence_of

    def lose_lease(self, why: str) -> None:
        """Another worker holds the lease now: stop trading at once (every bot HALTED in this process,
        every write fenced in Redis) and stop the worker."""
        if self.lease_lost:
            return
        self.lease_lost = True
        self.controls.fenced_out = True
        log.critical("LEASE LOST (%s): this worker stops trading now and exits", why)
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()

    def _heartbeat(self) -> Heartbeat:
        validator = getattr(self.feed, "validator", None)
        return Heartbeat(pid=os.getpid(), started_at=self.started_at, time=self.clock.now_ms(), bots=len(self.bots),
                         last_candle_time=self.last_candle_time,
                         candles_rejected=sum(validator.rejected.values()) if validator else 0, version=VERSION,
                         market=self._market_label, crashed_before=self.crashed_before)

    def handle_command(self, entry_id: str, fields: dict[str, str], shard: int = 0) -> CommandResult | None:
        if self.lease_lost:
            return None  # left pending: the worker holding the lease applies it
        try:
            if self.shards.count == 1:
                return commands.handle(self, entry_id, fields, self.clock.now_ms())
            return commands.handle(ShardRuntime(self, shard), entry_id, fields, self.clock.now_ms(),  # type: ignore[arg-type]
                                   route(shard, self.shards.count, fields.get("scope", "bot")))
        except LeaseLost as exc:
            self.lose_lease(str(exc))
            return None
