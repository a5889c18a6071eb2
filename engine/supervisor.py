"""Supervision of the bots that trade on a venue (live, and paper on the testnet): the checks before
one may trade (the live switch, recovery of open intents, leverage, pre-flight, the DCA ladder's
sizes against the venue's filters, a first reconciliation), and, while they run, the periodic pass
(stale intents, the REST poll of resting orders, the futures liquidation guard, reconciliation)
with its drift memory. A refusal halts the bot with the reason; a drift pauses it. State changes go
through ``TradingControls`` and are committed with their audit record."""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Callable

from core.types import TradingState
from engine.bot import Bot
from engine.controls import TradingControls
from engine.dca_bot import DcaBot
from engine.live import LiveRefused, LiveVenue
from exchange.client import ExchangeClient
from exchange.rules import fmt
from risk.states import most_restrictive
from settings import BotConfig
from state.models import AuditRecord
from state.models import ControlChange
from state.writer import StateWriter
from strategy.dca import ladder

if TYPE_CHECKING:
    from engine.fleet import AnyBot, Fleet

log = logging.getLogger("worker")


class VenueSupervisor:
    def __init__(self, venue: LiveVenue, fleet: "Fleet", controls: TradingControls, writer: StateWriter,
                 now: Callable[[], int]) -> None:
        self.venue = venue
        self.fleet = fleet
        self.controls = controls
        self.writer = writer
        self.now = now
        self.drift_seen: dict[str, str] = {}

    # ---- what the risk environment asks ------------------------------------------------------
    def trades(self, name: str) -> bool:
        return self.fleet.on_venue(name)

    def client_of(self, name: str) -> ExchangeClient:
        return self.venue.client(self.fleet.configs[name].market)

    def has_drift(self, name: str) -> bool:
        return name in self.drift_seen

    # ---- before a bot trades -------------------------------------------------------------------
    def start(self, bot: "AnyBot", cfg: BotConfig) -> None:
        """Before a venue bot trades: resolve its open intents, pre-flight, reconcile. A failure halts
        it with the reason (shown on the dashboard); it never starts half-checked."""
        venue = self.venue
        bot.dust_key = lambda sym, m=cfg.market: venue.dust_key(m, sym)
        now = self.now()
        try:
            venue.check_switch(cfg)
            if cfg.mode == "live" and cfg.name in self.fleet.fresh:
                self._allocate(bot, cfg, now)
            # Fills of orders that were final before this start but not in the saved books (the worker
            # died between the venue's answer and the commit): looked up before the open intents are
            # resolved, whose fills are booked by recover() itself, so nothing is booked twice.
            lost = venue.unbooked(cfg.name, cfg.market, bot.saved_at) if bot.saved_at is not None else []
            self.recover(bot, cfg)
            if lost:
                bot.book_fills(lost, "recovered: filled before a crash, not booked")
                log.warning("bot %s: booked %d fill(s) the venue made before a crash that the books missed",
                            cfg.name, len(lost))
            bot.resume_protection()  # a stop that fired on the venue while the worker was down: booked once
            lim = bot.risk.limits
            if cfg.market == "futures":
                venue.set_leverage(bot, int(cfg.dca.leverage if cfg.dca is not None else cfg.risk.max_leverage))
            if cfg.dca is not None:  # a deal's whole ladder, for each deal that may run at once
                need = float(ladder(cfg.dca.params(), 100).max_funds) * cfg.dca.max_active_deals
                need /= max(float(cfg.dca.leverage), 1.0)
            else:
                need = lim.max_position_value or (cfg.sizing.value if cfg.sizing.kind == "fixed_quote" else 0.0)
            report = venue.preflight(cfg, need)
            if not report.ok:
                raise LiveRefused("pre-flight failed: " + "; ".join(f"{c.name}: {c.reason}" for c in report.failed))
            if cfg.dca is not None:
                self._check_dca_sizes(cfg)
            # The same check as every periodic pass: a safety order that filled between the book's load
            # and now (no user-data stream yet) is polled and booked before a difference counts as drift.
            self.reconcile(bot)
        except LiveRefused as exc:
            self.refuse(bot, str(exc), now)
        except Exception as exc:  # noqa: BLE001 - venue unreachable, bad answer: refuse, say why, keep running
            self.refuse(bot, f"venue error: {exc}", now)

    def _allocate(self, bot: "AnyBot", cfg: BotConfig, now: int) -> None:
        """A live bot's first start: its equity is what it may use on the venue (the account's free quote,
        capped by its allocation and by the mode's exposure limit), not the paper balance."""
        client = self.venue.client(cfg.market)
        quote_asset = bot.portfolio.quote_asset
        if client.futures:
            held = client.margin()[1]
        else:
            bal = client.balances().get(quote_asset)
            held = float(bal.free) if bal is not None else 0.0
        caps = [held] + [x for x in (cfg.allocation, bot.risk.limits.max_mode_exposure_value) if x]
        alloc = min(caps)
        if alloc <= 0:
            raise LiveRefused(f"the {cfg.market} account holds no {quote_asset} for this bot")
        bot.allocate(alloc)
        self.writer.commit([bot.drain(now)], audits=[AuditRecord(
            time=now, who="preflight", command="allocate", target=bot.name, result="applied",
            detail=f"equity {alloc:,.2f} {quote_asset} (account holds {held:,.2f}; allocation "
                   f"{cfg.allocation or 'not set'}; mode exposure limit {bot.risk.limits.max_mode_exposure_value})")])
        self.fleet.fresh.discard(cfg.name)
        log.info("live bot %s: equity %.2f %s (account holds %.2f)", bot.name, alloc, quote_asset, held)

    def recover(self, bot: "AnyBot", cfg: BotConfig, min_age_ms: int = 0) -> None:
        """Open intents resolved by asking the venue; fills found are booked once."""
        for rec in self.venue.recover(cfg.name, cfg.market, min_age_ms=min_age_ms):
            if rec.fills:
                bot.book_fills(rec.fills, f"recovered {rec.intent.client_order_id}")
                log.warning("bot %s: recovered %d fill(s) of %s", cfg.name, len(rec.fills), rec.intent.client_order_id)

    def _check_dca_sizes(self, cfg: BotConfig) -> None:
        """A ladder whose orders the venue's filters would refuse (lot step, minimum notional) must
        not start: say which order and why, instead of deals that silently never open."""
        assert cfg.dca is not None
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

    def refuse(self, bot: "AnyBot", why: str, now: int) -> None:
        ch = self.controls.set("bot", bot.name, TradingState.HALTED, "preflight", why, now)
        self.writer.commit([], controls=[ch], audits=[AuditRecord(time=now, who="preflight", command="start",
                                                                  target=bot.name, result="refused", detail=why)])
        log.error("live bot %s refused: %s", bot.name, why)

    # ---- while it runs ---------------------------------------------------------------------------
    def drift(self, bot: "AnyBot", summary: str, now: int) -> None:
        """Unexplained drift pauses the bot (once per distinct drift) and is audited."""
        if self.drift_seen.get(bot.name) == summary:
            return
        self.drift_seen[bot.name] = summary
        reason = f"reconciliation drift: {summary}"
        ch: ControlChange = self.controls.set(
            "bot", bot.name, most_restrictive(TradingState.PAUSED, self.controls.get("bot", bot.name).state),
            "reconcile", reason, now)
        audit = AuditRecord(time=now, who="reconcile", command="drift", target=bot.name, result="paused",
                            detail=summary)
        self.writer.commit([bot.drain(now)], controls=[ch], audits=[audit])
        log.warning("bot %s paused: %s", bot.name, reason)

    def reconcile(self, bot: "AnyBot") -> None:
        """Compare the bot with the venue (lock held). A difference is first checked against fills in
        flight — the venue may have filled a resting order whose user-data event has not arrived yet:
        its orders are polled and their fills booked, then it compares again — and only a drift that
        remains pauses the bot."""
        cfg = self.fleet.configs[bot.name]
        rep = self.venue.reconcile(bot, cfg.market)
        if not rep.ok and isinstance(bot, DcaBot):
            self.venue.book(bot.name, cfg.market).poll()
            for g in bot.guards.values():
                g.dirty = True  # a resting stop may have executed: asked for before drift is called
            bot.sync_venue()
            rep = self.venue.reconcile(bot, cfg.market)
        elif not rep.ok and isinstance(bot, Bot) and bot.guard is not None and bot.guard.active:
            bot.guard.dirty = True  # a protective order may have executed: booked before drift is called
            if bot.sync_venue():
                rep = self.venue.reconcile(bot, cfg.market)
        if rep.ok:
            self.drift_seen.pop(bot.name, None)
        else:
            self.drift(bot, rep.summary(), self.now())

    def guard_liquidation(self, bot: Bot) -> None:
        """Futures: how far the venue's mark has gone toward the venue's liquidation price; the monitor
        queues an alert (REDUCE_ONLY) at 80% and a close at 90%, before the venue liquidates it."""
        assert bot.monitor is not None
        pos = self.venue.futures_position(bot)
        if pos is None or not pos.liquidation_price:
            bot.venue_margin = (None, None)
            return
        entry, mark, liq = float(pos.entry_price), float(pos.mark_price), float(pos.liquidation_price)
        used, balance = self.venue.client("futures").margin()
        bot.venue_margin = (100 * used / balance if balance else None,
                            100 * (entry - mark) / (entry - liq) if entry != liq else None)
        bot.queue_breaches(bot.monitor.check_liquidation(entry, mark, liq))

    def pass_bot(self, bot: "AnyBot") -> None:
        """One periodic pass over a venue bot (the caller holds the trading lock and settles after)."""
        cfg = self.fleet.configs[bot.name]
        self.venue.store.flush()  # order transitions a Redis outage kept in memory: written before anything reads them
        self.recover(bot, cfg, min_age_ms=30_000)
        self.venue.store.prune(bot.name, now_ms=int(time.time() * 1000))  # final intents: not forever
        if isinstance(bot, DcaBot):
            self.venue.book(bot.name, cfg.market).poll()  # REST safety net under the user-data stream
            bot.sync_venue()
        if cfg.market == "futures" and isinstance(bot, Bot) and bot.monitor is not None:
            self.guard_liquidation(bot)
        self.reconcile(bot)

    def refresh_views(self, bots: "list[AnyBot]") -> None:
        """After a kill switch or a drift decision, show the venue as it is now (not as of the last
        periodic reconciliation): the operator checks there that the orders are gone."""
        for bot in bots:
            if not self.trades(bot.name):
                continue
            try:
                rep = self.venue.reconcile(bot, self.fleet.configs[bot.name].market)
                if rep.ok:
                    self.drift_seen.pop(bot.name, None)
            except Exception as exc:  # noqa: BLE001 - the periodic reconciliation tries again
                log.warning("venue view of %s not refreshed: %s", bot.name, exc)
