"""Backtest bots: the worker's own bots (``engine.assembly.build_bot``) built as paper bots with the
simulated venue, the fill model's fees and a ``BacktestControl`` as their trading state."""
from __future__ import annotations

from dataclasses import replace

from backtest.fills import BacktestExecutor, FillModel
from backtest.result import AnyBot, BacktestControl
from core.types import Mode
from engine.bot import Bot
from settings import AppConfig, BotConfig
from strategy.base import Strategy

# Limits the risk monitor acts on or feeds (trading-state moves, last entry time); a bot with
# none of them gets no monitor, since one could not change any decision (and costs per event).
MONITOR_LIMITS = ("daily_loss_value", "daily_loss_pct", "weekly_loss_value", "weekly_loss_pct",
                  "max_drawdown_pct", "max_consecutive_losses", "min_entry_interval_s")


# ... of which these read the mark-to-market equity (the fast path must look between events).
EQUITY_LIMITS = ("daily_loss_value", "daily_loss_pct", "weekly_loss_value", "weekly_loss_pct", "max_drawdown_pct")


def needs_monitor(bot: AnyBot) -> bool:
    lim = bot.risk.limits
    sizing = getattr(bot, "sizing", None)  # DCA bots size by their settings, not a sizing policy
    return any(getattr(lim, k) is not None for k in MONITOR_LIMITS) or bool(sizing and sizing.scale_by_drawdown)


def build_sim_bot(cfg: BotConfig, app: AppConfig, model: FillModel, interval: str,
                  control: BacktestControl | None = None, paper: dict[str, object] | None = None,
                  **build_kw: object) -> AnyBot:
    """What every backtest bot (signal or DCA) shares: the configured bot built by the worker's own
    ``engine.assembly.build_bot`` as a paper bot (whatever its configured mode), with the fill
    model's fee and slippage, the run's interval and a ``BacktestControl`` as its trading state.

    The bot gets the paper bot's ``risk.monitor.RiskMonitor``, wired to ``BacktestControl.on_breach``
    (when one of ``MONITOR_LIMITS`` is set, else none: it could not change a decision), so a
    daily/weekly loss, drawdown or losing-streak breach pauses or halts (and flattens) the backtest
    as it would the paper bot. A live bot keeps its own (tighter) limits.

    ``control``: the trading state to use (a new one by default; ``bot.control_sim`` holds it);
    ``paper``: more ``app.paper`` settings; ``build_kw``: more ``build_bot`` arguments."""
    from engine.assembly import build_bot

    sim_paper = app.paper.model_copy(update={"fee_pct": model.taker_fee_pct, "slippage_bps": model.slippage_bps,
                                             **(paper or {})})
    market = app.market.model_copy(update={"interval": interval})
    sim_app = app.model_copy(update={"paper": sim_paper, "market": market})
    if control is None:
        control = BacktestControl()
    bot = build_bot(cfg.model_copy(update={"mode": "paper"}), sim_app, control.state_of,
                    on_breach=control.on_breach, **build_kw)
    if cfg.mode == "live":  # keep a live bot's own (tighter) limits
        bot.risk.limits = replace(cfg.limits(), fee_pct=model.taker_fee_pct, slippage_bps=model.slippage_bps,
                                  allow_short=bot.risk.limits.allow_short, check_balance=True)
    if bot.monitor is not None:
        bot.monitor.limits = bot.risk.limits
        if not needs_monitor(bot):
            bot.monitor = bot.on_breach = None
    bot.control_sim = control  # type: ignore[union-attr]  # read back by _result() / run_dca()
    bot.mode = Mode.BACKTEST
    bot.risk.explain = False  # no approval records are kept: skip their text (denials still explain)
    return bot


def build_backtest_bot(cfg: BotConfig, app: AppConfig, model: FillModel, interval: str,
                       strategy: Strategy | None = None) -> Bot:
    """The configured signal bot (``build_sim_bot``: the paper bot's risk limits, sizing and risk
    monitor) with the simulated venue plugged in. Every bot is simulated as a paper bot (fills,
    fees) whatever its configured mode: a ghost bot's backtest shows what its signals would have
    earned traded. Shorts need ``market: futures``. The paper fee/slippage are replaced by the
    fill model's."""
    bot = build_sim_bot(cfg, app, model, interval)
    if not isinstance(bot, Bot):
        raise ValueError(f"bot {cfg.name} is a DCA bot")
    bot.executor = BacktestExecutor(model, app.paper.quote_asset)
    bot.exit_check = model.exit_check
    bot.records = False
    if strategy is not None:
        bot.strategy = strategy
    return bot
