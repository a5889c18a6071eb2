"""Incremental indicators: O(1) running state updated once per closed candle, and the per-strategy
"steppers" that use it to answer ``evaluate(history)`` without recomputing from scratch.

The pure ``evaluate(candles)`` stays the reference. A built-in strategy opts in with a method
``stepper()`` returning a fresh ``Stepper``; a bot asks ``stepper_for(strategy)`` once and then calls
``stepper.signal(history)`` with its history deque on every closed candle. A strategy without
``stepper()`` (any user strategy that does not opt in) keeps the pure contract: the bot calls
``evaluate``.

Exactness. Running sums and recursive averages do not round like the reference (``numpy.mean`` of a
window, recursive indicators re-seeded at the start of a bounded tail), so a stepper only decides
what it can prove: it keeps an error bound for each running value against the reference's, and
whenever a decision could depend on that difference (a value within its bound of the threshold it is
compared with), or a signal fires, it calls the reference ``evaluate`` itself. A BUY or SELL is
therefore always the reference's own ``Signal``, bit for bit, and NONE is returned only when the
reference would return NONE; a NONE is one of the stepper's fixed Signals, made once, whose reason
names the indicators without their values (it is never recorded, and formatting the values on every
candle was more than a tenth of the step of bots that seldom trade). Signals are rare, so the reference runs on a small
fraction of candles (``Stepper.reference_calls`` counts them).

Shared answers. Bots running the same built-in strategy with the same parameters on the same series
(a strategy's ghost, paper and live bots side by side) ask the reference the same question on the same
candle. The built-in steppers declare that their strategy's ``evaluate`` reads nothing but the closes
of the last ``keep`` candles (``keep`` is its lookback, and its warm-up is shorter), so the answer is
kept under exactly that: the strategy's class and parameters and those closes (``Stepper.shared``, the
last ``SHARED_KEPT`` answers). Another bot's question with the same content gets the same Signal,
which nothing changes once made. A stepper that does not declare it (``closes_only = False``, the
default: a user's) always asks its own ``evaluate``.

    * SMA:  a rolling sum over a deque, re-summed exactly (``math.fsum``) every ``RESYNC`` updates so
            its rounding error stays below ``4 * k * eps * mean|x|`` (k < RESYNC + n updates);
    * EMA:  the recursion ``e = (1 - a) * e + a * x``; against the reference re-seeded at the start
            of its tail the difference is at most ``(1 - a)**m * R`` (m recursion steps after that
            seed, R the range of the closes involved), since both are convex combinations of them;
            the state is re-anchored to the reference every ``lookback`` candles so R stays local;
    * Wilder RSI / ATR: the same recursion with ``a = 1/p``; the RSI error follows from the average
            gain / loss errors d: ``|dRSI| <= 100 * d / (G + L - 2d)``.
    * ROC:  two closes of the history, the same float operations as the reference: exact.

``ENABLED = False`` turns every stepper off (bots call ``evaluate``): the benchmarks' reference.
"""
from __future__ import annotations

import math
import threading
from collections import deque
from itertools import islice
from typing import Any, ClassVar, Protocol, Sequence

import numpy as np

from core.types import Candle, Signal
from strategy.indicators import _smoothed, ema_last, rsi

__all__ = [
    "ENABLED",
    "RESYNC",
    "TOL",
    "RollingMean",
    "Stepper",
    "SupportsStepper",
    "Wilder",
    "stepper_for",
]

ENABLED = True
RESYNC = 256  # rolling sums are re-summed exactly after this many updates (bounded drift, amortised O(1))
# Relative slack for float rounding between a running value and the reference's (rounding differences
# are ~1e-13 relative at the largest windows; 1e-9 leaves a wide margin and costs few reference calls).
TOL = 1e-9
SHARED_KEPT = 2048  # reference answers kept for steppers of equal strategies (see the module docstring)
_SHARED_LOCK = threading.Lock()


class SupportsStepper(Protocol):
    """The optional protocol a strategy implements to opt in (see the module docstring)."""

    def stepper(self) -> "Stepper": ...


def stepper_for(strategy: object) -> "Stepper | None":
    """A fresh stepper for ``strategy`` if it opts in and steppers are enabled, else None. A subclass that
    overrides ``evaluate()`` without its own ``stepper()`` gets none: the stepper it inherits answers for
    its parent's evaluate()."""
    make = getattr(strategy, "stepper", None)
    if not ENABLED or not callable(make):
        return None
    mro = type(strategy).__mro__
    if next((c for c in mro if "evaluate" in c.__dict__), None) is not next(c for c in mro if "stepper" in c.__dict__):
        return None
    return make()  # type: ignore[no-any-return]


# ---- running indicators --------------------------------------------------------------------------
class RollingMean:
    """Mean of the last ``n`` values in O(1) per value (rolling sum, periodically re-summed exactly)."""

    __slots__ = ("n", "values", "total", "abs_total", "since")

    def __init__(self, n: int) -> None:
        self.n = n
        self.values: deque[float] = deque(maxlen=n)
        self.total = 0.0
        self.abs_total = 0.0
        self.since = 0

    def push(self, x: float) -> None:
        v = self.values
        if len(v) == self.n:
            old = v[0]
            self.total -= old
            self.abs_total -= old if old >= 0.0 else -old
        v.append(x)
        self.total += x
        self.abs_total += x if x >= 0.0 else -x
        self.since += 1
        if self.since >= RESYNC:
            self.total = math.fsum(v)
            self.abs_total = math.fsum(abs(a) for a in v)
            self.since = 0

    @property
    def ready(self) -> bool:
        return len(self.values) == self.n

    @property
    def value(self) -> float:
        return self.total / self.n

    @property
    def error(self) -> float:
        """A bound on |value - numpy.mean(last n)|, with the TOL margin."""
        return TOL * (abs(self.abs_total) / self.n)


class Wilder:
    """A recursive average ``y = (1 - a) * y + a * x`` seeded with the mean of its first ``n`` inputs
    (EMA: a = 2/(n+1); Wilder RSI/ATR: a = 1/n), the same expression as ``indicators._smoothed``."""

    __slots__ = ("n", "alpha", "k", "value", "_seed")

    def __init__(self, n: int, alpha: float) -> None:
        self.n, self.alpha, self.k = n, alpha, 1.0 - alpha
        self.value: float | None = None
        self._seed: list[float] = []

    def push(self, x: float) -> None:
        if self.value is None:
            self._seed.append(x)
            if len(self._seed) == self.n:
                self.value = sum(self._seed) / self.n
                self._seed = []
            return
        self.value = self.k * self.value + self.alpha * x

    def set(self, value: float) -> None:
        self.value = value
        self._seed = []


# ---- steppers ------------------------------------------------------------------------------------
class Stepper:
    """Running state for one strategy, kept in step with a bot's history (see the module docstring).

    ``signal(history)`` recognises a history that moved by one candle since the last call (O(1)
    update); any other history (the first call, a warm-up, a restore) rebuilds the state from it.
    """

    # True: the strategy's evaluate() reads only the closes of the last ``keep`` candles (and needs no
    # more than ``keep`` to warm up), so its answers are shared by content (see the module docstring)
    closes_only = False
    shared: ClassVar[dict[tuple[object, ...], Signal]] = {}

    def __init__(self, strategy: Any, keep: int) -> None:
        self.strategy = strategy
        self.keep = keep
        self.last_time: int | None = None
        self.last_n = 0
        self.last_signal: Signal | None = None
        self.reference_calls = 0
        self.shared_hits = 0  # reference calls answered by another stepper's evaluate() of the same content
        self.calls = 0
        self._kind: tuple[object, ...] | None = None
        if self.closes_only:
            self._kind = (type(strategy), strategy.params.model_dump_json())

    def signal(self, history: Sequence[Candle]) -> Signal:
        n = len(history)
        if n == 0:
            return self._reference(history)
        last = history[-1]
        if last.open_time == self.last_time and self.last_signal is not None:
            return self.last_signal
        self.calls += 1
        # one more candle on the same history (grown by one, or full and slid by one)
        if self.last_time is not None and n - self.last_n in (0, 1) and n >= 2 \
                and history[-2].open_time == self.last_time:
            self.push(last.close)
        else:
            self.rebuild([c.close for c in islice(history, max(0, n - self.keep), n)])
        self.last_time, self.last_n = last.open_time, n
        sig = self.decide(n) if n >= self.strategy.warmup else None
        self.last_signal = sig if sig is not None else self._reference(history)
        return self.last_signal

    def _reference(self, history: Sequence[Candle]) -> Signal:
        self.reference_calls += 1
        if self._kind is None:
            return self.strategy.evaluate(tuple(history))  # type: ignore[no-any-return]
        n = len(history)
        key = (self._kind, tuple([c.close for c in islice(history, max(0, n - self.keep), n)]))
        shared = Stepper.shared
        sig = shared.get(key)
        if sig is not None:
            self.shared_hits += 1
            return sig
        sig = self.strategy.evaluate(tuple(history))
        with _SHARED_LOCK:  # bots on other threads (a backtest service) may evict at the same time
            while len(shared) >= SHARED_KEPT:
                del shared[next(iter(shared))]  # the oldest
            shared[key] = sig
        return sig

    # subclasses
    def rebuild(self, closes: list[float]) -> None:
        raise NotImplementedError

    def push(self, close: float) -> None:
        raise NotImplementedError

    def decide(self, n: int) -> Signal | None:
        """NONE when provably the reference's answer; None to ask the reference."""
        raise NotImplementedError


def _value(x: float | None) -> float:
    return math.nan if x is None else x


def _cross_none(d_prev: float, tol_prev: float, d_now: float, tol_now: float) -> bool:
    """True when provably no cross: both differences clear of zero by their bounds, same sign
    (the reference's rule: BUY if prev <= 0 < now, SELL if prev >= 0 > now)."""
    return abs(d_prev) > tol_prev and abs(d_now) > tol_now and (d_prev < 0.0) == (d_now < 0.0)


def _no_cross(label: str, p: Any) -> tuple[Signal, Signal]:
    """A crossover stepper's NONE answers, fast above and below slow, made once."""
    return tuple(Signal.none(f"no cross: {label}({p.fast}) {w} {label}({p.slow})")  # type: ignore[return-value]
                 for w in ("above", "below"))


class SmaCrossStepper(Stepper):
    """``CrossoverStrategy`` (sma): two rolling means, now and on the previous candle."""

    closes_only = True

    def __init__(self, strategy: Any) -> None:
        super().__init__(strategy, strategy.lookback)
        p = strategy.params
        self.fast_n, self.slow_n = p.fast, p.slow
        self.fast, self.slow = RollingMean(p.fast), RollingMean(p.slow)
        self.prev: tuple[float, float] | None = None  # (fast - slow, its bound) on the previous candle
        self.above, self.below = _no_cross("SMA", p)

    def rebuild(self, closes: list[float]) -> None:
        self.fast, self.slow = RollingMean(self.fast_n), RollingMean(self.slow_n)
        self.prev = None
        for x in closes:
            self.push(x)

    def push(self, close: float) -> None:
        f, s = self.fast, self.slow
        if len(s.values) == s.n:
            self.prev = (f.total / f.n - s.total / s.n, TOL * (f.abs_total / f.n + s.abs_total / s.n))
        f.push(close)
        s.push(close)

    def decide(self, n: int) -> Signal | None:
        f, s, prev = self.fast, self.slow, self.prev
        if prev is None or len(s.values) < s.n:
            return None
        fast, slow = f.total / f.n, s.total / s.n
        if not _cross_none(prev[0], prev[1], fast - slow, TOL * (f.abs_total / f.n + s.abs_total / s.n)):
            return None
        return self.above if fast > slow else self.below


class EmaCrossStepper(Stepper):
    """``CrossoverStrategy`` (ema): two recursive EMAs, re-anchored to the reference every lookback."""

    closes_only = True

    def __init__(self, strategy: Any) -> None:
        super().__init__(strategy, strategy.lookback)
        p = strategy.params
        self.fn, self.sn = p.fast, p.slow
        self.kf, self.ks = 1.0 - 2.0 / (p.fast + 1), 1.0 - 2.0 / (p.slow + 1)
        self.closes: deque[float] = deque(maxlen=self.keep)
        self.ef = self.es = self.efp = self.esp = 0.0
        self.hi = self.lo = 0.0
        self.since = 0
        self.above, self.below = _no_cross("EMA", p)

    def rebuild(self, closes: list[float]) -> None:
        self.closes.clear()
        self.closes.extend(closes)
        self._anchor()

    def _anchor(self) -> None:
        # exactly the reference's values (the same calls on the same tail)
        c = np.fromiter(self.closes, dtype=np.float64, count=len(self.closes))
        self.since = 0
        self.ef = self.es = self.efp = self.esp = math.nan
        if len(c) > self.sn:
            self.ef, self.es = _value(ema_last(c, self.fn)), _value(ema_last(c, self.sn))
            self.efp, self.esp = _value(ema_last(c[:-1], self.fn)), _value(ema_last(c[:-1], self.sn))
        self.hi, self.lo = (float(c.max()), float(c.min())) if len(c) else (0.0, 0.0)

    def push(self, close: float) -> None:
        self.closes.append(close)
        self.since += 1
        if self.since >= self.keep or math.isnan(self.es):
            self._anchor()
            return
        self.efp, self.esp = self.ef, self.es
        a_f, a_s = 1.0 - self.kf, 1.0 - self.ks
        self.ef = self.kf * self.ef + a_f * close
        self.es = self.ks * self.es + a_s * close
        if close > self.hi:
            self.hi = close
        if close < self.lo:
            self.lo = close

    def decide(self, n: int) -> Signal | None:
        m = len(self.closes)  # the reference's tail length
        r = self.hi - self.lo
        noise = TOL * max(abs(self.hi), abs(self.lo))
        tol_now = (self.kf ** (m - self.fn) + self.ks ** (m - self.sn)) * r + noise
        tol_prev = (self.kf ** (m - 1 - self.fn) + self.ks ** (m - 1 - self.sn)) * r + noise
        if math.isnan(self.es) or not _cross_none(self.efp - self.esp, tol_prev, self.ef - self.es, tol_now):
            return None
        return self.above if self.ef > self.es else self.below


class MomentumStepper(Stepper):
    """``MomentumStrategy``: ROC from two closes of the history, the reference's float operations."""

    closes_only = True

    def __init__(self, strategy: Any) -> None:
        super().__init__(strategy, strategy.params.window + 2)
        self.closes: deque[float] = deque(maxlen=self.keep)
        p = strategy.params
        self.none = Signal.none(f"no threshold cross: ROC({p.window}) (threshold ±{p.threshold_pct:g}%)")

    def rebuild(self, closes: list[float]) -> None:
        self.closes.clear()
        self.closes.extend(closes)

    def push(self, close: float) -> None:
        self.closes.append(close)

    def decide(self, n: int) -> Signal | None:
        c, w = self.closes, self.strategy.params.window
        if len(c) < w + 2 or not (c[-1 - w] > 0.0 and c[-2 - w] > 0.0):
            return None
        now = 100.0 * (c[-1] / c[-1 - w] - 1.0)
        prev = 100.0 * (c[-2] / c[-2 - w] - 1.0)
        thr = self.strategy.params.threshold_pct
        if prev <= thr < now or prev >= -thr > now:
            return None  # a signal: the reference builds it
        return self.none


class RsiStepper(Stepper):
    """``RsiReversionStrategy``: Wilder average gain / loss, re-anchored to the reference every lookback."""

    closes_only = True

    def __init__(self, strategy: Any) -> None:
        super().__init__(strategy, strategy.lookback)
        self.p = strategy.params.period
        self.k = 1.0 - 1.0 / self.p
        self.closes: deque[float] = deque(maxlen=self.keep)
        self.g = self.l = math.nan
        self.gl_prev = (math.nan, math.nan)
        self.now = self.prev = math.nan
        self.dmax = 0.0
        self.since = 0
        sp = strategy.params
        self.none = Signal.none(f"no reversal: RSI({self.p}) (bands {sp.oversold:g}/{sp.overbought:g})")

    def rebuild(self, closes: list[float]) -> None:
        self.closes.clear()
        self.closes.extend(closes)
        self._anchor()

    def _anchor(self) -> None:
        c = np.fromiter(self.closes, dtype=np.float64, count=len(self.closes))
        self.since = 0
        self.g = self.l = self.now = self.prev = math.nan
        self.dmax = float(np.abs(np.diff(c)).max()) if len(c) > 1 else 0.0
        if len(c) < self.p + 2:
            return
        d = np.diff(c)
        self.g = float(_smoothed(np.maximum(d, 0.0), self.p, 1.0 / self.p)[-1])
        self.l = float(_smoothed(np.maximum(-d, 0.0), self.p, 1.0 / self.p)[-1])
        r = rsi(c, self.p)
        self.now, self.prev = float(r[-1]), float(r[-2])

    def push(self, close: float) -> None:
        c = self.closes
        last = c[-1] if c else close
        c.append(close)
        self.since += 1
        if self.since >= self.keep or math.isnan(self.g):
            self._anchor()
            return
        d = close - last
        if abs(d) > self.dmax:
            self.dmax = abs(d)
        a = 1.0 / self.p
        self.gl_prev = (self.g, self.l)
        self.g = self.k * self.g + a * max(d, 0.0)
        self.l = self.k * self.l + a * max(-d, 0.0)
        total = self.g + self.l
        self.prev, self.now = self.now, (100.0 * self.g / total if total > 0 else 50.0)

    def _bound(self, steps: int, g: float, l: float) -> float:
        delta = self.k ** max(steps, 0) * self.dmax + TOL * self.dmax
        s = g + l
        if s <= 2.0 * delta:
            return math.inf
        return 100.0 * delta / (s - 2.0 * delta) + 1e-7

    def decide(self, n: int) -> Signal | None:
        if math.isnan(self.now) or math.isnan(self.prev):
            return None
        m = len(self.closes) - 1 - self.p  # recursion steps after the reference's seed
        tol_now = self._bound(m, self.g, self.l)
        # just anchored: prev is the reference's own value (rounding only); else its own bound
        tol_prev = tol_now if self.since == 0 else self._bound(m - 1, *self.gl_prev)
        sp = self.strategy.params
        for level in (sp.oversold, sp.overbought):
            if abs(self.now - level) <= tol_now or abs(self.prev - level) <= tol_prev:
                return None
        now, prev = self.now, self.prev
        if prev <= sp.oversold < now or prev >= sp.overbought > now:
            return None
        return self.none
