"""The backtest engine: configured bots over stored candles with a simulated clock.

Each bot is the ``engine.bot.Bot`` that ghost/paper run (strategy + ``risk.engine.RiskEngine``
+ an executor + ``core.portfolio.Portfolio``); only the executor (``backtest.fills``) and the
feed (stored candles) differ. Two paths drive it:

* ``bar``: every candle, in one global time order over all symbols (``market.replay.
  iter_merged``), through ``Bot.on_candle``: the strategy's ``evaluate`` sees the closed
  history only (a tuple of the past candles; it cannot index the future).
* ``fast``: for strategies with an exact vectorised ``signals()``, ``backtest.fast`` visits
  only event candles with the same Bot order code. Bots keep separate books, so running each
  bot over its own symbol gives the same result as the global order (tested).

``auto`` (the default) picks ``fast`` where it applies: a vectorised strategy, and sizing that
reads neither the signal's confidence nor the candle history (``not_vectorisable``). Exits and
signal policies run on both paths (``backtest.fast_visits``). The
simulated clock is the candles' own time: a bot's "now" is its candle's close.

DCA bots (``kind: dca``) are the worker's ``engine.dca_bot.DcaBot``; ``backtest.dca`` builds
and runs them on the ``bar`` path only (their resting orders are matched candle by candle), one
bot at a time over all of its pairs.
"""
from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Literal

import numpy as np

from backtest.build import build_backtest_bot
from backtest.data import SymbolData
from backtest.fast import run_fast
from backtest.fills import BacktestExecutor, FillModel
from backtest.result import AnyBot, BacktestControl, BotResult
from core.types import Candle, Side
from engine.bot import Bot
from market.replay import iter_merged
from settings import AppConfig, BotConfig
from strategy.base import Strategy, history_window, is_vectorised

Path_ = Literal["auto", "fast", "bar"]


def _result(bot: Bot, data: SymbolData, equity: np.ndarray, path: str, params: dict[str, object],
            model: FillModel) -> BotResult:
    pos = bot.position
    exe = bot.executor
    control: BacktestControl | None = getattr(bot, "control_sim", None)
    return BotResult(
        name=bot.name, symbol=bot.symbol, strategy=bot.strategy.name, params=params, interval=data.interval,
        path=path, starting_balance=bot.portfolio.starting_balance, times=data.times, closes=data.closes,
        equity=equity, trades=list(bot.closed_trades), signals=list(bot.signal_log),
        fees_paid=bot.portfolio.fees_paid, open_quantity=pos.quantity, open_entry=pos.avg_entry,
        open_since=pos.opened_at, orders_sent=bot.orders_sent,
        orders_expired=getattr(exe, "expired", 0), denials=dict(bot.denials), fill_model=model, data=data,
        trading_state=control.state.value if control else "ACTIVE",
        risk_events=list(control.events) if control else [], funding=bot.portfolio.funding,
    )


def _is_dca(bot: AnyBot) -> bool:
    from engine.dca_bot import DcaBot

    return isinstance(bot, DcaBot)


def not_vectorisable(bot: Bot) -> str | None:
    """Why the fast path would not run ``bot`` exactly as the bar path (and paper) do; None if it would.

    Exits (trailing, breakeven, scale-out, ATR), a signal policy (confirmation, temperature, regime
    sizing) and sizing that reads the signal's confidence or the candles (``scale_by_confidence``,
    ``kind: atr``) run there: backtest.fast_visits visits the candles they need, evaluates the signals
    they read and keeps their history. A strategy needs an exact vectorised form."""
    if not is_vectorised(bot.strategy):
        if bot.strategy.name == "regime_switch":
            return ("regime_switch: no exact vectorised signals (its regime classifier and mapped strategy run on "
                    "each closed candle)")
        return f"{bot.strategy.name}: no exact vectorised signals"
    return None


def choose_path(bot: AnyBot, path: Path_) -> str:
    if _is_dca(bot):
        if path == "fast":
            raise ValueError(f"{bot.name} is a DCA bot: DCA bots run on the bar path only (their resting orders "
                             "are matched candle by candle); use path 'bar' or 'auto'")
        return "bar"
    assert isinstance(bot, Bot)
    if path == "bar":
        return "bar"
    why = not_vectorisable(bot)
    if path == "fast" and why is not None:
        raise ValueError(f"{why}; use path 'bar' or 'auto'")
    return "bar" if why is not None else "fast"


_gc_lock = threading.Lock()
_gc_runs = 0  # runs in progress in this process (threads): the collector comes back when the last ends
_gc_was_enabled = True


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for a run. A backtest allocates an order, a fill and a trade per
    event and keeps its trades, so the collector's generation scans cost ~12 % of a fast-path run (process
    time of bench/backtest_throughput.py's run with and without); its objects are freed by reference
    counting, and what cycles it leaves are collected once the collector is back. Process-wide, so runs in
    several threads share one pause. Also a decorator (each call pauses afresh)."""
    global _gc_runs, _gc_was_enabled
    with _gc_lock:
        if _gc_runs == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_runs += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_runs -= 1
            if _gc_runs == 0 and _gc_was_enabled:
                gc.enable()


@gc_paused()
def run_bots(bots: Sequence[tuple[AnyBot, dict[str, object]]], data: dict[str, SymbolData], model: FillModel,
             path: Path_ = "auto") -> list[BotResult]:
    """Run bots (each with its params, for the report) over ``data``; see the module docstring."""
    results: dict[str, BotResult] = {}
    slow: list[tuple[Bot, dict[str, object]]] = []
    for bot, params in bots:
        if _is_dca(bot):
            from backtest.dca import run_dca

            choose_path(bot, path)  # raises on 'fast'
            # A DCA bot keeps its own book, so running it alone over its pairs gives what the
            # global order would.
            results[bot.name] = run_dca(bot, params, data, model)  # type: ignore[arg-type]
            continue
        assert isinstance(bot, Bot)
        if bot.symbol not in data:
            raise ValueError(f"bot {bot.name}: no candles for {bot.symbol}; symbols in the data: "
                             f"{', '.join(sorted(data)) or 'none'}")
        if choose_path(bot, path) == "fast":
            d = data[bot.symbol]
            results[bot.name] = _result(bot, d, run_fast(bot, d, model), "fast", params, model)
        else:
            slow.append((bot, params))
    if slow:
        for bot, params, eq in _run_bar(slow, data):
            results[bot.name] = _result(bot, data[bot.symbol], eq, "bar", params, model)
    return [results[b.name] for b, _ in bots]


def _run_bar(bots: Sequence[tuple[Bot, dict[str, object]]], data: dict[str, SymbolData]
             ) -> list[tuple[Bot, dict[str, object], np.ndarray]]:
    """Every candle of every symbol in one global time order, through Bot.on_candle."""
    symbols = sorted({b.symbol for b, _ in bots})
    by_symbol: dict[str, list[Bot]] = {s: [] for s in symbols}
    for b, _ in bots:
        by_symbol[b.symbol].append(b)
    candles = {s: data[s].candles() for s in symbols}
    equity = {b.name: np.empty(len(data[b.symbol]), dtype=np.float64) for b, _ in bots}
    index = dict.fromkeys(symbols, 0)
    for c in iter_merged(candles[s] for s in symbols):
        i = index[c.symbol]
        index[c.symbol] = i + 1
        for bot in by_symbol[c.symbol]:
            exe = bot.executor
            if isinstance(exe, BacktestExecutor):
                exe.at(c, data[c.symbol], i)
            bot.on_candle(c)
            bot.control_sim.settle(bot)  # type: ignore[attr-defined]
            equity[bot.name][i] = bot.equity()
    return [(b, p, equity[b.name]) for b, p in bots]


def run_config(app: AppConfig, data: dict[str, SymbolData], model: FillModel,
               bot_names: Sequence[str] | None = None, path: Path_ = "auto",
               params_override: dict[str, object] | None = None) -> list[BotResult]:
    """Build the configured bots (all enabled ones with data, or ``bot_names``) and run them."""
    cfgs = select_bots(app, data, bot_names)
    bots: list[tuple[AnyBot, dict[str, object]]] = []
    for cfg in cfgs:
        params = {**cfg.params, **(params_override or {})}
        cfg = cfg.model_copy(update={"params": params})
        if cfg.kind == "dca":
            from backtest.dca import build_dca_backtest_bot

            missing = [s for s in cfg.symbols if s not in data]
            if missing:
                raise ValueError(f"DCA bot {cfg.name}: no candles for {', '.join(missing)}; symbols in the data: "
                                 f"{', '.join(sorted(data)) or 'none'}")
            bots.append((build_dca_backtest_bot(cfg, app, model, data[cfg.symbols[0]].interval), params))
        else:
            if cfg.symbol not in data:
                raise ValueError(f"bot {cfg.name}: no candles for {cfg.symbol}; symbols in the data: "
                                 f"{', '.join(sorted(data)) or 'none'}")
            bots.append((build_backtest_bot(cfg, app, model, data[cfg.symbol].interval), params))
    return run_bots(bots, data, model, path)


def find_bots(app: AppConfig, names: Sequence[str]) -> list[BotConfig]:
    """The configured bots called ``names``, in that order; a ValueError names the unknown ones
    (and lists the bots there are)."""
    known = {b.name: b for b in app.bots}
    missing = [n for n in names if n not in known]
    if missing:
        raise ValueError(f"no bot named {', '.join(missing)}; bots: {', '.join(known) or 'none'}")
    return [known[n] for n in names]


def select_bots(app: AppConfig, data: dict[str, SymbolData], names: Sequence[str] | None) -> list[BotConfig]:
    if names:
        return find_bots(app, names)
    # A DCA bot is chosen when the data holds every one of its pairs.
    chosen = [b for b in app.bots if b.enabled and all(s in data for s in b.symbols)]
    if not chosen:
        raise ValueError(f"no enabled bot trades a symbol in the data ({', '.join(sorted(data)) or 'none'}); "
                         f"bots: {', '.join(f'{b.name} ({b.symbol})' for b in app.bots) or 'none'}")
    return chosen


# ---- lookahead detection ----------------------------------------------------------------
def bot_window(strategy: Strategy) -> int:
    """How many closed candles the Bot hands evaluate() (its bounded history)."""
    return history_window(strategy)


def signals_by_evaluate(strategy: Strategy, candles: Sequence[Candle], window: int | None = None) -> np.ndarray:
    """evaluate() on every closed prefix (the reference the vectorised form must equal); with
    ``window`` only the last ``window`` candles of each prefix, as the Bot passes them."""
    out = np.zeros(len(candles), dtype=np.int8)
    for i in range(strategy.warmup - 1, len(candles)):
        lo = 0 if window is None else max(0, i + 1 - window)
        side = strategy.evaluate(tuple(candles[lo: i + 1])).side
        out[i] = 1 if side is Side.BUY else -1 if side is Side.SELL else 0
    return out


def detect_lookahead(signal_fn: Callable[[SymbolData], np.ndarray], data: SymbolData,
                     cuts: Iterable[int]) -> list[int]:
    """Run ``signal_fn`` on the data truncated after each cut and on the full data: a causal
    strategy gives identical signals up to the cut. Returns the cuts where they differ."""
    full = signal_fn(data)
    bad = []
    for cut in cuts:
        part = signal_fn(data.head(cut))
        if not np.array_equal(part, full[:cut]):
            bad.append(cut)
    return bad

