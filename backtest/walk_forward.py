"""Walk-forward optimisation: optimise on a train window, judge the best trial on the unseen window after it.

The bot's candles are cut into K+1 equal folds by bar count (``windows``). Window i (1..K) tests on
fold i; it trains on

* ``rolling`` (the default): fold i-1 only, so every train window has the same length and old
  regimes fall out;
* ``anchored``: folds 0..i-1, growing from the start of the data.

Each window is its own Optuna study (``<study>-w<i>`` in the study's file, resumable like any),
then its best trial is backtested on the test fold alone (the strategy warms up inside the fold,
so the first ``warmup`` candles of a fold cannot trade). The out-of-sample result of each window
and of their concatenation (each fold's equity curve chained onto the last) is reported.

Overfitting flag (``COLLAPSE_RATIO``): a window's best trial *collapses* when its in-sample Sharpe
is positive and its out-of-sample Sharpe is below half of it (``oos < 0.5 * is``, which includes
every negative out-of-sample Sharpe). The report also gives the walk-forward efficiency, mean
OOS Sharpe / mean IS Sharpe.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from backtest.data import SymbolData, iso
from backtest.engine import run_config
from backtest.report import build_report, daily_points
from backtest.trials import RunContext, window_data
from core import metrics
from core.types import INTERVAL_MS, EquityPoint

COLLAPSE_RATIO = 0.5
MIN_FOLD_DAYS = 7  # a fold's Sharpe is taken on daily returns: fewer days say nothing
MODES = ("rolling", "anchored")


@dataclass(slots=True)
class WindowSpec:
    index: int  # 1..K
    train: tuple[int, int]  # [start_ms, end_ms)
    test: tuple[int, int]
    train_bars: int
    test_bars: int


def windows(data: SymbolData, k: int, mode: str, min_fold_bars: int) -> list[WindowSpec]:
    """K train/test windows over ``data`` (see the module docstring); ValueError when a fold would be
    shorter than ``min_fold_bars`` (a strategy must warm up and trade inside it)."""
    if k < 1:
        raise ValueError(f"--walk-forward {k}: give at least 1 window")
    if mode not in MODES:
        raise ValueError(f"--wf-mode {mode!r}: one of {', '.join(MODES)}")
    n = len(data)
    fold = n // (k + 1)
    if fold < min_fold_bars:
        raise ValueError(f"--walk-forward {k}: {n:,} bars make {k + 1} folds of {fold:,} bars; each fold needs at "
                         f"least {min_fold_bars:,} (the strategy's warm-up at the top of the space, twice): use "
                         "fewer windows or more data")
    days = (int(data.times[fold - 1]) - int(data.times[0])) / 86_400_000
    if days < MIN_FOLD_DAYS:
        raise ValueError(f"--walk-forward {k}: {k + 1} folds of {fold:,} {data.interval} bars span {days:.1f} days "
                         f"each; a fold needs at least {MIN_FOLD_DAYS} days (its Sharpe is taken on daily returns): "
                         "use fewer windows or more data")
    edges = [int(data.times[i * fold]) for i in range(k + 1)] + [int(data.times[-1]) + 1]
    out = []
    for i in range(1, k + 1):
        lo = 0 if mode == "anchored" else i - 1
        out.append(WindowSpec(i, (edges[lo], edges[i]), (edges[i], edges[i + 1]), (i - lo) * fold,
                              fold if i < k else n - k * fold))
    return out


@dataclass(slots=True)
class WindowResult:
    index: int
    train: list[str | None]
    test: list[str | None]
    best_trial: int | None
    params: dict[str, Any]
    in_sample: dict[str, Any]
    out_of_sample: dict[str, Any]
    collapsed: bool
    note: str = ""


@dataclass(slots=True)
class WalkForwardReport:
    study: str
    mode: str
    objective: str
    windows: list[WindowResult] = field(default_factory=list)
    oos_concatenated: dict[str, Any] = field(default_factory=dict)
    efficiency: float | None = None
    collapsed_windows: list[int] = field(default_factory=list)
    rule: str = (f"collapse: in-sample Sharpe > 0 and out-of-sample Sharpe < {COLLAPSE_RATIO} x in-sample Sharpe")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def collapsed(is_sharpe: float | None, oos_sharpe: float | None) -> bool:
    if is_sharpe is None or is_sharpe <= 0:
        return False
    return oos_sharpe is None or oos_sharpe < COLLAPSE_RATIO * is_sharpe


def _headline(rep: dict[str, Any]) -> dict[str, Any]:
    return {"total_return_pct": rep.get("total_return_pct"), "sharpe": rep.get("sharpe"),
            "sortino": rep.get("sortino"), "max_drawdown_pct": (rep.get("max_drawdown") or {}).get("max_drawdown_pct"),
            "trades": rep.get("trades"), "win_rate_pct": rep.get("win_rate_pct"), "expectancy": rep.get("expectancy")}


def out_of_sample(ctx: RunContext, params: dict[str, Any], test: tuple[int, int]) -> tuple[dict[str, Any], Any]:
    """(headline metrics, BotResult) of the bot with ``params`` on the test window alone."""
    res = run_config(ctx.app, window_data(ctx.data, test), ctx.model, [ctx.bot], params_override=params)[0]
    return _headline(build_report(res, include_trades=False)), res


def concatenate(results: list[Any]) -> dict[str, Any]:
    """One out-of-sample curve from the test windows' equity curves, each chained onto the last
    (its returns compound), and its figures: total return, Sharpe, Sortino, max drawdown, trades."""
    if not results:
        return {}
    times, curve, level = [], [], 1.0
    trades = 0
    for r in results:
        if r.bars == 0:
            continue
        rel = np.concatenate(([1.0], r.equity / r.starting_balance))
        t = np.concatenate(([int(r.times[0]) - INTERVAL_MS[r.interval]], r.times))
        times.append(t if not times else t[1:])
        curve.append((level * rel) if not curve else (level * rel)[1:])
        level *= float(rel[-1])
        trades += len(r.trades)
    t_all, eq = np.concatenate(times), np.concatenate(curve)
    off = INTERVAL_MS[results[0].interval]
    first = EquityPoint(int(t_all[0]) + off, float(eq[0]))
    rets = metrics.daily_returns([first, *daily_points(t_all[1:], eq[1:], off)])
    return {"start": iso(int(t_all[1])), "end": iso(int(t_all[-1]) + off), "bars": int(len(eq) - 1),
            "total_return_pct": (level - 1.0) * 100.0, "sharpe": _finite(metrics.sharpe(rets)),
            "sortino": _finite(metrics.sortino(rets)),
            "max_drawdown_pct": metrics.max_drawdown(eq.tolist()).max_dd_pct, "trades": trades}


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def finish(report: WalkForwardReport) -> WalkForwardReport:
    """Efficiency and the list of collapsed windows, from the windows' figures."""
    ins = [w.in_sample.get("sharpe") for w in report.windows]
    oos = [w.out_of_sample.get("sharpe") for w in report.windows]
    if ins and all(x is not None for x in ins + oos):
        mean_is = float(np.mean(ins))
        report.efficiency = float(np.mean(oos)) / mean_is if mean_is > 0 else None
    report.collapsed_windows = [w.index for w in report.windows if w.collapsed]
    return report


def report_text(rep: WalkForwardReport) -> str:
    def f(x: Any, spec: str = ".2f") -> str:
        return "n/a" if x is None else format(x, spec)

    lines = [f"walk-forward ({rep.mode}, {len(rep.windows)} windows, objective {rep.objective})",
             f"{'win':>3}  {'train':<23} {'test':<23} {'params':<28} {'IS sharpe':>9} {'OOS sharpe':>10} "
             f"{'OOS ret %':>9} {'OOS trades':>10}"]
    for w in rep.windows:
        p = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in w.params.items()) or "-"
        lines.append(f"{w.index:>3}  {(w.train[0] or '')[:10]}..{(w.train[1] or '')[:10]} "
                     f"{(w.test[0] or '')[:10]}..{(w.test[1] or '')[:10]} {p[:28]:<28} "
                     f"{f(w.in_sample.get('sharpe')):>9} {f(w.out_of_sample.get('sharpe')):>10} "
                     f"{f(w.out_of_sample.get('total_return_pct')):>9} {w.out_of_sample.get('trades') or 0:>10}"
                     + ("  COLLAPSED" if w.collapsed else "") + (f"  ({w.note})" if w.note else ""))
    c = rep.oos_concatenated
    lines.append(f"out-of-sample, concatenated: return {f(c.get('total_return_pct'))} %  Sharpe {f(c.get('sharpe'))}  "
                 f"max drawdown {f(c.get('max_drawdown_pct'))} %  trades {c.get('trades', 0)}")
    lines.append(f"walk-forward efficiency (mean OOS Sharpe / mean IS Sharpe): {f(rep.efficiency)}")
    if rep.collapsed_windows:
        lines.append(f"WARNING: the best trial collapsed out of sample in window(s) "
                     f"{', '.join(map(str, rep.collapsed_windows))} ({rep.rule}): likely overfit")
    return "\n".join(lines)
