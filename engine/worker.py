"""The worker: runs every configured bot on the market feed, applies operator commands,
keeps a heartbeat, and writes all state to Redis through state.writer.

Threads: the trading loop (feed -> bots -> one Redis transaction per batch), the command
reader (its own thread, so a slow market step never delays a kill) and the heartbeat.
A lock keeps a bot from being traded and flattened at the same moment.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections import Counter, deque
from dataclasses import dataclass, field

from typing import Callable

import redis
from pydantic import ValidationError

from core.validation import format_errors

from core.clock import Clock, WallClock
from core.types import Candle, Mode, TradingState
from engine.assembly import build_bot
from engine.bot import Bot
from engine.dca_bot import DcaBot
from engine.live import LiveRefused, LiveVenue
from exchange.rules import fmt
from market.feed import Feed
from risk.engine import MarketStatus, PortfolioView
from risk.states import is_more_restrictive, most_restrictive
from settings import AppConfig, BotConfig
from state.commands import Command, CommandRejected, parse_command
from state.models import AuditRecord, BotMeta, CommandResult, ControlRecord, Heartbeat
from state.writer import BotUpdate, ControlChange, StateWriter

log = logging.getLogger("worker")
# (request JSON, target bot, app, result id) -> run id; ValueError when refused
BacktestLauncher = Callable[[str, str, AppConfig, str], str]
VERSION = "0.1.0"


class UnknownTarget(ValueError):
    pass


@dataclass(slots=True)
class Outcome:
    controls: list[ControlChange]
    bots: list[Bot]
    message: str
    limit_changes: list[tuple[str, str, object]] = field(default_factory=list)
    dynamic_bots: list[tuple[str, str]] = field(default_factory=list)
    metas: list[BotMeta] = field(default_factory=list)


class WorkerRiskEnv:
    """What one bot's risk check needs to know about the others and about the market."""

    def __init__(self, worker: "Worker", window: int = 500) -> None:
        self.w = worker
        self.closes: dict[str, deque[float]] = {}
        self.close_time: dict[str, int] = {}
        self.window = window
        self._corr: dict[tuple[str, str], tuple[int, float | None]] = {}

    def observe(self, c: Candle) -> None:
        self.closes.setdefault(c.symbol, deque(maxlen=self.window + 1)).append(c.close)
        self.close_time[c.symbol] = c.close_time + 1

    def portfolio_view(self, bot: "Bot") -> PortfolioView:
        value, count, symbols = 0.0, 0, []
        for other in self.w.bots.values():
            if other.mode is not bot.mode or other.mode is Mode.GHOST:
                continue
            for sym, pos in other.portfolio.positions.items():
                if pos.is_open:
                    price = other.last_price.get(sym, 0.0) if isinstance(other.last_price, dict) else other.last_price
                    value += abs(pos.quantity) * (price or pos.avg_entry)
                    count += 1
                    symbols.append(sym)
        return PortfolioView(value, count, tuple(symbols))

    def market_status(self, symbol: str, now_ms: int, bot: "Bot | None" = None) -> MarketStatus:
        feed = self.w.feed
        price_time, stream_up = self.close_time.get(symbol), not getattr(feed, "stale", False)
        venue, cfg = self.w.venue, self.w.configs.get(bot.name) if bot is not None else None
        if venue is None or cfg is None or not self.w._on_venue(cfg):
            return MarketStatus(price_time_ms=price_time, stream_up=stream_up)
        # A venue bot's order depends on the venue's health: spread and recent API errors, asked now;
        # an unexplained reconciliation drift counts as over any drift limit.
        client = venue.client(cfg.market)
        try:
            spread = client.spread_bps(symbol)
        except Exception:
            spread = None
        drift = 100.0 if bot is not None and bot.name in self.w._drift_seen else 0.0
        return MarketStatus(price_time, spread, client.errors_last_minute(), stream_up, drift)

    def margin(self, bot: "Bot") -> tuple[float, float]:
        """Futures venue bots: (margin in use, margin balance); (0, 0) elsewhere (no margin rule)."""
        venue, cfg = self.w.venue, self.w.configs.get(bot.name)
        if venue is None or cfg is None or cfg.market != "futures" or not self.w._on_venue(cfg):
            return 0.0, 0.0
        return venue.client("futures").margin()

    def correlation(self, a: str, b: str) -> float | None:
        """Pearson correlation of the two symbols' 1-candle log returns over the recent window."""
        key = (min(a, b), max(a, b))
        stamp = self.close_time.get(a, 0) + self.close_time.get(b, 0)
        cached = self._corr.get(key)
        if cached and cached[0] == stamp:
            return cached[1]
        xa, xb = self.closes.get(a), self.closes.get(b)
        rho = None
        if xa and xb and min(len(xa), len(xb)) > 30:
            n = min(len(xa), len(xb))
            import numpy as np

            ra = np.diff(np.log(np.asarray(list(xa)[-n:])))
            rb = np.diff(np.log(np.asarray(list(xb)[-n:])))
            if ra.std() > 0 and rb.std() > 0:
                rho = float(np.corrcoef(ra, rb)[0, 1])
        self._corr[key] = (stamp, rho)
        return rho


class Worker:
    def __init__(self, app: AppConfig, r: redis.Redis, feed: Feed, clock: Clock | None = None,
                 backtests: BacktestLauncher | None = None) -> None:
        # backtests: starts a backtest in its own process (backtest.service.start_in_process, given by
        # the CLI; the worker does not import the backtester)
        self.backtests = backtests
        self.app = app
        self.r = r
        self.feed = feed
        self.clock = clock or WallClock()
        self.writer = StateWriter(r, app.worker.history_keep)
        self.lock = threading.RLock()
        self.consumer = f"{socket.gethostname()}-{os.getpid()}"
        self.started_at = self.clock.now_ms()
        self.controls: dict[tuple[str, str], ControlRecord] = {}
        self.bots: dict[str, Bot] = {}
        self.configs: dict[str, BotConfig] = {}
        self.risk_env = WorkerRiskEnv(self)
        self.venue: LiveVenue | None = None
        if any(b.mode == "live" for b in app.bots) or app.paper.venue == "testnet" or app.market.source == "exchange":
            self.venue = LiveVenue(app, r)
        self._drift_seen: dict[str, str] = {}
        self.by_symbol: dict[str, list[Bot]] = {}
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

    # ---- trading states -----------------------------------------------------------------
    def control(self, scope: str, target: str = "") -> ControlRecord:
        return self.controls.get((scope, target)) or ControlRecord()

    def effective_state(self, bot: Bot) -> TradingState:
        return most_restrictive(
            self.control("global").state, self.control("mode", bot.mode.value).state,
            self.control("bot", bot.name).state,
        )

    def _set(self, scope: str, target: str, state: TradingState, who: str, reason: str, now: int) -> ControlChange:
        rec = ControlRecord(state=state, set_by=who, set_at=now, reason=reason)
        self.controls[(scope, target)] = rec
        if scope == "bot":
            self.bots[target].control = rec.to_core()
        return ControlChange(scope, target, rec)

    def on_disable(self, bot: "Bot | DcaBot", reason: str) -> None:
        """A DCA deal hit its stop with stop-and-disable: the bot is paused until an operator resumes it."""
        self.on_breach(bot, "stop_and_disable", TradingState.PAUSED, reason, flatten=False)  # type: ignore[arg-type]

    def on_breach(self, bot: Bot, rule: str, state: TradingState, reason: str, flatten: bool) -> None:
        """The risk monitor tripped: flatten if asked, then tighten the bot's state (never loosen).

        Runs inside the trading loop (lock held); the change and its audit record are committed
        with the batch."""
        now = self.clock.now_ms()
        if flatten:
            bot.flatten(f"risk: {rule}")
        current = self.control("bot", bot.name).state
        applied = state if is_more_restrictive(state, current) else current
        if applied is not current:
            self._pending_controls.append(self._set("bot", bot.name, applied, "risk", reason, now))
        self._pending_audits.append(AuditRecord(time=now, who="risk", command=rule, target=bot.name,
                                                result="applied", detail=f"{applied.value}: {reason}"))
        log.warning("risk %s on %s: %s -> %s", rule, bot.name, reason, applied.value)

    # ---- start --------------------------------------------------------------------------
    def start(self) -> None:
        """Load states and snapshots from Redis, build and warm the bots, register them."""
        self.writer.ensure_group()
        self.controls[("global", "")] = self.writer.load_control("global")
        for m in ("ghost", "paper", "live"):
            self.controls[("mode", m)] = self.writer.load_control("mode", m)
        configs = [c for c in self.app.bots if c.enabled]
        names = {c.name for c in configs}
        for name, raw in self.writer.dynamic_bots().items():
            if name in names:
                log.warning("dashboard-made bot %s is shadowed by a config bot of the same name", name)
                continue
            try:
                configs.append(self._dynamic_config(name, raw))
            except ValueError as exc:  # the app config changed under it: say so, keep running
                log.error("dashboard-made bot %s no longer valid, not started: %s", name, exc)
        override = os.environ.get("BOT_RISK_OVERRIDE", "")
        for cfg in configs:
            self._add_bot(cfg)
            if override and cfg.mode == "live":
                from risk.limits import CeilingViolation, resolve

                try:
                    resolve(Mode.LIVE, cfg.risk.overrides())
                except CeilingViolation as exc:  # a raised live ceiling: allowed by the override, audited
                    now = self.clock.now_ms()
                    self.writer.commit([], audits=[AuditRecord(
                        time=now, who="operator (BOT_RISK_OVERRIDE)", command="risk_override", target=cfg.name,
                        result="applied", detail=f"{override}: {exc}")])
                    log.warning("RISK OVERRIDE for %s: %s (%s)", cfg.name, override, exc)
        self.writer.register_bots(self._meta(c) for c in self.configs.values())
        # Stored candles win (they continue the market the bots already saw); the feed's own
        # warm-up history fills symbols Redis has never seen.
        warm = self.feed.warmup(self.app.market.warmup_candles)
        fresh: list[Candle] = []
        for symbol in self.feed.symbols:
            stored = self.writer.recent_candles(symbol)
            history = stored or warm.get(symbol, [])
            if history:
                self._last_open[symbol] = history[-1].open_time
            if not stored:
                fresh.extend(history)
            for c in history:
                self.risk_env.observe(c)
            for bot in self.by_symbol.get(symbol, ()):
                bot.warm(history)
        now = self.clock.now_ms()
        self.writer.commit([b.drain(now) for b in self.bots.values()], fresh)
        log.info("worker started: %d bots on %s", len(self.bots), ", ".join(self.by_symbol) or "no symbols")

    def _dynamic_config(self, name: str, raw: str) -> BotConfig:
        """Validate a dashboard-made bot against this app's config (symbols, modes, ceilings)."""
        try:
            cfg = BotConfig.model_validate({**json.loads(raw), "name": name})
        except (ValidationError, json.JSONDecodeError) as exc:
            raise ValueError(format_errors(exc) if isinstance(exc, ValidationError) else str(exc)) from None
        if cfg.kind != "dca":
            raise ValueError("only DCA bots can be created from the dashboard")
        if cfg.mode == "live":
            raise ValueError("live bots are created in config.yaml only (two-key switch)")
        missing = [s for s in cfg.symbols if s not in self.app.market.symbols]
        if missing:
            raise ValueError(f"symbols {missing} are not in market.symbols {self.app.market.symbols}")
        return cfg

    def _add_bot(self, cfg: BotConfig) -> "Bot | DcaBot":
        bot = build_bot(cfg, self.app, self.effective_state, self.on_disable, self.on_breach, self.risk_env,
                        self.venue)
        rec = self.writer.load_control("bot", cfg.name)
        self.controls[("bot", cfg.name)] = rec
        bot.control = rec.to_core()
        lowered = self.writer.load_limits(cfg.name)
        if lowered:
            try:
                bot.tighten_limits(lowered)
            except ValueError as exc:  # the config is now tighter than what was lowered: keep the config
                log.info("bot %s: run-time limits not re-applied (%s)", cfg.name, exc)
        snap = self.writer.load_snapshot(cfg.name)
        if snap is not None and snap.mode == cfg.mode and snap.symbol == cfg.symbol:
            bot.restore(snap)
            log.info("bot %s restored: equity %.2f, %d trades, state %s", cfg.name, snap.equity,
                     snap.trade_count, rec.state.value)
        self.bots[cfg.name] = bot
        self.configs[cfg.name] = cfg
        for sym in cfg.symbols:
            self.by_symbol.setdefault(sym, []).append(bot)
        if self._on_venue(cfg):
            venue = self.venue
            assert venue is not None
            bot.on_dust = lambda sym, dust, n=cfg.name, m=cfg.market: venue.add_dust(n, m, sym, dust)
            self._start_live(bot, cfg)
        return bot

    def _on_venue(self, cfg: BotConfig) -> bool:
        return cfg.mode == "live" or (cfg.mode == "paper" and self.app.paper.venue == "testnet")

    def _start_live(self, bot: "Bot | DcaBot", cfg: BotConfig) -> None:
        """Before a venue bot trades: resolve its open intents, pre-flight, reconcile. A failure halts
        it with the reason (shown on the dashboard); it never starts half-checked."""
        assert self.venue is not None
        now = self.clock.now_ms()
        try:
            self.venue.check_switch(cfg)
            for rec in self.venue.recover(cfg.name, cfg.market):
                if rec.fills:
                    bot.book_fills(rec.fills, f"recovered {rec.intent.client_order_id}")
                    log.warning("bot %s: recovered %d fill(s) of %s", cfg.name, len(rec.fills),
                                rec.intent.client_order_id)
            lim = bot.risk.limits
            if cfg.market == "futures":
                self.venue.set_leverage(bot, int(cfg.dca.leverage if cfg.dca is not None else cfg.risk.max_leverage))
            if cfg.dca is not None:  # a deal's whole ladder, for each deal that may run at once
                from strategy.dca import ladder

                need = float(ladder(cfg.dca.params(), 100).max_funds) * cfg.dca.max_active_deals
                need /= max(float(cfg.dca.leverage), 1.0)
            else:
                need = lim.max_position_value or (cfg.sizing.value if cfg.sizing.kind == "fixed_quote" else 0.0)
            report = self.venue.preflight(cfg, need)
            if not report.ok:
                raise LiveRefused("pre-flight failed: " + "; ".join(f"{c.name}: {c.reason}" for c in report.failed))
            if cfg.dca is not None:
                self._check_dca_sizes(cfg)
            drift = self.venue.reconcile(bot, cfg.market)
            if not drift.ok:
                self._drift(bot, drift.summary(), now)
        except LiveRefused as exc:
            self._refuse(bot, str(exc), now)
        except Exception as exc:  # venue unreachable, bad answer: refuse, say why, keep the worker up
            self._refuse(bot, f"venue error: {exc}", now)

    def _check_dca_sizes(self, cfg: BotConfig) -> None:
        """A ladder whose orders the venue's filters would refuse (lot step, minimum notional) must
        not start: say which order and why, instead of deals that silently never open."""
        from strategy.dca import ladder

        assert self.venue is not None and cfg.dca is not None
        client = self.venue.client(cfg.market)
        entry = "BUY" if cfg.dca.side == "long" else "SELL"
        for sym in cfg.symbols:
            price = client.price(sym)
            for lv in ladder(cfg.dca.params(), price).levels:
                prep = (client.prepare_market(sym, entry, lv.base_qty, lv.price) if lv.name == "BO"
                        else client.prepare_limit(sym, entry, lv.base_qty, lv.price))
                if prep.problems:
                    raise LiveRefused(f"{sym} {lv.name} of {float(lv.quote_size):g} {client.rules(sym).quote_asset} at "
                                      f"{fmt(lv.price)}: {'; '.join(prep.problems)} (venue filters; raise the "
                                      "order sizes)")

    def _refuse(self, bot: "Bot | DcaBot", why: str, now: int) -> None:
        ch = self._set("bot", bot.name, TradingState.HALTED, "preflight", why, now)
        self.writer.commit([], controls=[ch], audits=[AuditRecord(time=now, who="preflight", command="start",
                                                                  target=bot.name, result="refused", detail=why)])
        log.error("live bot %s refused: %s", bot.name, why)

    def _drift(self, bot: "Bot | DcaBot", summary: str, now: int) -> None:
        """Unexplained drift pauses the bot (once per distinct drift) and is audited."""
        if self._drift_seen.get(bot.name) == summary:
            return
        self._drift_seen[bot.name] = summary
        reason = f"reconciliation drift: {summary}"
        ch = self._set("bot", bot.name, most_restrictive(TradingState.PAUSED, self.control("bot", bot.name).state),
                       "reconcile", reason, now)
        audit = AuditRecord(time=now, who="reconcile", command="drift", target=bot.name, result="paused",
                            detail=summary)
        self.writer.commit([bot.drain(now)], controls=[ch], audits=[audit])
        log.warning("bot %s paused: %s", bot.name, reason)

    def _guard_liquidation(self, bot: Bot) -> None:
        """Futures: how far the venue's mark has gone toward the venue's liquidation price; the monitor
        alerts (REDUCE_ONLY) at 80% and closes the position at 90%, before the venue liquidates it."""
        assert self.venue is not None and bot.monitor is not None
        pos = self.venue.futures_position(bot)
        if pos is None or not pos.liquidation_price:
            bot.venue_margin = (None, None)
            return
        entry, mark, liq = float(pos.entry_price), float(pos.mark_price), float(pos.liquidation_price)
        used, balance = self.venue.client("futures").margin()
        bot.venue_margin = (100 * used / balance if balance else None,
                            100 * (entry - mark) / (entry - liq) if entry != liq else None)
        breaches = bot.monitor.check_liquidation(entry, mark, liq)
        if breaches:
            bot._breach(breaches)
            self.writer.commit([bot.drain(self.clock.now_ms())], controls=self._pending_controls,
                               audits=self._pending_audits)
            self._pending_controls, self._pending_audits = [], []

    def venue_loop(self, stop: threading.Event) -> None:
        """Every exchange.reconcile_every_s: resolve stale intents and reconcile each venue bot."""
        every = self.app.exchange.reconcile_every_s
        while not stop.wait(every):
            for name, cfg in list(self.configs.items()):
                bot = self.bots.get(name)
                if not self._on_venue(cfg) or self.venue is None or bot is None:
                    continue
                try:
                    with self.lock:
                        for rec in self.venue.recover(name, cfg.market, min_age_ms=30_000):
                            if rec.fills:
                                bot.book_fills(rec.fills, f"recovered {rec.intent.client_order_id}")
                        if isinstance(bot, DcaBot):
                            # REST safety net under the user-data stream: fills it may have missed.
                            self.venue.book(name, cfg.market).poll()
                            self._sync_fills()
                        if cfg.market == "futures" and isinstance(bot, Bot) and bot.monitor is not None:
                            self._guard_liquidation(bot)
                        rep = self.venue.reconcile(bot, cfg.market)
                        now = self.clock.now_ms()
                        if rep.ok:
                            self._drift_seen.pop(name, None)
                        else:
                            self._drift(bot, rep.summary(), now)
                except Exception as exc:
                    log.error("reconcile %s: %s", name, exc)

    @staticmethod
    def _meta(c: BotConfig) -> BotMeta:
        return BotMeta(name=c.name, mode=c.mode, symbol=c.symbol, strategy=c.strategy or "dca",
                       params=c.dca.model_dump() if c.dca else c.params, kind=c.kind, symbols=c.symbols,
                       market=c.market, sizing=f"{c.sizing.kind} {c.sizing.value:g}")

    def _backtest(self, cmd: Command, now: int) -> Outcome:
        """Start a backtest in its own process (never blocks trading); the result lands in Redis."""
        if cmd.target not in self.configs:
            raise UnknownTarget(f"target: no bot named {cmd.target!r}")
        if self.backtests is None:
            raise UnknownTarget("backtests are not available in this worker")
        try:
            ident = self.backtests(cmd.payload or "{}", cmd.target, self.app, cmd.nonce)
        except ValueError as exc:  # a bad request, or too many running: say so, nothing started
            raise UnknownTarget(str(exc)) from None
        return Outcome([], [], f"backtest {ident} of {cmd.target} started in its own process")

    def _upsert_dca(self, cmd: Command, now: int) -> Outcome:
        cfg = self._dynamic_config(cmd.target, cmd.payload)
        existing = self.bots.get(cmd.target)
        if existing is not None:
            old = self.configs[cmd.target]
            if not isinstance(existing, DcaBot) or cmd.target not in self.writer.dynamic_bots():
                raise UnknownTarget(f"target: {cmd.target!r} is defined in config.yaml; edit it there")
            if (old.mode, old.symbols) != (cfg.mode, cfg.symbols):
                raise UnknownTarget("mode and pairs of an existing DCA bot cannot change; create a new bot")
            assert cfg.dca is not None
            existing.settings = cfg.dca  # running deals keep their snapshot; new deals use this
            self.configs[cmd.target] = cfg
            msg = f"DCA bot {cmd.target} updated: new settings apply to new deals"
            bot = existing
        else:
            bot = self._add_bot(cfg)
            history = self.writer.recent_candles(cfg.symbol)
            bot.warm(history)
            msg = f"DCA bot {cmd.target} created ({cfg.mode}, {', '.join(cfg.symbols)})"
        return Outcome([], [bot], msg, dynamic_bots=[(cmd.target, cmd.payload)], metas=[self._meta(cfg)])

    # ---- trading loop -------------------------------------------------------------------
    def step(self, batch: list[Candle]) -> None:
        """Feed one batch of closed candles to the bots and commit everything at once."""
        # A feed that starts over (a replay after a restart) re-sends what is stored: skip it.
        batch = [c for c in batch if c.open_time > self._last_open.get(c.symbol, -1)]
        if not batch:
            return
        with self.lock:
            for c in batch:
                self._last_open[c.symbol] = c.open_time
                self.risk_env.observe(c)
                self.last_candle_time = max(self.last_candle_time, c.open_time)
                for bot in self.by_symbol.get(c.symbol, ()):
                    try:
                        bot.on_candle(c)
                    except Exception:  # one bad bot must not stop the others
                        log.exception("bot %s failed on candle %s %s", bot.name, c.symbol, c.open_time)
            now = self.clock.now_ms()
            self._pending.extend(b.drain(now) for b in self.bots.values())
            self._pending_candles.extend(batch)
            self._flush()

    def _flush(self) -> None:
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
        try:
            self.writer.commit(self._pending, self._pending_candles, rejects or None, new_rejections,
                               self._pending_controls, self._pending_audits)
        except redis.RedisError as exc:  # keep the batch and retry on the next step: nothing is lost
            log.error("redis write failed (%s); %d updates kept for retry", exc, len(self._pending))
            return
        for rej in new_rejections:
            log.warning("candle rejected: %s %s: %s", rej.symbol, rej.open_time, rej.reason)
        self._pending.clear()
        self._pending_candles.clear()
        self._pending_controls.clear()
        self._pending_audits.clear()

    def fills_loop(self, stop: threading.Event) -> None:
        """Resting orders that completed on the venue (user-data stream or poll) are booked at once,
        not at the next candle: the next safety order and the new take-profit go out in milliseconds."""
        assert self.venue is not None
        while not stop.is_set():
            if not self.venue.fills_ready.wait(0.5):
                continue
            self.venue.fills_ready.clear()
            try:
                with self.lock:
                    self._sync_fills()
            except Exception:  # noqa: BLE001 - the next wake-up or poll tries again
                log.exception("booking venue fills failed")

    def _sync_fills(self) -> None:
        now = self.clock.now_ms()
        updates = [b.drain(now) for b in self.bots.values() if isinstance(b, DcaBot) and b.sync_venue()]
        if updates:
            self._pending.extend(updates)
            self._flush()

    def run(self, stop: threading.Event) -> None:
        threads = [
            threading.Thread(target=self.command_loop, args=(stop,), name="commands", daemon=True),
            threading.Thread(target=self.heartbeat_loop, args=(stop,), name="heartbeat", daemon=True),
        ]
        if self.venue is not None and any(self._on_venue(c) for c in self.configs.values()):
            threads.append(threading.Thread(target=self.venue_loop, args=(stop,), name="venue", daemon=True))
        markets = {c.market for c in self.configs.values() if self._on_venue(c)}
        if self.venue is not None and markets:
            try:
                self.venue.start_streams(markets)
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
                    stop.wait()
                break
            if batch:
                self.step(batch)
        for t in threads:
            t.join(timeout=3)
        closer = getattr(self.feed, "close", None)
        if callable(closer):
            closer()
        if self.venue is not None:
            self.venue.close()
        try:
            self.writer.clear_heartbeat()
        except redis.RedisError:
            pass

    # ---- heartbeat ----------------------------------------------------------------------
    def heartbeat_loop(self, stop: threading.Event) -> None:
        cfg = self.app.worker
        while not stop.is_set():
            validator = getattr(self.feed, "validator", None)
            hb = Heartbeat(pid=os.getpid(), started_at=self.started_at, time=self.clock.now_ms(),
                           bots=len(self.bots), last_candle_time=self.last_candle_time,
                           candles_rejected=sum(validator.rejected.values()) if validator else 0, version=VERSION,
                           market=self._market_label)
            try:
                self.writer.heartbeat(hb, cfg.heartbeat_ttl_s)
            except redis.RedisError as exc:
                log.error("heartbeat failed: %s", exc)
            stop.wait(cfg.heartbeat_every_s)

    # ---- commands -----------------------------------------------------------------------
    def command_loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                for entry_id, fields in self.writer.read_commands(self.consumer, block_ms=500):
                    self.handle_command(entry_id, fields)
            except redis.RedisError as exc:
                log.error("command stream: %s", exc)
                stop.wait(1.0)
            except Exception:  # never let a bad command kill the reader
                log.exception("command loop error")
                stop.wait(0.5)

    def handle_command(self, entry_id: str, fields: dict[str, str]) -> CommandResult:
        now = self.clock.now_ms()
        try:
            cmd = parse_command(fields)
        except CommandRejected as exc:
            return self._reject(entry_id, fields, str(exc), now)
        if self.writer.already_applied(cmd.nonce):
            result = CommandResult(nonce=cmd.nonce, entry_id=entry_id, status="duplicate",
                                   message="already applied; nothing done again", time=now)
            self.writer.finish_command(entry_id, result, self._audit(cmd, entry_id, "duplicate", result.message, now))
            return result
        with self.lock:
            try:
                outcome = self._apply(cmd, now)
            except UnknownTarget as exc:
                return self._reject(entry_id, fields, str(exc), now)
            updates = [b.drain(now) for b in outcome.bots]
            result = CommandResult(nonce=cmd.nonce, entry_id=entry_id, status="applied", message=outcome.message,
                                   time=now)
            self.writer.finish_command(entry_id, result, self._audit(cmd, entry_id, "applied", outcome.message, now),
                                       outcome.controls, updates, outcome.limit_changes, outcome.dynamic_bots,
                                       outcome.metas)
        log.info("command %s by %s: %s", cmd.label, cmd.user, outcome.message)
        if cmd.cmd in ("flatten", "emergency_stop", "adopt", "ignore_drift"):
            self._refresh_venue_views(outcome.bots)
        return result

    def _refresh_venue_views(self, bots: list) -> None:  # type: ignore[type-arg]
        """After a kill switch or a drift decision, show the venue as it is now (not as of the last
        periodic reconciliation): the operator checks there that the orders are gone."""
        for bot in bots:
            cfg = self.configs.get(bot.name)
            if self.venue is None or cfg is None or not self._on_venue(cfg):
                continue
            try:
                with self.lock:
                    rep = self.venue.reconcile(bot, cfg.market)
                if rep.ok:
                    self._drift_seen.pop(bot.name, None)
            except Exception as exc:  # noqa: BLE001 - the periodic reconciliation tries again
                log.warning("venue view of %s not refreshed: %s", bot.name, exc)

    def _reject(self, entry_id: str, fields: dict[str, str], why: str, now: int) -> CommandResult:
        nonce = fields.get("nonce", "")
        nonce = nonce if nonce.replace("-", "").replace("_", "").isalnum() and len(nonce) <= 64 else ""
        result = CommandResult(nonce=nonce, entry_id=entry_id, status="rejected", message=why, time=now)
        audit = AuditRecord(time=now, who=fields.get("user", "?")[:64], command=fields.get("cmd", "?")[:64],
                            target=fields.get("target", "")[:64], result="rejected", detail=why,
                            entry_id=entry_id, nonce=nonce)
        self.writer.record_reject("command", why, {k[:64]: v[:500] for k, v in fields.items()})
        self.writer.finish_command(entry_id, result, audit)
        log.warning("command %s rejected: %s", entry_id, why)
        return result

    @staticmethod
    def _audit(cmd: Command, entry_id: str, result: str, detail: str, now: int) -> AuditRecord:
        return AuditRecord(time=now, who=cmd.user, command=cmd.cmd, target=cmd.target or cmd.scope, result=result,
                           detail=detail, entry_id=entry_id, nonce=cmd.nonce)

    def _scope_bots(self, cmd: Command) -> list[Bot]:
        if cmd.cmd in ("upsert_dca_bot", "backtest"):
            return []
        if cmd.scope == "bot":
            if cmd.target not in self.bots:
                raise UnknownTarget(f"target: no bot named {cmd.target!r}; bots: {', '.join(self.bots) or 'none'}")
            return [self.bots[cmd.target]]
        if cmd.scope == "mode":
            return [b for b in self.bots.values() if b.mode.value == cmd.target]
        return list(self.bots.values())

    def _apply(self, cmd: Command, now: int) -> Outcome:
        who, why = cmd.user, cmd.reason
        bots = self._scope_bots(cmd)
        target = cmd.target if cmd.scope != "global" else ""
        if cmd.cmd == "pause":
            ch = self._set(cmd.scope, target, TradingState.PAUSED, who, why or "paused by operator", now)
            return Outcome([ch], bots, f"{cmd.scope} {target} paused: no new entries, exits still run".strip())
        if cmd.cmd == "upsert_dca_bot":
            try:
                return self._upsert_dca(cmd, now)
            except ValueError as exc:
                raise UnknownTarget(f"payload: {exc}") from None
        if cmd.cmd in ("adopt", "ignore_drift"):
            bot = bots[0]
            cfg = self.configs[bot.name]
            if self.venue is None or not self._on_venue(cfg):
                raise UnknownTarget(f"target: {bot.name} does not trade on a venue")
            if cmd.cmd == "adopt" and not isinstance(bot, Bot):
                raise UnknownTarget(f"target: {bot.name} is a DCA bot: its position belongs to deals; "
                                    "use ignore_drift or flatten")
            if cmd.cmd == "adopt":
                actual = self.venue.venue_position(bot, cfg.market)
                pos = bot.position
                old = pos.quantity
                if abs(actual) < 1e-12:
                    bot.portfolio.positions[bot.symbol] = type(pos)(bot.symbol)
                else:
                    pos.quantity = actual
                    pos.avg_entry = pos.avg_entry or bot.last_price  # unknown cost: marked at the last price
                    pos.opened_at = pos.opened_at or now
                msg = f"{bot.name}: adopted the venue's {actual:+.8g} {bot.symbol} (the bot had {old:+.8g})"
            else:
                self.venue.reset_baseline(bot, cfg.market)
                msg = f"{bot.name}: the difference with the venue is ignored from now on"
            self._drift_seen.pop(bot.name, None)
            return Outcome([], bots, msg + "; the bot stays paused until you resume it")
        if cmd.cmd == "backtest":
            return self._backtest(cmd, now)
        if cmd.cmd in ("reduce_only", "halt"):
            state = TradingState.REDUCE_ONLY if cmd.cmd == "reduce_only" else TradingState.HALTED
            ch = self._set(cmd.scope, target, state, who, why or f"{cmd.cmd} by operator", now)
            effect = "only orders that shrink exposure" if cmd.cmd == "reduce_only" else "no orders at all"
            if state is TradingState.HALTED:  # a resting ladder would keep buying: HALTED cancels it
                canceled = sum(b.cancel_resting(f"halt by {who}") for b in bots if isinstance(b, DcaBot))
                if canceled:
                    effect += f"; {canceled} resting order(s) canceled"
            return Outcome([ch], list(self.bots.values()) if cmd.scope != "bot" else bots,
                           f"{cmd.scope} {target} {state.value}: {effect}".replace("  ", " "))
        if cmd.cmd == "set_limit":
            bot = bots[0]
            value = _limit_value(cmd.limit, cmd.value)
            try:
                bot.tighten_limits({cmd.limit: value})
            except ValueError as exc:  # raising a limit, or an unknown one
                raise UnknownTarget(f"{cmd.limit}: {exc}") from None
            return Outcome([], bots, f"{bot.name}: {cmd.limit} lowered to {value!r}, in effect now",
                           [(bot.name, cmd.limit, value)])
        if cmd.cmd == "resume":
            ch = self._set(cmd.scope, target, TradingState.ACTIVE, who, why or "resumed by operator", now)
            still = [b.name for b in bots if self.effective_state(b) is not TradingState.ACTIVE]
            msg = f"{cmd.scope} {target} resumed".replace("  ", " ")
            if still:
                msg += f"; still held by a wider state: {', '.join(still)}"
            return Outcome([ch], list(self.bots.values()) if cmd.scope != "bot" else bots, msg)
        if cmd.cmd == "flatten":
            closed = self._flatten(bots, who, "flatten")
            ch = self._set(cmd.scope, target, TradingState.PAUSED, who, why or "flattened by operator", now)
            return Outcome([ch], bots, f"closed {closed} and paused {cmd.scope} {target}".strip())
        if cmd.cmd == "emergency_stop":
            changes = [self._set("global", "", TradingState.PAUSED, who, why or "EMERGENCY STOP", now)]
            closed = self._flatten(bots, who, "emergency_stop")
            for b in bots:
                changes.append(self._set("bot", b.name, TradingState.PAUSED, who, why or "EMERGENCY STOP", now))
            return Outcome(changes, bots, f"EMERGENCY STOP: closed {closed}; all {len(bots)} bots paused")
        # resume_all
        changes = [self._set("global", "", TradingState.ACTIVE, who, why or "resume all", now)]
        for m in ("ghost", "paper", "live"):
            changes.append(self._set("mode", m, TradingState.ACTIVE, who, why or "resume all", now))
        for b in bots:
            changes.append(self._set("bot", b.name, TradingState.ACTIVE, who, why or "resume all", now))
        return Outcome(changes, bots, f"all {len(bots)} bots resumed")

    @staticmethod
    def _flatten(bots: list[Bot], who: str, reason: str) -> str:
        closed, failed = [], []
        for b in bots:
            what = b.exposure
            if not what:
                continue
            desc = f"{b.name} {what}"
            try:
                ok = b.flatten(f"{reason} by {who}")
            except Exception as exc:  # noqa: BLE001 - one bot's failure must not stop the others' flatten
                log.exception("flatten of %s failed", b.name)
                ok, desc = False, f"{desc} ({exc})"
            (closed if ok else failed).append(desc)
        text = f"{len(closed)} position(s)" + (f" ({'; '.join(closed)})" if closed else "")
        if failed:
            text += f"; NOT closed: {'; '.join(failed)}"
        return text


def _limit_value(name: str, raw: str) -> object:
    """Parse a set_limit value by the limit's type ('22,2' for hours, 'BTCUSDT,ETHUSDT' for symbols)."""
    if name == "symbol_whitelist":
        return tuple(x.strip().upper() for x in raw.split(",") if x.strip())
    if name == "blackout_hours_utc":
        a, b = (int(x) for x in raw.split(","))
        return (a, b)
    try:
        return float(raw)
    except ValueError:
        raise UnknownTarget(f"value: {raw!r} is not a number") from None

