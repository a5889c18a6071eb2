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
reads neither the signal's confidence nor the candle history (``not_vectorisable``). The
simulated clock is the candles' own time: a bot's "now" is its candle's close.

DCA bots (``kind: dca``) are the worker's ``engine.dca_bot.DcaBot``; ``backtest.dca`` builds
and runs them on the ``bar`` path only (their resting orders are matched candle by candle), one
bot at a time over all of its pairs.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Union

import numpy as np

from backtest.fast import run_fast
from backtest.fills import BacktestExecutor, FillModel
from core.types import Candle, Mode, Side, Trade, TradingState
from engine.bot import Bot
from market.replay import iter_merged, load_candles
from market.validate import ValidationReport
from risk.states import is_more_restrictive
from settings import AppConfig, BotConfig
from strategy.base import Strategy, history_window, is_vectorised

if TYPE_CHECKING:
    from backtest.dca import DealRow
    from engine.dca_bot import DcaBot

AnyBot = Union[Bot, "DcaBot"]
Path_ = Literal["auto", "fast", "bar"]
DATA_SUFFIXES = (".csv", ".zip")


@dataclass(slots=True)
class SymbolData:
    """One symbol's candles as numpy columns (time-ordered, validated)."""

    symbol: str
    interval: str
    times: np.ndarray  # open_time, epoch ms, int64
    opens: np.ndarray
    highs: np.ndarray
    lows: np.ndarray
    closes: np.ndarray
    volumes: np.ndarray
    _candles: list[Candle] | None = None

    def __len__(self) -> int:
        return len(self.times)

    @classmethod
    def from_candles(cls, candles: Sequence[Candle]) -> "SymbolData":
        if not candles:
            raise ValueError("no candles")
        sym, iv = candles[0].symbol, candles[0].interval
        cols = np.array([(c.open, c.high, c.low, c.close, c.volume) for c in candles], dtype=np.float64)
        times = np.fromiter((c.open_time for c in candles), dtype=np.int64, count=len(candles))
        out = cls(sym, iv, times, *(np.ascontiguousarray(cols[:, k]) for k in range(5)))
        out._candles = list(candles)
        return out

    def candle(self, i: int) -> Candle:
        if self._candles is not None:
            return self._candles[i]
        return Candle(self.symbol, int(self.times[i]), float(self.opens[i]), float(self.highs[i]),
                      float(self.lows[i]), float(self.closes[i]), float(self.volumes[i]), self.interval)

    def candles(self) -> list[Candle]:
        if self._candles is None:
            self._candles = [
                Candle(self.symbol, t, o, h, lo, c, v, self.interval)
                for t, o, h, lo, c, v in zip(self.times.tolist(), self.opens.tolist(), self.highs.tolist(),
                                             self.lows.tolist(), self.closes.tolist(), self.volumes.tolist())
            ]
        return self._candles

    def between(self, start_ms: int | None = None, end_ms: int | None = None) -> "SymbolData":
        """Candles with start_ms <= open_time < end_ms (None: unbounded)."""
        a = 0 if start_ms is None else int(np.searchsorted(self.times, start_ms, "left"))
        b = len(self) if end_ms is None else int(np.searchsorted(self.times, end_ms, "left"))
        out = SymbolData(self.symbol, self.interval, self.times[a:b], self.opens[a:b], self.highs[a:b],
                         self.lows[a:b], self.closes[a:b], self.volumes[a:b])
        if self._candles is not None:
            out._candles = self._candles[a:b]
        return out

    def head(self, n: int) -> "SymbolData":
        """The first n candles (used by the lookahead detector)."""
        return self.between(None, int(self.times[n]) if n < len(self) else None)


@dataclass(slots=True)
class LoadedData:
    """Candles per symbol plus what validation found in each file."""

    symbols: dict[str, SymbolData]
    reports: list[tuple[str, ValidationReport]] = field(default_factory=list)


def data_files(path: str | Path) -> list[Path]:
    """A file, or every .csv/.zip under a directory (recursively, sorted)."""
    p = Path(path)
    if p.is_dir():
        return sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in DATA_SUFFIXES)
    if not p.exists():
        raise FileNotFoundError(f"no such data file or directory: {p}")
    return [p]


def load_data(paths: Iterable[str | Path], start_ms: int | None = None, end_ms: int | None = None,
              symbols: Iterable[str] | None = None, interval: str | None = None) -> LoadedData:
    """Load candle files (market.replay.load_candles), merge files of one symbol (later files
    win on duplicate times), keep [start_ms, end_ms). ``symbols`` restricts what is kept;
    ``interval`` skips files of other intervals (needed when a directory holds several)."""
    wanted = set(symbols) if symbols is not None else None
    by_symbol: dict[str, dict[int, Candle]] = {}
    intervals: dict[str, str] = {}
    reports: list[tuple[str, ValidationReport]] = []
    for path in paths:
        res = load_candles(path)
        if (wanted is not None and not wanted.intersection(res.symbols)) or (interval and res.interval != interval):
            continue
        reports.append((str(path), res.report))
        for c in res.candles:
            if wanted is not None and c.symbol not in wanted:
                continue
            if intervals.setdefault(c.symbol, c.interval) != c.interval:
                raise ValueError(f"{path}: {c.symbol} is {c.interval} here but {intervals[c.symbol]} elsewhere; "
                                 "pick one with --interval")
            by_symbol.setdefault(c.symbol, {})[c.open_time] = c
    out: dict[str, SymbolData] = {}
    for sym, rows in by_symbol.items():
        series = [rows[t] for t in sorted(rows)]
        data = SymbolData.from_candles(series).between(start_ms, end_ms)
        if len(data):
            out[sym] = data
    return LoadedData(out, reports)


# Limits the risk monitor acts on or feeds (trading-state moves, last entry time); a bot with
# none of them gets no monitor, since one could not change any decision (and costs per event).
MONITOR_LIMITS = ("daily_loss_value", "daily_loss_pct", "weekly_loss_value", "weekly_loss_pct",
                  "max_drawdown_pct", "max_consecutive_losses", "min_entry_interval_s")
# ... of which these read the mark-to-market equity (the fast path must look between events).
EQUITY_LIMITS = ("daily_loss_value", "daily_loss_pct", "weekly_loss_value", "weekly_loss_pct", "max_drawdown_pct")


@dataclass(slots=True)
class RiskEvent:
    """A risk-monitor breach during a backtest, as the worker would audit it."""

    time: int  # the close of the candle it happened on (epoch ms)
    rule: str
    state: str  # the bot's trading state after it
    reason: str
    flattened: bool


@dataclass(slots=True)
class BacktestControl:
    """The bot's trading state inside a backtest: what ``state_of`` returns. Starts ACTIVE; only
    risk breaches move it, and only ever tighter (nobody resumes a bot mid-backtest)."""

    state: TradingState = TradingState.ACTIVE
    events: list[RiskEvent] = field(default_factory=list)

    def state_of(self, _bot: AnyBot) -> TradingState:
        return self.state

    def on_breach(self, bot: AnyBot, rule: str, state: TradingState, reason: str, flatten: bool) -> None:
        """engine.worker.Worker.on_breach, minus Redis: flatten if asked, then tighten."""
        if flatten:
            bot.flatten(f"risk: {rule}")
        if is_more_restrictive(state, self.state):
            self.state = state
        self.events.append(RiskEvent(bot.last_candle_time + bot.interval_ms, rule, self.state.value, reason, flatten))


def needs_monitor(bot: AnyBot) -> bool:
    lim = bot.risk.limits
    sizing = getattr(bot, "sizing", None)  # DCA bots size by their settings, not a sizing policy
    return any(getattr(lim, k) is not None for k in MONITOR_LIMITS) or bool(sizing and sizing.scale_by_drawdown)


def build_sim_bot(cfg: BotConfig, app: AppConfig, model: FillModel, interval: str,
                  control: BacktestControl | None = None, paper: dict[str, object] | None = None,
                  **build_kw: object) -> AnyBot:
    """What every backtest bot (signal or DCA) shares: the configured bot built by the worker's own
    ``engine.worker.build_bot`` as a paper bot (whatever its configured mode), with the fill
    model's fee and slippage, the run's interval and a ``BacktestControl`` as its trading state.

    The bot gets the paper bot's ``risk.monitor.RiskMonitor``, wired to ``BacktestControl.on_breach``
    (when one of ``MONITOR_LIMITS`` is set, else none: it could not change a decision), so a
    daily/weekly loss, drawdown or losing-streak breach pauses or halts (and flattens) the backtest
    as it would the paper bot. A live bot keeps its own (tighter) limits.

    ``control``: the trading state to use (a new one by default; ``bot.control_sim`` holds it);
    ``paper``: more ``app.paper`` settings; ``build_kw``: more ``build_bot`` arguments."""
    from engine.worker import build_bot  # the worker module pulls in redis; import it late

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


@dataclass(slots=True)
class BotResult:
    """What one bot did over the data."""

    name: str
    symbol: str
    strategy: str
    params: dict[str, object]
    interval: str
    path: str  # "fast" or "bar"
    starting_balance: float
    times: np.ndarray  # candle open times
    closes: np.ndarray
    equity: np.ndarray  # equity at each candle's close
    trades: list[Trade]
    signals: list[tuple[int, Side, bool]]  # (candle open_time, side, acted)
    fees_paid: float
    open_quantity: float
    open_entry: float
    open_since: int
    orders_sent: int
    orders_expired: int
    denials: dict[str, int]
    fill_model: FillModel
    data: SymbolData  # the candles it ran on (plots)
    trading_state: str = "ACTIVE"  # at the end (risk breaches move it)
    risk_events: list[RiskEvent] = field(default_factory=list)
    # DCA bots (backtest.dca): several pairs, a deals table. For them ``times`` is the union of
    # the pairs' candle times, ``closes`` the equal-weight buy-and-hold index of the pairs (the
    # pair's own closes for one pair) and ``data``/``open_*`` the first pair's.
    kind: str = "signal"
    symbols: list[str] = field(default_factory=list)
    deals: list["DealRow"] = field(default_factory=list)
    dca_settings: dict[str, object] | None = None
    notes: list[str] = field(default_factory=list)  # run settings that did not apply, a books mismatch

    @property
    def bars(self) -> int:
        return len(self.times)


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
        risk_events=list(control.events) if control else [],
    )


def _is_dca(bot: AnyBot) -> bool:
    from engine.dca_bot import DcaBot

    return isinstance(bot, DcaBot)


def not_vectorisable(bot: Bot) -> str | None:
    """Why the fast path would not run ``bot`` exactly as the bar path (and paper) do; None if it would.

    The fast path hands ``Bot.on_event`` vectorised signals, which carry no confidence (0.0), and
    keeps no candle history, so sizing that reads either would size entries differently."""
    if not is_vectorised(bot.strategy):
        return f"{bot.strategy.name}: no exact vectorised signals"
    if bot.sizing.scale_by_confidence:
        return (f"{bot.name}: sizing.scale_by_confidence reads each signal's confidence, which the vectorised "
                "signals do not carry")
    if bot.sizing.kind == "atr":
        return f"{bot.name}: sizing kind 'atr' reads the candle history, which the fast path does not keep"
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


def parse_time(text: str | None) -> int | None:
    """'2024-01-31', '2024-01-31T12:00' or epoch ms -> epoch ms (UTC)."""
    if text is None or text == "":
        return None
    if text.isdigit():
        return int(text)
    import pandas as pd

    ts = pd.Timestamp(text)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value // 1_000_000)

