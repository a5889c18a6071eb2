"""Name -> (params model, factory) registry of the built-in strategies.

Config files, the UI and the CLI refer to strategies by name; ``build_strategy`` validates
the parameters with the strategy's pydantic model (unknown keys rejected) and returns a ready
``Strategy``. Add a strategy by adding one entry to ``STRATEGIES``.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, TypeVar, cast

from pydantic import BaseModel

from strategy.base import Strategy
from strategy.crossover import CrossoverStrategy, EmaCrossoverParams, SmaCrossoverParams
from strategy.ml_classifier import MlClassifierParams, MlClassifierStrategy
from strategy.momentum import MomentumParams, MomentumStrategy
from strategy.rsi_reversion import RsiReversionParams, RsiReversionStrategy
from strategy.webhook import WebhookParams, WebhookStrategy

__all__ = ["STRATEGIES", "build_strategy", "params_model", "strategy_names"]

P = TypeVar("P", bound=BaseModel)


def _factory(ctor: Callable[[P], Strategy]) -> Callable[[BaseModel], Strategy]:
    # the registry stores factories under the common BaseModel signature; build_strategy
    # guarantees each receives an instance of its own params model
    return cast(Callable[[BaseModel], Strategy], ctor)


STRATEGIES: dict[str, tuple[type[BaseModel], Callable[[BaseModel], Strategy]]] = {
    "sma_crossover": (SmaCrossoverParams, _factory(CrossoverStrategy)),
    "ema_crossover": (EmaCrossoverParams, _factory(CrossoverStrategy)),
    "momentum": (MomentumParams, _factory(MomentumStrategy)),
    "rsi_reversion": (RsiReversionParams, _factory(RsiReversionStrategy)),
    # reads its model file once when built (strategy/ml_classifier.py says why there)
    "ml_classifier": (MlClassifierParams, _factory(MlClassifierStrategy)),
    "webhook": (WebhookParams, _factory(WebhookStrategy)),  # signals from POST /webhook/{bot} (api/)
}


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
    validated = model.model_validate(dict(params or {}))
    return factory(validated)
