#!/usr/bin/env python3
"""Benchmark: hyperopt trials per minute against the grid sweep over the same data, same bot, same cores.

One year of seeded 1-minute candles (525,600; ``bench/backtest_throughput.make_candles``), the
2-parameter SMA crossover bot of ``bench/backtest_throughput`` (all-in, 0.1 % fee, next-open
fills). Each figure is measured in this run:

* optimize, K=1 and K=2 processes: ``--trials`` Optuna TPE trials over fast=5:50, slow=20:200
  (``backtest.optimize.run_trials``, SQLite storage in a temporary folder, infeasible points pruned);
* reference: ``backtest sweep`` (``backtest.sweep.run_sweep``), the existing grid runner, over an
  even grid of the same space with about as many feasible points, with the same K;
* optionally (``--ray``) the optimiser on a local Ray instance with K CPUs.

Prints trials (points) per minute and the ratios optimize / sweep and K=2 / K=1, and the load average
(the 2-core machine may be shared: a loaded machine shows in K=2). Numbers, no asserts:

    .venv/bin/python bench/optimize_throughput.py [--bars 525600] [--trials 60] [--ray]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.backtest_throughput import MODEL, app_config, make_candles  # noqa: E402

from backtest.optimize import StudySpec, open_study, run_trials  # noqa: E402
from backtest.search_space import feasible, parse_space  # noqa: E402
from backtest.sweep import run_sweep  # noqa: E402
from backtest.trials import LocalPool, RayPool, RunContext, TrialTask, run_trial  # noqa: E402
from strategy.crossover import SmaCrossoverParams  # noqa: E402

SPACE = ["fast=5:50", "slow=20:200"]


def optimize_rate(ctx: RunContext, trials: int, jobs: int, folder: Path, ray: bool = False) -> tuple[float, int]:
    """(trials per minute, trials run) of one fresh study."""
    dims = parse_space(SPACE, SmaCrossoverParams)
    name = f"bench-{'ray' if ray else 'local'}-{jobs}"
    spec = StudySpec("bench-sma", "sma_crossover", [d.text() for d in dims], "sharpe", 1, "bench", repr(MODEL))
    study = open_study(name, spec, False, 42, folder / f"{name}.db")
    pool = RayPool(ctx, jobs) if ray else LocalPool(ctx, jobs)
    try:
        t = time.perf_counter()
        run_trials(study, dims, lambda p: feasible(SmaCrossoverParams, {}, p), pool, trials, "sharpe", 1)
        dt = time.perf_counter() - t
    finally:
        pool.close()
    return 60.0 * trials / dt, trials


def grid_over_space(points: int) -> dict[str, list[int]]:
    """An even grid over the same space (fast 5..50 x slow 20..200) with about ``points`` feasible points."""
    import numpy as np

    side = 2
    while True:
        fasts = sorted({int(round(x)) for x in np.linspace(5, 50, side)})
        slows = sorted({int(round(x)) for x in np.linspace(20, 200, side)})
        if sum(1 for f in fasts for s in slows if s > f) >= points or side > 100:
            return {"fast": fasts, "slow": slows}
        side += 1


def sweep_rate(ctx: RunContext, points: int, jobs: int) -> tuple[float, int]:
    t = time.perf_counter()
    rows = run_sweep(ctx.app, ctx.data, ctx.model, ctx.bot, grid_over_space(points), "sharpe", jobs)
    dt = time.perf_counter() - t
    run = sum(1 for r in rows if not r.error)
    return 60.0 * run / dt, run


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bars", type=int, default=525_600)
    p.add_argument("--trials", type=int, default=60)
    p.add_argument("--ray", action="store_true", help="also time the optimiser on a local Ray instance")
    args = p.parse_args()
    data = make_candles(args.bars)
    ctx = RunContext(app_config(), {"BTCUSDT": data}, MODEL, "bench-sma")
    run_trial(ctx, TrialTask(0, {"fast": 10, "slow": 30}))  # one-time costs (imports, caches) out of the timings
    print(f"{args.bars:,} seeded 1m candles, SMA crossover bot, space {' '.join(SPACE)}, {args.trials} trials")
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for jobs in (1, 2):
            rate, n = sweep_rate(ctx, args.trials, jobs)
            rates[f"sweep K={jobs}"] = rate
            print(f"  reference: grid sweep, K={jobs}: {n} points, {rate:,.1f} points/min")
            rate, n = optimize_rate(ctx, args.trials, jobs, Path(tmp))
            rates[f"optimize K={jobs}"] = rate
            print(f"  optimize (Optuna TPE), K={jobs}: {n} trials, {rate:,.1f} trials/min "
                  f"= {rate / rates[f'sweep K={jobs}']:.2f} x the sweep")
        if args.ray:
            rate, n = optimize_rate(ctx, args.trials, 2, Path(tmp), ray=True)
            rates["optimize Ray 2"] = rate
            print(f"  optimize on local Ray, 2 CPUs: {n} trials, {rate:,.1f} trials/min "
                  f"= {rate / rates['optimize K=2']:.2f} x K=2 local processes")
    print(f"  scaling K=2 / K=1: optimize {rates['optimize K=2'] / rates['optimize K=1']:.2f} x, "
          f"sweep {rates['sweep K=2'] / rates['sweep K=1']:.2f} x")
    print(f"  200 trials at K=2 would take {200 / rates['optimize K=2']:.1f} min")
    print(f"  load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
