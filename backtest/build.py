"""Backtest bots: the worker's own bots (``engine.assembly.build_bot``) built as paper bots with the
simulated venue, the fill model's fees and a ``BacktestControl`` as their trading state."""
from __future__ import annotations

import os

from backtest.fills import BacktestExecutor, FillModel
from backtest.result import AnyBot, BacktestControl
from engine.assembly import SimParts, build_bot
from engine.bot import Bot
from risk.limits import RiskLimits
from risk.sizing import SizingPolicy
from settings import AppConfig, BotConfig
from strategy.base import Strategy

# Limits the risk monitor acts on or feeds (trading-state moves, last entry time); a bot with
# none of them gets no monitor, since one could not change any decision (and costs per event).
MONITOR_LIMITS = ("daily_loss_value", "daily_loss_pct", "weekly_loss_value", "weekly_loss_pct",
                  "max_drawdown_pct", "max_consecutive_losses", "min_entry_interval_s")


# ... of which these read the mark-to-market equity (the fast path must look between events).
EQUITY_LIMITS = ("daily_loss_value", "daily_loss_pct", "weekly_loss_value", "weekly_loss_pct", "max_drawdown_pct")


def needs_monitor(limits: RiskLimits, sizing: SizingPolicy | None) -> bool:
    """A bot with none of ``MONITOR_LIMITS`` (and no drawdown-scaled sizing) gets no monitor: it could
    not change a decision, and it costs per event."""
    return any(getattr(limits, k) is not None for k in MONITOR_LIMITS) or bool(sizing and sizing.scale_by_drawdown)


def build_sim_bot(cfg: BotConfig, app: AppConfig, model: FillModel, interval: str, sim: SimParts,
                  control: BacktestControl | None = None) -> AnyBot:
    """What every backtest bot (signal or DCA) shares: the configured bot built by the worker's own
    ``engine.assembly.build_bot``, simulated as a paper bot (whatever its configured mode) with the
    fill model's fee and slippage, the run's interval, its own limits (a live bot keeps its tighter
    ones) and a ``BacktestControl`` as its trading state (``bot.control_sim``).

    The bot gets the paper bot's ``risk.monitor.RiskMonitor`` when one of ``MONITOR_LIMITS`` is set;
    its breaches are queued and ``BacktestControl.settle`` applies them after each candle, so a
    daily/weekly loss, drawdown or losing-streak breach pauses or halts (and flattens) the backtest
    as it would the paper bot."""
    sim_paper = app.paper.model_copy(update={"fee_pct": model.taker_fee_pct, "slippage_bps": model.slippage_bps,
                                             "venue": "sim"})
    market = app.market.model_copy(update={"interval": interval})
    sim_app = app.model_copy(update={"paper": sim_paper, "market": market})
    control = control or BacktestControl()
    limits = cfg.limits(allow_raise=bool(os.environ.get("BOT_RISK_OVERRIDE")))  # as the worker runs it
    bot = build_bot(cfg, sim_app, control.state_of, sim=sim, limits=limits,
                    monitored=needs_monitor(limits, cfg.sizing if cfg.kind != "dca" else None))
    bot.control_sim = control  # type: ignore[union-attr]  # read back by the runners and the result
    return bot


def build_backtest_bot(cfg: BotConfig, app: AppConfig, model: FillModel, interval: str,
                       strategy: Strategy | None = None) -> Bot:
    """The configured signal bot (``build_sim_bot``) on the simulated venue (``BacktestExecutor``) with
    the fill model's intrabar exit rule. Every bot is simulated as a paper bot (fills, fees) whatever
    its configured mode: a ghost bot's backtest shows what its signals would have earned traded.
    Shorts need ``market: futures``."""
    if cfg.kind == "dca":
        raise ValueError(f"bot {cfg.name} is a DCA bot")
    executor = BacktestExecutor(model, app.paper.quote_asset)
    sim = SimParts(executor=executor, exit_check=model.exit_check, strategy=strategy)
    bot = build_sim_bot(cfg, app, model, interval, sim)
    assert isinstance(bot, Bot)
    executor.portfolio = bot.portfolio  # an entry is re-checked against the cash at its fill
    return bot
