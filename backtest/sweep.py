"""Parameter sweeps: a grid of strategy parameters, run across cores, ranked by a metric.

Each grid point is a full backtest of one configured bot (same engine, same fill model) with
its ``params`` overridden. Points that the strategy's parameter model rejects (e.g. slow <=
fast) are reported as skipped, not run. Work is spread with ``multiprocessing`` (fork where
available, so the loaded candles are shared, not pickled per task).
"""
from __future__ import annotations

import itertools
import multiprocessing as mp
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from backtest.data import SymbolData
from backtest.engine import find_bots, run_config
from backtest.fills import FillModel
from backtest.report import build_report
from settings import AppConfig
from strategy.registry import params_model

# Metrics where smaller is better (sorted ascending).
LOWER_IS_BETTER = {"max_drawdown_pct", "fees_paid"}

_SHARED: dict[str, Any] = {}  # set in the parent before forking, read by the workers


@dataclass(slots=True)
class SweepRow:
    params: dict[str, Any]
    metrics: dict[str, Any]
    error: str = ""


def grid(spec: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Cartesian product of parameter values: {"fast": [5, 10], "slow": [30]} -> 2 dicts."""
    keys = list(spec)
    return [dict(zip(keys, values)) for values in itertools.product(*(spec[k] for k in keys))]


def parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """['fast=5,10', 'slow=20:60:10'] -> {'fast': [5, 10], 'slow': [20, 30, 40, 50, 60]}."""
    out: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise ValueError(f"grid item {item!r}: expected name=v1,v2 or name=start:stop:step")
        if values.count(":") == 2:
            a, b, step = (_num(v) for v in values.split(":"))
            seq, x = [], a
            while x <= b + 1e-12:
                seq.append(x)
                x = x + step
            out[key.strip()] = seq
        else:
            out[key.strip()] = [_num(v) for v in values.split(",")]
    return out


def _num(text: str) -> Any:
    text = text.strip()
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _flat(rep: dict[str, Any]) -> dict[str, Any]:
    return {
        "total_return_pct": rep.get("total_return_pct"), "cagr_pct": rep.get("cagr_pct"),
        "sharpe": rep.get("sharpe"), "sortino": rep.get("sortino"), "calmar": rep.get("calmar"),
        "max_drawdown_pct": (rep.get("max_drawdown") or {}).get("max_drawdown_pct"),
        "trades": rep.get("trades"), "win_rate_pct": rep.get("win_rate_pct"),
        "profit_factor": rep.get("profit_factor"), "expectancy": rep.get("expectancy"),
        "exposure_time_pct": rep.get("exposure_time_pct"), "fees_paid": rep.get("fees_paid"),
    }


def _run_point(params: dict[str, Any]) -> SweepRow:
    app: AppConfig = _SHARED["app"]
    try:
        res = run_config(app, _SHARED["data"], _SHARED["model"], [_SHARED["bot"]], params_override=params)[0]
    except Exception as exc:  # one bad point must not end the sweep
        return SweepRow(params, {}, f"{type(exc).__name__}: {exc}")
    return SweepRow(params, _flat(build_report(res, include_trades=False)))


def run_sweep(app: AppConfig, data: dict[str, SymbolData], model: FillModel, bot: str,
              spec: Mapping[str, Sequence[Any]], sort_by: str = "sharpe", jobs: int | None = None) -> list[SweepRow]:
    """Run every valid grid point for ``bot``; rows sorted best first by ``sort_by``."""
    (cfg,) = find_bots(app, [bot])
    if cfg.kind == "dca" or cfg.strategy is None:
        raise ValueError(f"{bot} is a DCA bot: sweeps vary a strategy's params; DCA settings are not swept yet")
    model_cls = params_model(cfg.strategy)
    points, skipped = [], []
    for p in grid(spec):
        try:
            model_cls.model_validate({**cfg.params, **p})
            points.append(p)
        except ValidationError as exc:
            skipped.append(SweepRow(p, {}, "invalid: " + "; ".join(e["msg"] for e in exc.errors())))
    _SHARED.update(app=app, data=data, model=model, bot=bot)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(points) or 1))
    if jobs == 1 or len(points) <= 1:
        rows = [_run_point(p) for p in points]
    else:
        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
        with ctx.Pool(jobs) as pool:
            rows = pool.map(_run_point, points, chunksize=max(1, len(points) // (jobs * 4)))
    _SHARED.clear()
    sign = 1.0 if sort_by in LOWER_IS_BETTER else -1.0

    def key(row: SweepRow) -> tuple[int, float]:
        v = row.metrics.get(sort_by)
        return (1, 0.0) if v is None else (0, sign * float(v))

    return sorted(rows, key=key) + skipped


def table_text(rows: Sequence[SweepRow], sort_by: str, limit: int = 30) -> str:
    cols = ["total_return_pct", "sharpe", "sortino", "max_drawdown_pct", "trades", "win_rate_pct", "profit_factor"]
    head = f"{'params':40} " + " ".join(f"{c[:12]:>12}" for c in cols)
    lines = [f"sorted by {sort_by}", head]
    for row in rows[:limit]:
        p = ", ".join(f"{k}={v}" for k, v in row.params.items())
        if row.error:
            lines.append(f"{p:40} {row.error}")
            continue
        cells = []
        for c in cols:
            v = row.metrics.get(c)
            cells.append(f"{'n/a':>12}" if v is None else f"{v:12.2f}" if isinstance(v, float) else f"{v:>12}")
        lines.append(f"{p:40} " + " ".join(cells))
    return "\n".join(lines)
