"""The one composition root: bots, the market feed and the venue connection built from the config.

The worker builds its bots here, and the backtester builds the same bots here (as paper bots with a
simulated venue), so a bot is never assembled two ways; nothing patches a bot after it is built.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis

from core.exits import ExitCheck, touch_exit_check
from core.portfolio import Portfolio
from core.types import Mode, candle_key
from engine.bot import Bot
from engine.dca_bot import DcaBot
from engine.exits import PositionExits
from engine.informative import with_informative
from engine.signal_policy import SignalPolicy
from engine.ledger import RiskEnv, StateOf
from executors.base import Executor
from executors.fills import paper_model
from executors.funding import FundingModel
from executors.ghost import GhostExecutor
from executors.paper import PaperExecutor
from executors.venue import SimVenue
from market.feed import Feed
from risk.engine import RiskEngine
from risk.limits import RiskLimits
from risk.monitor import RiskMonitor
from settings import AppConfig, BotConfig
from state.writer import StateWriter
from strategy.base import Strategy
from strategy.registry import build_strategy

if TYPE_CHECKING:
    from engine.live import LiveVenue
@dataclass(slots=True)
class SimParts:
    """What a backtest builds differently from the worker (``backtest.build``): its executor (signal
    bots), its resting venue (DCA bots), its intrabar exit rule, no Redis records, and optionally
    another strategy (sweeps, optimisation). Every other part is the worker's own."""

    executor: Executor | None = None
    resting: SimVenue | None = None
    exit_check: ExitCheck | None = None
    records: bool = False
    strategy: Strategy | None = None


def build_bot(cfg: BotConfig, app: AppConfig, state_of: StateOf, *, env: RiskEnv | None = None,
              venue: "LiveVenue | None" = None, monitored: bool = True, sim: SimParts | None = None,
              limits: RiskLimits | None = None) -> "Bot | DcaBot":
    """One configured bot. The worker passes ``env`` (cross-bot limits) and ``venue`` (its exchange
    connection, for bots that trade on one); ``monitored``: a risk monitor watches the loss limits
    (its breaches are queued for the owner to apply). A backtest passes ``sim`` (its own parts, the
    bot labelled ``backtest``) and may pass the ``limits`` to run with."""
    label = Mode.BACKTEST if sim is not None else Mode(cfg.mode)
    mode = Mode.PAPER if sim is not None else label  # a backtest simulates every bot as a paper bot
    executor: Executor
    on_venue = mode is Mode.LIVE or (mode is Mode.PAPER and app.paper.venue == "testnet" and sim is None)
    if on_venue:
        if venue is None:
            raise ValueError(f"bot {cfg.name}: {mode.value} on a venue needs the worker's exchange connection")
        executor = venue.executor(cfg.market, mode)
        fee = app.paper.fee_pct  # for the risk engine's worst case; the venue charges its own
    elif mode is Mode.GHOST:
        executor = GhostExecutor(quote_asset=app.paper.quote_asset)
        fee = 0.0
    else:
        # Paper fills with the backtest's fill model (config paper.fills); the volume cap reads the candle
        # the worker handed the bots last (its risk environment's), by the bot's candle key.
        model = paper_model(app.paper)
        candle_of = getattr(env, "candle", None)
        executor = PaperExecutor(quote_asset=app.paper.quote_asset, model=model, bar_of=None if candle_of is None
                                 else lambda sym: candle_of(series_key(cfg, app, sym)))
        fee = app.paper.fee_pct
    if sim is not None and sim.executor is not None:
        executor = sim.executor
    allow_short = mode is Mode.GHOST or cfg.market == "futures"
    base = limits if limits is not None else cfg.limits(allow_raise=bool(os.environ.get("BOT_RISK_OVERRIDE")))
    limits = base.with_(fee_pct=fee, slippage_bps=0.0 if mode is Mode.GHOST else app.paper.slippage_bps,
                     allow_short=allow_short, check_balance=mode is not Mode.GHOST)
    # A backtest keeps no approval records: it skips their text (denials still explain themselves).
    risk = RiskEngine(limits, explain=sim is None)
    monitor = RiskMonitor(limits, app.paper.starting_balance) if monitored else None
    portfolio = Portfolio(cfg.name, app.paper.starting_balance, app.paper.quote_asset)
    if cfg.kind == "dca":
        assert cfg.dca is not None  # settings guarantee it
        # The resting ladder: GTC limit orders on the exchange for a venue bot, simulated otherwise.
        if sim is not None and sim.resting is not None:
            resting = sim.resting
        elif on_venue:
            resting = venue.book(cfg.name, cfg.market)  # type: ignore[union-attr]
        elif mode is Mode.GHOST:
            resting = SimVenue(maker_fee_pct=fee, quote_asset=app.paper.quote_asset, touch_fills=True)
        else:
            resting = SimVenue(quote_asset=app.paper.quote_asset, model=paper_model(app.paper))
        strategy = with_informative(build_strategy(cfg.strategy, cfg.params), app.market.interval) \
            if cfg.strategy else None
        dca_bot = DcaBot(cfg.name, label, cfg.symbols, cfg.dca, strategy, executor, resting, risk, portfolio,
                         state_of, app.market.interval, monitor=monitor, env=env)
        dca_bot.reduce_only_exits = on_venue and cfg.market == "futures"
        dca_bot.funding_model = simulated_funding(cfg, app, mode, on_venue)
        if on_venue and app.exchange.protective_orders and mode is not Mode.GHOST and cfg.market == "futures":
            # each deal's stop rests on the venue (engine.dca_protection); a spot deal's base is locked in its TP
            dca_bot.guards = {s: venue.protection(cfg.name, cfg.market, s) for s in cfg.symbols}  # type: ignore[union-attr]
        return dca_bot
    max_hold = cfg.max_hold_candles or (app.ghost.horizon_candles if mode is Mode.GHOST else None)
    exit_check = sim.exit_check if sim is not None and sim.exit_check is not None else (
        executor.model.exit_check if isinstance(executor, PaperExecutor) and executor.model else touch_exit_check)
    bot = Bot(
        name=cfg.name, mode=label, symbol=cfg.symbol,
        strategy=with_informative(sim.strategy if sim is not None and sim.strategy is not None
                                  else build_strategy(cfg.strategy, cfg.params), app.market.interval),
        executor=executor, risk=risk, portfolio=portfolio, sizing=cfg.sizing, state_of=state_of,
        allow_short=allow_short, max_hold_candles=max_hold, interval=app.market.interval,
        exit_check=exit_check,
        records=sim.records if sim is not None else True, monitor=monitor, env=env, max_tranches=cfg.max_tranches,
        policy=SignalPolicy(cfg.signals), exits=PositionExits(cfg.exits, exit_check) if cfg.exits else None,
    )
    bot.reduce_only_exits = on_venue and cfg.market == "futures"
    bot.funding_model = simulated_funding(cfg, app, mode, on_venue)
    if on_venue and app.exchange.protective_orders and mode is not Mode.GHOST:
        bot.guard = venue.protection(cfg.name, cfg.market, cfg.symbol)  # type: ignore[union-attr]
    return bot


def series_key(cfg: BotConfig, app: AppConfig, symbol: str) -> str:
    """The candle series a bot reads for ``symbol``: the venue's futures klines for a USD-M bot when the
    market comes from the venue, else the symbol's one series."""
    return candle_key(symbol, "futures") if cfg.market == "futures" and app.market.source == "exchange" else symbol


def simulated_funding(cfg: BotConfig, app: AppConfig, mode: Mode, on_venue: bool) -> FundingModel | None:
    """USD-M paper and backtest bots pay funding at ``paper.funding_rate_pct`` (executors.funding); a bot on a
    venue is charged by the venue, a ghost bot pays nothing."""
    if cfg.market != "futures" or mode is not Mode.PAPER or on_venue or not app.paper.funding_rate_pct:
        return None
    return FundingModel(app.paper.funding_rate_pct)


def build_feed(app: AppConfig, r: redis.Redis) -> Feed:
    """The configured market feed, continuing from the candles already stored in Redis."""
    writer = StateWriter(r)
    if app.market.source == "exchange":
        # Every mode sees the venue's market (the local exchange by default).
        from exchange.marketdata import ExchangeFeed
        from exchange.venues import DEFAULT_LOCAL, venue_urls

        urls = venue_urls(app.exchange.venue, app.exchange.base_url or DEFAULT_LOCAL)
        spot = ExchangeFeed(urls, app.market.symbols, app.market.interval, market="spot",
                            stale_after_s=app.exchange.stale_after_s)
        futures = sorted({s for b in app.bots if b.enabled and b.market == "futures" for s in b.symbols})
        if not futures:
            return spot
        # USD-M bots read the futures market's own candles (its prices are not the spot ones)
        from market.feed import MergedFeed

        return MergedFeed([spot, ExchangeFeed(urls, futures, app.market.interval, market="futures",
                                              stale_after_s=app.exchange.stale_after_s)])
    if app.market.source == "replay":
        from market.feed import ReplayFeed
        from market.replay import load_candles

        series = []
        for path in app.market.replay_files:
            series.extend(load_candles(path).candles)
        return ReplayFeed(series, speed=app.market.speed)
    from market.feed import SyntheticFeed
    from market.synthetic import DEFAULT_SYMBOLS, SyntheticMarket

    resume = {}
    for symbol in app.market.symbols:
        stored = writer.recent_candles(symbol, 1)
        if stored:
            resume[symbol] = stored[-1]
    # Unknown symbols start at 100 (a neutral level); the known ones at realistic prices.
    market = SyntheticMarket({s: DEFAULT_SYMBOLS.get(s, 100.0) for s in app.market.symbols}, seed=app.market.seed,
                             interval=app.market.interval)
    return SyntheticFeed(market, speed=app.market.speed, resume=resume or None)

