"""``ml_classifier``: trade a trained classifier's probability that the next ``horizon`` candles gain more
than the round-trip fees (models trained by ``bot_manager.py ml train``, ``backtest.ml``).

    p >= threshold       -> BUY,  confidence = (p - threshold) / (1 - threshold)
    p <= 1 - threshold   -> SELL, confidence = ((1 - threshold) - p) / (1 - threshold)
    otherwise            -> NONE

SELL closes a long (and opens a short where the bot may short). With ``sizing.scale_by_confidence``
the confidence sizes the entry. Backtests run it on the bar path (``evaluate`` per candle).
Features: ``strategy.ml_features`` (the training pipeline's own definition).

The model comes from an injected loader (``(name, version) -> Predictor``), called once when the
strategy is built, never per candle: this package does no file I/O and imports no ML library.
The front ends that build bots install ``backtest.ml.artifact.read_model`` with
``set_model_loader`` (the worker, ``backtest``, the dashboard's backtest process, ``optimize``
and its Ray tasks, ``ml``). A missing or corrupt model, or no loader in the process, does not
raise: the strategy is built *unavailable* (``unavailable`` holds the error, naming the file,
logged once), signals nothing and says why in every signal's reason, so the worker keeps running
and the bot never trades; ``optimize`` and ``ml`` refuse such a bot with exit 2.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
from pydantic import Field

from core.types import Candle, Side, Signal
from strategy.base import SIDE_BUY, SIDE_SELL, ExitParams, exit_prices, tail
from strategy.indicators import FloatArray
from strategy.ml_features import FEATURES, LOOKBACK, feature_matrix

__all__ = ["MlClassifierParams", "MlClassifierStrategy", "ModelLoader", "ModelUnavailable", "Predictor", "model_loader",
           "set_model_loader"]

log = logging.getLogger(__name__)


class ModelUnavailable(ValueError):
    """A model that cannot be used; the message names the file and what is wrong with it."""


class Predictor(Protocol):
    source: str  # where it came from (a directory), for messages
    version: int
    features: list[str]
    meta: dict[str, Any]

    def predict(self, x: FloatArray) -> FloatArray:
        """P(label 1) per row of ``x`` (columns in ``features`` order)."""
        ...


class MlClassifierParams(ExitParams):
    model: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$",
                       description="model name (a folder of the models dir)")
    version: int | None = Field(default=None, ge=1, description="model version (None: the latest)")
    threshold: float = Field(default=0.6, gt=0.5, lt=1.0, description="BUY at p >= threshold, SELL at p <= 1 - it")


ModelLoader = Callable[[str, "int | None"], Predictor]
_loader: ModelLoader | None = None


def set_model_loader(loader: ModelLoader | None) -> None:
    """Inject where models come from, for every ml_classifier built in this process after it."""
    global _loader
    _loader = loader


def model_loader() -> ModelLoader | None:
    return _loader


def _no_loader(name: str, version: int | None) -> Predictor:
    raise ModelUnavailable(f"model {name!r}: no model loader in this process (its front end must call "
                           "backtest.ml.artifact.install_loader)")


class MlClassifierStrategy:
    """A classifier's probability, thresholded; see the module docstring."""

    name = "ml_classifier"

    def __init__(self, params: MlClassifierParams, loader: ModelLoader | None = None) -> None:
        self.params = params
        self.warmup = LOOKBACK
        self.lookback = LOOKBACK
        self.unavailable: str | None = None
        self.model: Predictor | None = None
        try:
            self.model = (loader or _loader or _no_loader)(params.model, params.version)
            self._cols = [FEATURES.index(f) for f in self.model.features]
        except ModelUnavailable as exc:
            self.unavailable = str(exc)
            log.error("ml_classifier refused: %s", exc)
        # The bar path only: the engine's vectorised signals() gets no candle times, which the
        # time-of-day features need (``signals_at`` is the whole-series form, equal to evaluate()).
        self.vectorised = False

    def __repr__(self) -> str:
        return f"MlClassifierStrategy({self.params!r})"

    def _sides(self, p: FloatArray) -> tuple[np.ndarray, FloatArray]:
        thr = self.params.threshold
        sides = np.zeros(len(p), dtype=np.int8)
        with np.errstate(invalid="ignore"):
            sides[p >= thr] = SIDE_BUY
            sides[p <= 1.0 - thr] = SIDE_SELL
            conf = np.where(sides == SIDE_BUY, (p - thr) / (1.0 - thr), ((1.0 - thr) - p) / (1.0 - thr))
        return sides, np.clip(np.nan_to_num(conf), 0.0, 1.0)

    def probabilities(self, x: FloatArray) -> FloatArray:
        """P(gain beyond fees) per feature row; NaN where a feature is undefined."""
        assert self.model is not None
        sel = x[:, self._cols]
        out = np.full(len(sel), np.nan)
        ok = ~np.isnan(sel).any(axis=1)
        if ok.any():
            out[ok] = self.model.predict(sel[ok])
        return out

    def evaluate(self, candles: Sequence[Candle]) -> Signal:
        if self.unavailable:
            return Signal.none(f"refused: {self.unavailable}")
        n = len(candles)
        if n < self.warmup:
            return Signal.none(f"warming up: {n}/{self.warmup} candles")
        t = tail(candles, self.lookback)
        cols = np.array([(c.open, c.high, c.low, c.close, c.volume) for c in t], dtype=np.float64)
        times = np.fromiter((c.open_time for c in t), dtype=np.int64, count=len(t))
        x = feature_matrix(cols[:, 0], cols[:, 1], cols[:, 2], cols[:, 3], cols[:, 4], times)[-1:]
        p = self.probabilities(x)
        sides, conf = self._sides(p)
        side = {SIDE_BUY: Side.BUY, SIDE_SELL: Side.SELL}.get(int(sides[0]), Side.NONE)
        if side is Side.NONE:
            return Signal.none(f"p={p[0]:.3f} inside ({1 - self.params.threshold:.2f}, {self.params.threshold:.2f})")
        stop, take = exit_prices(side, float(cols[-1, 3]), self.params.stop_loss_pct, self.params.take_profit_pct)
        return Signal(side=side, confidence=float(conf[0]), reason=f"model {self.params.model} "
                      f"v{self.model.version if self.model else '?'}: p={p[0]:.3f}", stop_loss=stop, take_profit=take)

    def signals_at(self, opens: FloatArray, highs: FloatArray, lows: FloatArray, closes: FloatArray,
                   volumes: FloatArray, times: np.ndarray) -> tuple[np.ndarray, FloatArray, FloatArray]:
        """(sides, confidence, probability) per candle, as evaluate() would give them."""
        n = len(closes)
        if self.unavailable or n == 0:
            return np.zeros(n, dtype=np.int8), np.zeros(n), np.full(n, np.nan)
        p = self.probabilities(feature_matrix(opens, highs, lows, closes, volumes, times))
        sides, conf = self._sides(p)
        sides[: self.warmup - 1] = 0
        return sides, conf, p

