"""Name -> (params model, factory) registry of the built-in strategies.

Config files, the UI and the CLI refer to strategies by name; ``build_strategy`` validates
the parameters with the strategy's pydantic model (unknown keys rejected) and returns a ready
``Strategy``. Add a built-in by adding one entry to ``STRATEGIES``; users add theirs as files of a
folder (``strategy.plugins``), registered here by ``register_user_strategies`` when the config loads.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar, cast

from pydantic import BaseModel, ValidationError

from core.validation import format_errors
from strategy.base import Strategy
from strategy.crossover import CrossoverStrategy, EmaCrossoverParams, SmaCrossoverParams
from strategy.ml_classifier import MlClassifierParams, MlClassifierStrategy
from strategy.momentum import MomentumParams, MomentumStrategy
from strategy.momentum_atr import MomentumAtrParams, MomentumAtrStrategy
from strategy.plugins import (
    PluginReport,
    UserStrategy,
    folder_state,
    instance_problem,
    load_folder,
    no_exit_levels,
)
from strategy.regime import RegimeSwitchParams, RegimeSwitchStrategy, use_builder
from strategy.rsi_reversion import RsiReversionParams, RsiReversionStrategy
from strategy.webhook import WebhookParams, WebhookStrategy

__all__ = ["STRATEGIES", "build_strategy", "origin", "params_model", "params_note", "register_user_strategies", "strategy_names",
           "user_report"]
log = logging.getLogger(__name__)

P = TypeVar("P", bound=BaseModel)


def _factory(ctor: Callable[[P], Strategy]) -> Callable[[BaseModel], Strategy]:
    # the registry stores factories under the common BaseModel signature; build_strategy
    # guarantees each receives an instance of its own params model
    return cast(Callable[[BaseModel], Strategy], ctor)


STRATEGIES: dict[str, tuple[type[BaseModel], Callable[[BaseModel], Strategy]]] = {
    "sma_crossover": (SmaCrossoverParams, _factory(CrossoverStrategy)),
    "ema_crossover": (EmaCrossoverParams, _factory(CrossoverStrategy)),
    "momentum": (MomentumParams, _factory(MomentumStrategy)),
    "momentum_atr": (MomentumAtrParams, _factory(MomentumAtrStrategy)),  # the seeds' ATR-risk template
    "rsi_reversion": (RsiReversionParams, _factory(RsiReversionStrategy)),
    # reads its model file once when built (strategy/ml_classifier.py says why there)
    "ml_classifier": (MlClassifierParams, _factory(MlClassifierStrategy)),
    "webhook": (WebhookParams, _factory(WebhookStrategy)),
    # another strategy per market regime (strategy/regime.py); it builds the others through this registry
    "regime_switch": (RegimeSwitchParams, _factory(RegimeSwitchStrategy)),  # signals from POST /webhook/{bot} (api/)
}


BUILT_IN = frozenset(STRATEGIES)
_USER: dict[str, UserStrategy] = {}
_REPORT: PluginReport | None = None
_SEEN: tuple[str, tuple[tuple[str, int, int], ...]] | None = None  # folder_state of the last load


def _user_factory(spec: UserStrategy) -> Callable[[BaseModel], Strategy]:
    def build(params: BaseModel) -> Strategy:
        instance = spec.cls(params)
        problem = instance_problem(instance)
        if problem:
            raise ValueError(f"strategy {spec.name} ({spec.origin}): {problem}")
        if callable(getattr(instance, "signals", None)):
            if not hasattr(instance, "vectorised"):
                instance.vectorised = True
            if not callable(getattr(instance, "exit_levels", None)):
                instance.exit_levels = no_exit_levels
        return cast(Strategy, instance)
    return build


def register_user_strategies(folder: str | Path) -> PluginReport:
    """Load the user strategies of ``folder`` (``strategy.plugins``) and register them by name, replacing
    those of an earlier call. Files that fail are skipped; their errors are logged and in the report."""
    global _REPORT, _SEEN
    seen = folder_state(folder)
    if _REPORT is not None and seen == _SEEN:
        return _REPORT  # the same files as last time (the dashboard loads the config on every rerun)
    _SEEN = seen
    for name in list(_USER):
        STRATEGIES.pop(name, None)
    _USER.clear()
    report = load_folder(folder, set(BUILT_IN))
    for spec in report.strategies:
        _USER[spec.name] = spec
        STRATEGIES[spec.name] = (spec.params, _user_factory(spec))
    for err in report.errors:
        log.error("user strategy skipped: %s", err)
    _REPORT = report
    return report


def user_report() -> PluginReport | None:
    """What the last ``register_user_strategies`` found (None before any)."""
    return _REPORT


def origin(name: str) -> str:
    """Where strategy ``name`` is defined: ``file:line`` for a user strategy, "built-in" otherwise."""
    spec = _USER.get(name)
    return spec.origin if spec is not None else "built-in"


def params_note(name: str) -> str:
    """For a params error: where the user strategy's Params model is (`` (Params at file:line)``), else ""."""
    spec = _USER.get(name)
    return f" (strategy {name}: Params at {spec.params_origin})" if spec is not None else ""


def strategy_names() -> list[str]:
    """Registered strategy names, sorted."""
    return sorted(STRATEGIES)


def _entry(name: str) -> tuple[type[BaseModel], Callable[[BaseModel], Strategy]]:
    try:
        return STRATEGIES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown strategy {name!r}; known strategies: {', '.join(strategy_names())}"
        ) from None


def params_model(name: str) -> type[BaseModel]:
    """The pydantic params model of strategy ``name`` (ValueError if unknown). Useful for
    UI forms (``model_json_schema()``) and defaults (``model()``)."""
    return _entry(name)[0]


def build_strategy(name: str, params: Mapping[str, Any] | BaseModel | None = None) -> Strategy:
    """Validate ``params`` for strategy ``name`` and build it.

    Raises ValueError for an unknown name (listing the known ones) and
    pydantic.ValidationError (a ValueError subclass) for invalid or unknown parameters;
    the error names the offending field. ``None`` means all defaults. A params model
    instance is re-validated through a dict, so a CrossoverParams(kind="ema") cannot be
    smuggled into "sma_crossover".
    """
    model, factory = _entry(name)
    if isinstance(params, BaseModel):
        params = params.model_dump()
    try:
        validated = model.model_validate(dict(params or {}))
    except ValidationError as exc:
        if name not in _USER:
            raise
        raise ValueError(f"{format_errors(exc, 'params')}{params_note(name)}") from None
    return factory(validated)


use_builder(build_strategy)  # regime_switch builds the strategies it maps to through this registry
