"""``ml_classifier``: trade a trained classifier's probability that the next ``horizon`` candles gain more
than the round-trip fees (models trained by ``bot_manager.py ml train``, ``backtest.ml``).

    p >= threshold       -> BUY,  confidence = (p - threshold) / (1 - threshold)
    p <= 1 - threshold   -> SELL, confidence = ((1 - threshold) - p) / (1 - threshold)
    otherwise            -> NONE

SELL closes a long (and opens a short where the bot may short). With ``sizing.scale_by_confidence``
the confidence sizes the entry. Backtests run it on the bar path (``evaluate`` per candle).
Features: ``strategy.ml_features`` (the training pipeline's own definition).

Loading is the one piece of I/O here, done once when the strategy is built, never per candle:
``set_model_loader`` injects a loader (``(name, version) -> Predictor``); without one,
``read_model`` reads ``<models dir>/<name>/v<N>/`` (``model.txt``: LightGBM's text format, no
pickle, so a model file cannot run code; ``meta.json``: its features and metrics), the models dir
being ``BOT_MODELS_DIR`` or ``var/models``. The read sits here because every process that builds
bots (worker, backtest child, optimiser workers, Ray tasks) builds strategies through
``strategy.registry`` and must find the model the same way; nothing on the candle path touches
a file. A missing or corrupt model does not raise: the strategy is built *unavailable*
(``unavailable`` holds the error naming the file, logged once), signals nothing and says why in
every signal's reason, so the worker keeps running and the bot never trades; the CLIs refuse
such a bot with exit 2.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pydantic import Field

from core.types import Candle, Side, Signal
from strategy.base import SIDE_BUY, SIDE_SELL, ExitParams, exit_prices, tail
from strategy.indicators import FloatArray
from strategy.ml_features import FEATURES, LOOKBACK, feature_matrix

__all__ = ["MODEL_FILE", "META_FILE", "MlClassifierParams", "MlClassifierStrategy", "ModelUnavailable", "Predictor",
           "models_dir", "read_model", "set_model_loader"]

log = logging.getLogger(__name__)
MODEL_FILE, META_FILE = "model.txt", "meta.json"
ROOT = Path(__file__).resolve().parents[1]


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


def models_dir() -> Path:
    return Path(os.environ.get("BOT_MODELS_DIR") or ROOT / "var" / "models")


class _Booster:
    """A LightGBM booster read from a model directory."""

    def __init__(self, source: str, version: int, booster: Any, meta: dict[str, Any]) -> None:
        self.source, self.version, self.booster, self.meta = source, version, booster, meta
        self.features = list(meta["features"])

    def predict(self, x: FloatArray) -> FloatArray:
        return np.asarray(self.booster.predict(x, num_threads=1), dtype=np.float64)


def latest_version(folder: Path) -> int | None:
    found = [int(p.name[1:]) for p in folder.glob("v*") if p.is_dir() and p.name[1:].isdigit()]
    return max(found) if found else None


_CACHE: dict[tuple[str, int, int], _Booster] = {}
_LOCK = threading.Lock()


def read_model(name: str, version: int | None = None, root: Path | None = None) -> _Booster:
    """Read model ``name`` (``version``, or the latest) from the models dir; ModelUnavailable naming the
    file otherwise. Read once per file version (cached on path, size and mtime)."""
    folder = (root or models_dir()) / name
    v = version if version is not None else latest_version(folder)
    if v is None:
        raise ModelUnavailable(f"model {name!r}: no versions in {folder} (train one: bot_manager.py ml train)")
    vdir = folder / f"v{v}"
    model_path, meta_path = vdir / MODEL_FILE, vdir / META_FILE
    for p in (meta_path, model_path):
        if not p.is_file():
            raise ModelUnavailable(f"model {name!r} v{v}: missing file {p}")
    st = model_path.stat()
    key = (str(model_path), st.st_size, st.st_mtime_ns)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        feats = meta["features"]
        if not isinstance(feats, list) or not feats:
            raise ValueError("'features' must be a non-empty list")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelUnavailable(f"model {name!r} v{v}: corrupt metadata file {meta_path}: {exc}") from None
    unknown = [f for f in feats if f not in FEATURES]
    if unknown:
        raise ModelUnavailable(f"model {name!r} v{v}: {meta_path} names features this version does not compute: "
                               f"{', '.join(unknown)}")
    try:
        import lightgbm as lgb

        text = model_path.read_text(encoding="utf-8")
        booster = lgb.Booster(model_str=text)
        if booster.num_feature() != len(feats):
            raise ValueError(f"{booster.num_feature()} features in the model, {len(feats)} in {META_FILE}")
    except Exception as exc:  # noqa: BLE001 - LightGBM raises its own error types on a bad file
        raise ModelUnavailable(f"model {name!r} v{v}: corrupt model file {model_path}: "
                               f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    out = _Booster(str(vdir), v, booster, meta)
    with _LOCK:
        _CACHE[key] = out
    return out


ModelLoader = Callable[[str, "int | None"], Predictor]
_loader: ModelLoader | None = None


def set_model_loader(loader: ModelLoader | None) -> None:
    """Inject where models come from (None: back to ``read_model``)."""
    global _loader
    _loader = loader


class MlClassifierStrategy:
    """A classifier's probability, thresholded; see the module docstring."""

    name = "ml_classifier"

    def __init__(self, params: MlClassifierParams) -> None:
        self.params = params
        self.warmup = LOOKBACK
        self.lookback = LOOKBACK
        self.unavailable: str | None = None
        self.model: Predictor | None = None
        try:
            self.model = (_loader or read_model)(params.model, params.version)
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

