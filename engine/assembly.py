"""The one composition root: bots, the market feed and the venue connection built from the config.

The worker builds its bots here, and the backtester builds the same bots here (as paper bots with a
simulated venue), so a bot is never assembled two ways; nothing patches a bot after it is built.
"""
from __future__ import annotations

import os
from dataclasses import replace

import redis

from core.portfolio import Portfolio
from core.types import Mode
from engine.bot import Bot
from engine.dca_bot import DcaBot
from executors.base import Executor
from executors.ghost import GhostExecutor
from executors.paper import PaperExecutor
from executors.venue import SimVenue
from market.feed import Feed
from risk.engine import RiskEngine
from risk.monitor import RiskMonitor
from settings import AppConfig, BotConfig
from state.writer import StateWriter
from strategy.registry import build_strategy
def build_bot(cfg: BotConfig, app: AppConfig, state_of, on_disable=None, on_breach=None,  # type: ignore[no-untyped-def]
              env=None, venue=None) -> "Bot | DcaBot":
    """One configured bot. The worker passes on_breach/env (risk monitor and cross-bot limits);
    the backtester builds the same bot without them."""
    mode = Mode(cfg.mode)
    executor: Executor
    on_venue = mode is Mode.LIVE or (mode is Mode.PAPER and app.paper.venue == "testnet")
    if on_venue:
        if venue is None:
            raise ValueError(f"bot {cfg.name}: {mode.value} on a venue needs the worker's exchange connection")
        executor = venue.executor(cfg.market, mode)
        fee = app.paper.fee_pct  # for the risk engine's worst case; the venue charges its own
    elif mode is Mode.GHOST:
        executor = GhostExecutor(quote_asset=app.paper.quote_asset)
        fee = 0.0
    else:
        executor = PaperExecutor(app.paper.fee_pct, app.paper.slippage_bps, app.paper.quote_asset)
        fee = app.paper.fee_pct
    allow_short = mode is Mode.GHOST or cfg.market == "futures"
    limits = replace(
        cfg.limits(allow_raise=bool(os.environ.get("BOT_RISK_OVERRIDE"))),
        fee_pct=fee, slippage_bps=0.0 if mode is Mode.GHOST else app.paper.slippage_bps,
        allow_short=allow_short, check_balance=mode is not Mode.GHOST,
    )
    portfolio = Portfolio(cfg.name, app.paper.starting_balance, app.paper.quote_asset)
    if cfg.kind == "dca":
        assert cfg.dca is not None  # settings guarantee it
        # The resting ladder: GTC limit orders on the exchange for a venue bot, simulated otherwise.
        resting = venue.book(cfg.name, cfg.market) if on_venue else SimVenue(
            maker_fee_pct=fee, quote_asset=app.paper.quote_asset, touch_fills=mode is Mode.GHOST)
        strategy = build_strategy(cfg.strategy, cfg.params) if cfg.strategy else None
        dca_bot = DcaBot(cfg.name, mode, cfg.symbols, cfg.dca, strategy, executor, resting, RiskEngine(limits),
                         portfolio, state_of, on_disable, app.market.interval,
                         monitor=RiskMonitor(limits, app.paper.starting_balance) if on_breach is not None else None,
                         on_breach=on_breach)
        dca_bot.reduce_only_exits = on_venue and cfg.market == "futures"
        return dca_bot
    max_hold = cfg.max_hold_candles or (app.ghost.horizon_candles if mode is Mode.GHOST else None)
    monitor = RiskMonitor(limits, app.paper.starting_balance) if on_breach is not None else None
    bot = Bot(
        name=cfg.name, mode=mode, symbol=cfg.symbol, strategy=build_strategy(cfg.strategy, cfg.params),
        executor=executor, risk=RiskEngine(limits),
        portfolio=portfolio,
        sizing=cfg.sizing.policy(), state_of=state_of, allow_short=allow_short,
        max_hold_candles=max_hold, interval=app.market.interval, monitor=monitor, on_breach=on_breach, env=env,
        max_tranches=cfg.max_tranches,
    )
    bot.reduce_only_exits = on_venue and cfg.market == "futures"
    return bot


def build_feed(app: AppConfig, r: redis.Redis) -> Feed:
    """The configured market feed, continuing from the candles already stored in Redis."""
    writer = StateWriter(r)
    if app.market.source == "exchange":
        # Every mode sees the venue's market (the local exchange by default).
        from exchange.marketdata import ExchangeFeed
        from exchange.venues import DEFAULT_LOCAL, venue_urls

        urls = venue_urls(app.exchange.venue, app.exchange.base_url or DEFAULT_LOCAL)
        return ExchangeFeed(urls, app.market.symbols, app.market.interval, market="spot",
                            stale_after_s=app.exchange.stale_after_s)
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

