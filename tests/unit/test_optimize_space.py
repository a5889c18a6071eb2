"""Search spaces are checked against the strategy's params model: types, bounds, cross-field rules."""
from __future__ import annotations

import pytest

from backtest.search_space import check_space, feasible, parse_space
from strategy.crossover import SmaCrossoverParams
from strategy.momentum import MomentumParams


def test_types_and_bounds_come_from_the_model():
    dims = parse_space(["fast=5:50", "slow=20:200:5", "stop_loss_pct=0.5:5:log"], SmaCrossoverParams)
    assert [(d.name, d.kind, d.low, d.high, d.step, d.log) for d in dims] == [
        ("fast", "int", 5, 50, 1.0, False), ("slow", "int", 20, 200, 5.0, False),
        ("stop_loss_pct", "float", 0.5, 5, None, True)]
    (d,) = parse_space(["threshold_pct=0.1:3"], MomentumParams)
    assert d.kind == "float"


@pytest.mark.parametrize("item, words", [
    ("fsat=5:50", ["fsat", "unknown parameter", "fast, slow"]),
    ("fast=50:5", ["fast", "inverted"]),
    ("fast=5:5", ["fast", "inverted or empty"]),
    ("fast=1:50", ["fast", "outside the params model's bounds", "fast must be >= 2"]),
    ("slow=20:6000", ["slow", "slow must be <= 5000"]),
    ("stop_loss_pct=0:5", ["stop_loss_pct", "stop_loss_pct must be > 0"]),
    ("stop_loss_pct=1:100", ["stop_loss_pct must be < 100"]),
    ("kind=1:2", ["kind", "not a numeric parameter"]),
    ("fast=5.5:9", ["fast", "integer"]),
    ("fast=5", ["expected name=low:high"]),
    ("fast=a:9", ["'a' is not a number"]),
])
def test_bad_ranges_are_refused_naming_field_and_rule(item, words):
    with pytest.raises(ValueError) as exc:
        parse_space([item], SmaCrossoverParams)
    for w in words:
        assert w in str(exc.value)


def test_cross_field_rule_is_the_models_own():
    assert feasible(SmaCrossoverParams, {}, {"fast": 10, "slow": 30}) is None
    assert "slow (10) must be greater than fast (30)" in feasible(SmaCrossoverParams, {}, {"fast": 30, "slow": 10})
    dims = parse_space(["fast=5:50", "slow=20:200"], SmaCrossoverParams)
    assert 0.5 < check_space(dims, SmaCrossoverParams, {}) < 1.0
    with pytest.raises(ValueError, match="rejects every point.*slow .* must be greater than fast"):
        check_space(parse_space(["fast=50:60", "slow=20:40"], SmaCrossoverParams), SmaCrossoverParams, {})
    # a fixed param of the bot makes the whole space infeasible
    with pytest.raises(ValueError, match="rejects every point"):
        check_space(parse_space(["fast=5:40"], SmaCrossoverParams), SmaCrossoverParams, {"slow": 4})
