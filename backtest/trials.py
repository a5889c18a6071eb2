"""Where hyperopt trials run: one trial is one ``backtest.engine.run_config`` of the bot with its params
overridden (the same engine, fill model and report as ``backtest`` and ``backtest sweep``), on the
whole data or on a time window of it (walk-forward).

Executors, each mapping a batch of trials to their metrics in order:

* ``LocalPool``: ``jobs`` local processes (fork where available, so the candles are inherited,
  not pickled per trial, as ``backtest.sweep`` does); ``jobs=1`` runs in this process.
* ``RayPool``: tasks on a Ray cluster (``RAY_ADDRESS``, or a local instance started here). The
  run context (config, candles, fill model) is ``ray.put`` once: each node's object store pulls
  it once and every task on that node reads it from there (numpy arrays zero-copy).

A trial that raises is reported with its error (one bad trial must not end the study).
"""
from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from backtest.data import SymbolData
from backtest.engine import run_config
from backtest.fills import FillModel
from backtest.report import build_report
from backtest.sweep import _flat as flat_metrics  # the sweep's table of metrics: one definition
from settings import AppConfig

Window = tuple[int | None, int | None]  # [start_ms, end_ms) of the candles a trial runs on


@dataclass(slots=True)
class RunContext:
    """What every trial of a study shares."""

    app: AppConfig
    data: dict[str, SymbolData]
    model: FillModel
    bot: str


@dataclass(slots=True)
class TrialTask:
    number: int
    params: dict[str, Any]
    window: Window = (None, None)


@dataclass(slots=True)
class TrialOutcome:
    number: int
    params: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    seconds: float = 0.0


def window_data(data: dict[str, SymbolData], window: Window) -> dict[str, SymbolData]:
    if window == (None, None):
        return data
    return {s: d.between(*window) for s, d in data.items()}


def run_trial(ctx: RunContext, task: TrialTask) -> TrialOutcome:
    """One backtest of ``ctx.bot`` with ``task.params`` over ``task.window`` of the data."""
    t = time.perf_counter()
    try:
        res = run_config(ctx.app, window_data(ctx.data, task.window), ctx.model, [ctx.bot],
                         params_override=task.params)[0]
        metrics = flat_metrics(build_report(res, include_trades=False))
    except Exception as exc:  # noqa: BLE001 - reported on the trial, the study goes on
        return TrialOutcome(task.number, task.params, error=f"{type(exc).__name__}: {exc}",
                            seconds=time.perf_counter() - t)
    return TrialOutcome(task.number, task.params, metrics, seconds=time.perf_counter() - t)


_CTX: dict[str, RunContext] = {}  # set before forking; read by the pool's processes


def _pool_trial(task: TrialTask) -> TrialOutcome:
    return run_trial(_CTX["ctx"], task)


class LocalPool:
    """``jobs`` local processes (fork: the context is inherited once), or this process for jobs=1."""

    def __init__(self, ctx: RunContext, jobs: int) -> None:
        self.ctx = ctx
        self.jobs = max(1, jobs)
        self._pool = None
        if self.jobs > 1:
            _CTX["ctx"] = ctx
            method = "fork" if "fork" in mp.get_all_start_methods() else None
            self._pool = mp.get_context(method).Pool(self.jobs)

    @property
    def name(self) -> str:
        return f"{self.jobs} local process{'es' if self.jobs > 1 else ''}"

    def map(self, tasks: Sequence[TrialTask]) -> list[TrialOutcome]:
        if self._pool is None or len(tasks) <= 1:
            return [run_trial(self.ctx, t) for t in tasks]
        return self._pool.map(_pool_trial, tasks, chunksize=1)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None
        _CTX.pop("ctx", None)

    def __enter__(self) -> "LocalPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ray_trial(ctx: RunContext, task: TrialTask) -> TrialOutcome:
    from backtest.ml.artifact import install_loader

    install_loader()  # a Ray worker is its own process: ml_classifier bots need the model reader
    return run_trial(ctx, task)


class RayPool:
    """Trials as Ray tasks. ``address``: a cluster (``RAY_ADDRESS`` or ``ray://...``); None starts a
    local instance with ``jobs`` CPUs (and stops it on close)."""

    def __init__(self, ctx: RunContext, jobs: int, address: str | None = None) -> None:
        import ray

        self._ray = ray
        self._own = not ray.is_initialized()
        if self._own:
            kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address:
                kw["address"] = address
            else:
                kw["num_cpus"] = max(1, jobs)
                # workers import this project: put it on their path (a cluster installs it on its nodes)
                root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
                kw["runtime_env"] = {"env_vars": {"PYTHONPATH": root}}
            ray.init(**kw)
        self.jobs = int(ray.cluster_resources().get("CPU", jobs))
        self._ctx_ref = ray.put(ctx)  # shipped once: each node's object store keeps one copy
        self._remote = ray.remote(num_cpus=1, max_retries=0)(_ray_trial)

    @property
    def name(self) -> str:
        return f"Ray ({self.jobs} CPUs)"

    def map(self, tasks: Sequence[TrialTask]) -> list[TrialOutcome]:
        refs = [self._remote.remote(self._ctx_ref, t) for t in tasks]
        return list(self._ray.get(refs))

    def close(self) -> None:
        if self._own and self._ray.is_initialized():
            self._ray.shutdown()

    def __enter__(self) -> "RayPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_pool(ctx: RunContext, jobs: int, use_ray: bool = False) -> LocalPool | RayPool:
    """Ray when asked (``use_ray``) or when ``RAY_ADDRESS`` is set; else local processes."""
    address = os.environ.get("RAY_ADDRESS") or None
    if use_ray or address:
        return RayPool(ctx, jobs, address)
    return LocalPool(ctx, jobs)
