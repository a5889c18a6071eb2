"""The worker's bots: built from the config (and from the dashboard's DCA bots), restored from Redis
(state, lowered limits, snapshot), indexed by symbol, and looked up by a command's scope."""
from __future__ import annotations

import json
import logging
import os
from typing import TYPE_CHECKING

from pydantic import ValidationError

from core.validation import format_errors
from engine.assembly import build_bot, series_key
from engine.bot import Bot
from engine.controls import TradingControls
from engine.dca_bot import DcaBot
from engine.ledger import RiskEnv
from settings import AppConfig, BotConfig
from state.models import BotMeta
from state.writer import StateWriter

if TYPE_CHECKING:
    from engine.live import LiveVenue

log = logging.getLogger("worker")
AnyBot = Bot | DcaBot


class UnknownTarget(ValueError):
    """A command names something that is not there (or cannot take it); the message says which."""


def on_venue(app: AppConfig, cfg: BotConfig) -> bool:
    """Does this bot place orders on a venue (live, or paper on the testnet)?"""
    return cfg.mode == "live" or (cfg.mode == "paper" and app.paper.venue == "testnet")


def meta(c: BotConfig) -> BotMeta:
    return BotMeta(name=c.name, mode=c.mode, symbol=c.symbol, strategy=c.strategy or "dca",
                   params=c.dca.model_dump() if c.dca else c.params, kind=c.kind, symbols=c.symbols,
                   market=c.market, sizing=f"{c.sizing.kind} {c.sizing.value:g}")


class Fleet:
    def __init__(self, app: AppConfig, writer: StateWriter, controls: TradingControls) -> None:
        self.app = app
        self.writer = writer
        self.controls = controls
        self.bots: dict[str, AnyBot] = {}
        self.configs: dict[str, BotConfig] = {}
        self.by_symbol: dict[str, list[AnyBot]] = {}
        self.fresh: set[str] = set()  # bots with no snapshot to continue from (their first start)
        controls.on_bot_change = self._mirror

    def _mirror(self, name: str, rec: object) -> None:
        bot = self.bots.get(name)
        if bot is not None:
            bot.control = rec.to_core()  # type: ignore[attr-defined]

    def configured(self) -> list[BotConfig]:
        """The enabled config bots plus the dashboard-made ones still valid for this config."""
        configs = [c for c in self.app.bots if c.enabled]
        names = {c.name for c in configs}
        for name, raw in self.writer.dynamic_bots().items():
            if name in names:
                log.warning("dashboard-made bot %s is shadowed by a config bot of the same name", name)
                continue
            try:
                configs.append(self.dynamic_config(name, raw))
            except ValueError as exc:  # the app config changed under it: say so, keep running
                log.error("dashboard-made bot %s no longer valid, not started: %s", name, exc)
        return configs

    def dynamic_config(self, name: str, raw: str) -> BotConfig:
        """Validate a dashboard-made bot against this app's config (symbols, modes, ceilings)."""
        try:
            cfg = BotConfig.model_validate({**json.loads(raw), "name": name})
        except ValidationError as exc:
            raise ValueError(format_errors(exc)) from None
        except (json.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"not a JSON object: {exc}") from None
        if cfg.kind != "dca":
            raise ValueError("only DCA bots can be created from the dashboard")
        if cfg.mode == "live":
            raise ValueError("live bots are created in config.yaml only (two-key switch)")
        missing = [s for s in cfg.symbols if s not in self.app.market.symbols]
        if missing:
            raise ValueError(f"symbols {missing} are not in market.symbols {self.app.market.symbols}")
        paper = self.app.paper
        problem = cfg.dca_problem(paper.starting_balance, paper.fee_pct, paper.slippage_bps)
        if problem:
            raise ValueError(f"dca: {problem}")
        return cfg

    def add(self, cfg: BotConfig, env: RiskEnv | None, venue: "LiveVenue | None") -> AnyBot:
        """Build the bot and continue it from Redis: its control record, lowered limits and snapshot."""
        bot = build_bot(cfg, self.app, self.controls.effective, env=env, venue=venue)
        rec = self.writer.load_control("bot", cfg.name)
        self.controls.records[("bot", cfg.name)] = rec
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
        else:
            self.fresh.add(cfg.name)
        self.bots[cfg.name] = bot
        self.configs[cfg.name] = cfg
        for sym in cfg.symbols:
            self.by_symbol.setdefault(self.key(cfg, sym), []).append(bot)
        return bot

    def key(self, cfg: BotConfig, symbol: str) -> str:
        """The candle series a bot reads for ``symbol`` (``engine.assembly.series_key``)."""
        return series_key(cfg, self.app, symbol)

    def on_venue(self, name: str) -> bool:
        cfg = self.configs.get(name)
        return cfg is not None and on_venue(self.app, cfg)

    def scope(self, scope: str, target: str) -> list[AnyBot]:
        """The bots a command's scope names; an unknown bot is an error naming the known ones."""
        if scope == "bot":
            if target not in self.bots:
                raise UnknownTarget(f"target: no bot named {target!r}; bots: {', '.join(self.bots) or 'none'}")
            return [self.bots[target]]
        if scope == "mode":
            return [b for b in self.bots.values() if b.mode.value == target]
        return list(self.bots.values())

    def risk_override_audits(self) -> list[tuple[str, str]]:
        """(bot, what) for each live bot whose config raises a hard ceiling under BOT_RISK_OVERRIDE."""
        override = os.environ.get("BOT_RISK_OVERRIDE", "")
        if not override:
            return []
        from core.types import Mode
        from risk.limits import CeilingViolation, resolve

        out = []
        for cfg in self.configs.values():
            if cfg.mode != "live":
                continue
            try:
                resolve(Mode.LIVE, cfg.risk.overrides())
            except CeilingViolation as exc:  # a raised live ceiling: allowed by the override, audited
                out.append((cfg.name, f"{override}: {exc}"))
        return out
