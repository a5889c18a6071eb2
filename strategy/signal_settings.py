"""A signal bot's signal policy: the ``signals:`` section of its config (``engine.signal_policy`` applies it,
in the worker and in backtests alike; docs/strategies.md has the rules with examples).

* ``confirm_candles``: a signal acts only once it has held for this many consecutive evaluations (the
  strategy's ``Signal.bias`` says which side it still favours on candles without a fresh signal); 1 is
  acting on every fresh signal at once.
* ``temperature``: a number in [0, 1] per acted signal that scales the entry's size in bands and tightens
  the position's stop as it cools.
"""
from __future__ import annotations

from pydantic import ConfigDict, Field, model_validator

from core.validation import StrictNumbers

__all__ = ["SignalPolicyConfig", "TemperatureConfig"]


class TemperatureConfig(StrictNumbers):
    """How hot a signal is: T = (w_c * confidence + w_h * held + w_a * accuracy) / (w_c + w_h + w_a), where
    held = min(1, evaluations the signal has held / hold_full) and accuracy = the share of winners among the
    bot's last ``accuracy_trades`` closed trades (0.5 before any)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    confidence_weight: float = Field(0.5, ge=0, le=1)
    held_weight: float = Field(0.2, ge=0, le=1)
    accuracy_weight: float = Field(0.3, ge=0, le=1)
    hold_full: int = Field(5, ge=1, le=1000, description="evaluations held for the full 'held' score")
    accuracy_trades: int = Field(10, ge=1, le=1000, description="recent closed trades the accuracy is taken on")
    size_bands: list[tuple[float, float]] = Field(
        default_factory=lambda: [(0.8, 100.0), (0.5, 70.0), (0.0, 30.0)],
        description="[min temperature, % of the sized entry], hottest first; the first band the temperature "
                    "reaches applies")
    stop_floor: float | None = Field(0.5, gt=0, le=1, description="the stop distance at temperature 0, as a "
                                     "fraction of the entry's; it shrinks linearly as the temperature falls "
                                     "(never widens). null: stops are not tightened")
    regime_factor: dict[str, float] = Field(default_factory=lambda: {"high_volatility": 0.7},
                                            description="the temperature is multiplied by this in a regime "
                                                        "(signals of a regime_switch strategy)")

    @model_validator(mode="after")
    def _check(self) -> "TemperatureConfig":
        if self.confidence_weight + self.held_weight + self.accuracy_weight <= 0:
            raise ValueError("confidence_weight, held_weight and accuracy_weight must not all be 0")
        mins = [b[0] for b in self.size_bands]
        if not self.size_bands or mins != sorted(mins, reverse=True) or len(set(mins)) != len(mins):
            raise ValueError("size_bands: list [min temperature, percent] pairs, hottest first, each minimum once")
        if mins[-1] != 0.0:
            raise ValueError("size_bands: the last band must start at 0 (every temperature needs a band)")
        for t, pct in self.size_bands:
            if not 0 <= t <= 1 or not 0 < pct <= 100:
                raise ValueError(f"size_bands: [{t}, {pct}]: temperature in [0, 1], percent in (0, 100]")
        _check_regimes("regime_factor", self.regime_factor, 1.0)
        return self


class SignalPolicyConfig(StrictNumbers):
    """The ``signals:`` section of a signal bot (module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    confirm_candles: int = Field(1, ge=1, le=500, description="consecutive evaluations a signal must hold "
                                                             "before it acts (1: at once)")
    temperature: TemperatureConfig | None = None
    regime_size: dict[str, float] = Field(default_factory=dict, description="regime -> % of the sized entry "
                                          "(signals of a regime_switch strategy), e.g. {high_volatility: 50}")

    @model_validator(mode="after")
    def _check(self) -> "SignalPolicyConfig":
        _check_regimes("regime_size", {k: v / 100.0 for k, v in self.regime_size.items()}, 1.0)
        return self

    @property
    def plain(self) -> bool:
        """True when the policy changes nothing (every fresh signal acts at once, unscaled)."""
        return self.confirm_candles == 1 and self.temperature is None and not self.regime_size


def _check_regimes(key: str, values: dict[str, float], most: float) -> None:
    from strategy.regime import REGIMES

    for k, v in values.items():
        if k not in REGIMES:
            raise ValueError(f"{key}: unknown regime {k!r}; regimes: {', '.join(REGIMES)}")
        if not 0 < v <= most:
            raise ValueError(f"{key}.{k}: must be in (0, {most * (100 if key == 'regime_size' else 1):g}]")
