"""``bot_manager.py strategy check``: the proofs a strategy (built-in or user) must pass before it trades.

On a candle series (a data file, or the seeded synthetic market):

1. **runs**: ``evaluate`` on every closed prefix, as a bot hands it (its bounded history, informative
   timeframes resampled by ``engine.informative``), raises nothing; an exception is reported at the line
   of the strategy's file where it was raised (reading ``candles[i + 1]`` past the last candle lands here);
2. **deterministic**: a second run of a fresh instance gives the same signals;
3. **no lookahead**: at several cuts, the signals up to the cut are unchanged when the candles after it
   are removed (truncation) or replaced by a shuffle of themselves (shuffling: same values, another
   order). A difference means the strategy read a future candle; it is reported at the line of the
   method that did (``evaluate`` or ``signals``) with the first candle whose signal changed;
4. **vectorised = evaluate**: when the strategy has a vectorised ``signals()``, it must equal
   ``evaluate`` on every closed prefix (what lets the backtester take its fast path).
"""
from __future__ import annotations

import inspect
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backtest.data import SymbolData, iso
from backtest.engine import bot_window, signals_by_evaluate
from core.types import Candle
from engine.informative import with_informative
from strategy.base import Strategy, is_vectorised
from strategy.registry import build_strategy, origin

__all__ = ["CheckReport", "check_strategy"]


@dataclass
class CheckReport:
    """What ``check_strategy`` found: ``passed`` lines (each proof that held) and ``problems``."""

    name: str
    origin: str
    candles: int
    vectorised: bool
    passed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _method_at(strategy: Strategy, method: str) -> str:
    """``file:line`` of ``strategy``'s method (the user's own file for a user strategy)."""
    inner = getattr(strategy, "inner", strategy)
    fn = getattr(type(inner), method, None)
    try:
        return f"{inspect.getsourcefile(fn)}:{inspect.getsourcelines(fn)[1]}"  # type: ignore[arg-type]
    except (TypeError, OSError):
        return f"{type(inner).__name__}.{method}"


def _raised_at(exc: BaseException, strategy: Strategy) -> str:
    """Where ``exc`` was raised: the innermost frame in the strategy's own file, else the innermost."""
    inner = getattr(strategy, "inner", strategy)
    try:
        own = inspect.getsourcefile(type(inner))
    except TypeError:
        own = None
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if own and f.filename == own] or frames
    f = mine[-1] if mine else None
    where = f"{f.filename}:{f.lineno}" if f else "?"
    return f"{where}: {type(exc).__name__}: {exc}"


def _shuffled_after(candles: Sequence[Candle], cut: int, rng: np.random.Generator) -> list[Candle]:
    """The candles with those after ``cut`` replaced by a shuffle of their OHLCV (times kept in order)."""
    head, rest = list(candles[:cut]), list(candles[cut:])
    order = rng.permutation(len(rest))
    out = head
    for c, j in zip(rest, order.tolist()):
        s = rest[j]
        out.append(Candle(c.symbol, c.open_time, s.open, s.high, s.low, s.close, s.volume, c.interval, c.market))
    return out


def _cuts(warmup: int, n: int, k: int) -> list[int]:
    lo = min(n - 1, warmup + 5)
    return sorted({int(x) for x in np.linspace(lo, n - 1, num=k)} - {0})


def _first_diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.flatnonzero(a != b)[0])


def _vector(strategy: Strategy, data: SymbolData) -> np.ndarray:
    return np.asarray(strategy.signals(data.opens, data.highs, data.lows, data.closes,  # type: ignore[attr-defined]
                                       data.volumes), dtype=np.int8)


def check_strategy(name: str, params: dict[str, Any] | None, data: SymbolData, cuts: int = 6,
                   seed: int = 0) -> CheckReport:
    """Run the proofs of the module docstring on strategy ``name`` with ``params`` over ``data``."""
    def make() -> Strategy:
        return with_informative(build_strategy(name, params or {}), data.interval)

    first = make()
    report = CheckReport(name, origin(name), len(data), is_vectorised(first))
    candles = data.candles()
    window = bot_window(first)
    rng = np.random.default_rng(seed)

    def by_evaluate(series: Sequence[Candle]) -> np.ndarray:
        return signals_by_evaluate(make(), series, window)

    try:
        ref = by_evaluate(candles)
    except Exception as exc:  # noqa: BLE001 - reported with its line
        report.problems.append(f"evaluate() raised at {_raised_at(exc, first)}")
        return report
    n_sig = int(np.count_nonzero(ref))
    report.passed.append(f"evaluate() ran on {len(candles)} closed prefixes: {n_sig} signals")
    if not np.array_equal(by_evaluate(candles), ref):
        report.problems.append(f"{_method_at(first, 'evaluate')}: evaluate() is not deterministic: a fresh "
                               "instance on the same candles gave other signals (it keeps state between calls)")
    else:
        report.passed.append("deterministic: a fresh instance gives the same signals")
    points = _cuts(first.warmup, len(candles), cuts)
    _lookahead(report, "evaluate", first, points, ref, data,
               lambda cut: by_evaluate(candles[:cut]),
               lambda cut: by_evaluate(_shuffled_after(candles, cut, rng)))
    if report.vectorised:
        try:
            vec = _vector(first, data)
        except Exception as exc:  # noqa: BLE001
            report.problems.append(f"signals() raised at {_raised_at(exc, first)}")
            return report
        _lookahead(report, "signals", first, points, vec, data,
                   lambda cut: _vector(make(), data.head(cut)),
                   lambda cut: _vector(make(), SymbolData.from_candles(_shuffled_after(candles, cut, rng))))
        if len(vec) != len(ref) or not np.array_equal(vec, ref):
            i = _first_diff(vec, ref) if len(vec) == len(ref) else 0
            report.problems.append(
                f"{_method_at(first, 'signals')}: signals() differs from evaluate() at candle {i} "
                f"({iso(int(data.times[i]))}): {int(vec[i]) if len(vec) > i else 'missing'} vs {int(ref[i])}; "
                "the fast backtest path would trade differently (set vectorised = False or fix signals())")
        else:
            report.passed.append(f"signals() equals evaluate() on all {len(ref)} candles")
    return report


def _lookahead(report: CheckReport, method: str, strategy: Strategy, points: list[int], full: np.ndarray,
               data: SymbolData, truncated: Callable[[int], np.ndarray], shuffled: Callable[[int], np.ndarray]
               ) -> None:
    for kind, run in (("removed", truncated), ("shuffled", shuffled)):
        for cut in points:
            try:
                part = run(cut)[:cut]
            except Exception as exc:  # noqa: BLE001
                report.problems.append(f"{method}() raised with the candles after {cut} {kind}: "
                                       f"{_raised_at(exc, strategy)}")
                return
            if not np.array_equal(part, full[:cut]):
                i = _first_diff(part, full[:cut])
                report.problems.append(
                    f"{_method_at(strategy, method)}: lookahead: {method}() signal at candle {i} "
                    f"({iso(int(data.times[i]))}) changes when the candles after {cut} are {kind}: it reads "
                    "candles that had not closed yet")
                return
        report.passed.append(f"no lookahead in {method}(): signals unchanged with the future {kind} "
                             f"({len(points)} cuts)")
