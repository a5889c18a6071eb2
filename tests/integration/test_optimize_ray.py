"""Trials on a real local Ray instance (2 CPUs) give the same study as 2 local processes for the same seed.

Ray's start and stop cost ~6 s on a 2-core box: one small study (6,000 candles, 8 trials) keeps this test
short enough for ``make test``."""
from __future__ import annotations

import sys

import optuna
import pytest

from support import ROOT

sys.path.insert(0, str(ROOT / "tests" / "unit"))
from bench_support import candles  # noqa: E402

from backtest.fills import FillModel  # noqa: E402
from backtest.optimize import _sampler, run_trials  # noqa: E402
from backtest.search_space import feasible, parse_space  # noqa: E402
from backtest.trials import LocalPool, RayPool, RunContext  # noqa: E402
from settings import AppConfig  # noqa: E402
from strategy.crossover import SmaCrossoverParams  # noqa: E402

ray = pytest.importorskip("ray")


def _study(pool, dims) -> list[tuple]:
    study = optuna.create_study(direction="maximize", sampler=_sampler(11))
    run_trials(study, dims, lambda p: feasible(SmaCrossoverParams, {}, p), pool, 8, "sharpe", 1)
    return [(t.number, t.params, t.value, t.state.name, t.user_attrs.get("metrics")) for t in study.trials]


@pytest.mark.timeout(180)
def test_ray_equals_local_processes(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    app = AppConfig(market={"symbols": ["BTCUSDT"]}, paper={"starting_balance": 10_000, "fee_pct": 0.1},
                    bots=[{"name": "sma", "mode": "paper", "symbol": "BTCUSDT", "strategy": "sma_crossover",
                           "params": {"fast": 10, "slow": 30}, "sizing": {"kind": "percent_equity", "value": 90},
                           "risk": {"max_position_pct": 100, "max_loss_per_trade_pct": None}}])
    ctx = RunContext(app, {"BTCUSDT": candles(6000)}, FillModel(), "sma")
    dims = parse_space(["fast=3:20", "slow=5:40"], SmaCrossoverParams)
    with LocalPool(ctx, 2) as pool:
        local = _study(pool, dims)
    with RayPool(ctx, 2) as pool:
        assert pool.jobs == 2 and pool.name == "Ray (2 CPUs)"
        on_ray = _study(pool, dims)
    assert not ray.is_initialized()
    assert local == on_ray
    assert sum(1 for t in local if t[3] == "COMPLETE") >= 4
