"""Market regimes: a rule-based classifier on closed candles, and ``regime_switch``, a strategy that trades
another strategy per regime.

**The rule** (on the candles handed in, oldest first; the last one just closed):

1. *high_volatility*: ATR(``atr_period``) / close, ranked among its last ``vol_window`` values, is at or
   above the ``high_vol_pct`` percentile;
2. else *trending_up* / *trending_down*: ADX(``adx_period``, Wilder) >= ``adx_trend``, up when +DI > -DI;
3. else *ranging*.

ADX, ATR percentile and the DI direction rather than a hidden Markov model (hmmlearn): the rule needs no
fitting, so the worker and a backtest classify the same candles alike with nothing to train or persist,
each regime can be explained by two numbers, and it runs in microseconds per candle. An HMM's states
depend on the fitting window and its random start, and are not labelled (which state is "trend"?).

``regime_switch`` classifies each closed candle and hands the candles to the strategy mapped to the regime
(``strategies``; ``default`` for the rest; none: no signal). The signal carries the regime
(``Signal.regime``): the bot's signal policy scales the entry's size by regime (``signals.regime_size``)
and the temperature by ``temperature.regime_factor``, and each trade records the regime it opened in.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.types import Candle, Signal
from core.validation import StrictNumbers, format_errors
from strategy.base import Strategy, history_needed, tail
from strategy.indicators import FloatArray, _smoothed, atr, true_range

__all__ = ["REGIMES", "RegimeConfig", "RegimeSwitchParams", "RegimeSwitchStrategy", "classify"]

REGIMES = ("trending_up", "trending_down", "ranging", "high_volatility")
# How regime_switch builds the strategies it maps to: strategy.registry.build_strategy, handed over by the
# registry when it loads (the registry lists regime_switch, so this module cannot import it back).
_BUILD: list[Callable[[str, Mapping[str, Any]], Strategy]] = []


def use_builder(build: Callable[[str, Mapping[str, Any]], Strategy]) -> None:
    _BUILD[:] = [build]


class RegimeConfig(StrictNumbers):
    """The classifier's parameters (module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    adx_period: int = Field(14, ge=2, le=200)
    adx_trend: float = Field(25.0, gt=0, lt=100, description="ADX at or above this is a trend")
    atr_period: int = Field(14, ge=2, le=200)
    vol_window: int = Field(200, ge=10, le=5000, description="ATR/close values the percentile is taken among")
    high_vol_pct: float = Field(90.0, gt=0, le=100, description="percentile at or above which it is high volatility")

    @property
    def warmup(self) -> int:
        return max(2 * self.adx_period + 1, self.atr_period + self.vol_window)


def _adx_di(h: FloatArray, lo: FloatArray, c: FloatArray, n: int) -> tuple[float, float, float]:
    """(ADX, +DI, -DI) at the last candle, Wilder's smoothing seeded at the start of the series."""
    up, down = np.diff(h), -np.diff(lo)
    plus = np.where((up > down) & (up > 0), up, 0.0)
    minus = np.where((down > up) & (down > 0), down, 0.0)
    tr = true_range(h, lo, c)[1:]
    a = 1.0 / n
    s_tr, s_p, s_m = _smoothed(tr, n, a), _smoothed(plus, n, a), _smoothed(minus, n, a)
    with np.errstate(invalid="ignore", divide="ignore"):
        pdi, mdi = 100.0 * s_p / s_tr, 100.0 * s_m / s_tr
        dx = 100.0 * np.abs(pdi - mdi) / (pdi + mdi)
    dx = np.nan_to_num(dx[n - 1:], nan=0.0)  # 0/0 (a flat stretch): no direction
    adx = _smoothed(dx, n, a)
    return float(adx[-1]), float(np.nan_to_num(pdi[-1])), float(np.nan_to_num(mdi[-1]))


def classify(candles: Sequence[Candle], cfg: RegimeConfig) -> str | None:
    """The regime at the last of ``candles`` (module docstring); None before ``cfg.warmup`` candles."""
    if len(candles) < cfg.warmup:
        return None
    w = tail(candles, cfg.warmup)
    h = np.fromiter((x.high for x in w), np.float64, len(w))
    lo = np.fromiter((x.low for x in w), np.float64, len(w))
    c = np.fromiter((x.close for x in w), np.float64, len(w))
    vol = (atr(h, lo, c, cfg.atr_period) / c)[-cfg.vol_window:]
    vol = vol[~np.isnan(vol)]
    if len(vol) and 100.0 * float(np.mean(vol <= vol[-1])) >= cfg.high_vol_pct:
        return "high_volatility"
    adx, pdi, mdi = _adx_di(h, lo, c, cfg.adx_period)
    if adx >= cfg.adx_trend:
        return "trending_up" if pdi > mdi else "trending_down"
    return "ranging"


class _Choice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: str
    params: dict[str, Any] = Field(default_factory=dict)


class RegimeSwitchParams(StrictNumbers):
    """``regime_switch``: the classifier and the strategy per regime."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    regime: RegimeConfig = Field(default_factory=RegimeConfig)
    # default: the example, momentum in trends and RSI reversion in ranges (none in high volatility)
    strategies: dict[str, _Choice] = Field(
        default_factory=lambda: {"trending_up": _Choice(strategy="momentum"),
                                 "trending_down": _Choice(strategy="momentum"),
                                 "ranging": _Choice(strategy="rsi_reversion")},
        description="regime -> {strategy, params}")
    default: _Choice | None = Field(None, description="the strategy for regimes not in 'strategies' (none: no "
                                                      "signal there)")

    @model_validator(mode="after")
    def _check(self) -> "RegimeSwitchParams":
        build_strategy = _BUILD[0]
        bad = sorted(set(self.strategies) - set(REGIMES))
        if bad:
            raise ValueError(f"strategies: unknown regime {bad[0]!r}; regimes: {', '.join(REGIMES)}")
        for where, choice in [*((f"strategies.{k}", v) for k, v in self.strategies.items()), ("default", self.default)]:
            if choice is None:
                continue
            if choice.strategy == "regime_switch":
                raise ValueError(f"{where}: regime_switch cannot nest itself")
            try:
                build_strategy(choice.strategy, choice.params)
            except ValidationError as exc:
                raise ValueError(format_errors(exc, f"{where}.params")) from None
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
        if not self.strategies and self.default is None:
            raise ValueError("strategies: map at least one regime (or set default)")
        return self


class RegimeSwitchStrategy:
    """The strategy mapped to the current regime, its signal labelled with the regime (module docstring)."""

    name = "regime_switch"

    def __init__(self, params: RegimeSwitchParams) -> None:
        build_strategy = _BUILD[0]
        self.params = params
        self.by_regime: dict[str, Strategy] = {
            r: build_strategy(c.strategy, c.params) for r, c in params.strategies.items()}
        self.default = build_strategy(params.default.strategy, params.default.params) if params.default else None
        subs = [*self.by_regime.values(), *([self.default] if self.default else [])]
        self.warmup = max([params.regime.warmup, *(s.warmup for s in subs)])
        self.lookback = max([params.regime.warmup, *(history_needed(s) for s in subs)])

    def evaluate(self, candles: Sequence[Candle]) -> Signal:
        regime = classify(candles, self.params.regime)
        if regime is None:
            return Signal.none(f"warming up: {len(candles)}/{self.params.regime.warmup} candles")
        strat = self.by_regime.get(regime, self.default)
        if strat is None:
            return dataclasses.replace(Signal.none(f"[{regime}] no strategy for this regime"), regime=regime)
        sig = strat.evaluate(candles)
        return dataclasses.replace(sig, reason=f"[{regime}] {strat.name}: {sig.reason}", regime=regime)
