"""Hyperopt of a configured bot's strategy parameters with Optuna (TPE), stored so a run can be resumed.

* Space: ``backtest.search_space`` (types and bounds from the strategy's params model).
* Sampling: ``optuna.samplers.TPESampler`` (multivariate, seeded, ``constant_liar`` so a batch of
  trials asked together spreads out). Trials are asked in batches of the executor's size, run in
  parallel (``backtest.trials``: local processes or Ray) and told back in trial order. Only this
  process talks to the study storage, so SQLite sees one writer, and the same seed and batch size
  give the same trials whatever runs them (local processes or Ray: tested).
* Infeasible points: a sampled point the params model rejects (``slow <= fast``) is told
  ``PRUNED`` with the model's message (``infeasible`` attribute) and never run. A run with fewer
  trades than ``min_trades``, or whose objective is undefined (no daily returns), is ``PRUNED``
  too, its metrics kept. TPE ranks pruned trials below every complete one.
* Storage: Optuna's RDB storage in one SQLite file per study, ``var/optimize/<study>.db``
  (``BOT_OPTIMIZE_DIR`` moves the folder). SQLite because the studies are local files the
  dashboard can open read-only, need no server, and this process is the only writer. ``resume``
  continues a stored study: trials left ``RUNNING`` by an interrupted run are marked ``FAIL``
  (not counted), and trials are asked until ``trials`` have finished (complete or pruned).
* Results: each trial's metrics are user attributes; at the end the study keeps the parameter
  importances (fANOVA) and the run's description, which the dashboard reads.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

from backtest.search_space import Dimension

if TYPE_CHECKING:  # the dashboard reads studies through this module without loading the engine
    from backtest.trials import LocalPool, RayPool, Window

ROOT = Path(__file__).resolve().parents[1]

# --objective -> the metric it maximises (backtest.sweep's metric names)
OBJECTIVES = {"sharpe": "sharpe", "sortino": "sortino", "calmar": "calmar", "profit": "total_return_pct",
              "expectancy": "expectancy"}


def optimize_dir() -> Path:
    return Path(os.environ.get("BOT_OPTIMIZE_DIR") or ROOT / "var" / "optimize")


def study_file(name: str) -> Path:
    return optimize_dir() / f"{name}.db"


def storage_url(path: Path, read_only: bool = False) -> str:
    if read_only:  # the dashboard: SQLite refuses every write on this connection
        return f"sqlite:///file:{path}?mode=ro&uri=true"
    return f"sqlite:///{path}"


def check_study_name(name: str) -> str:
    if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
        raise ValueError(f"--study {name!r}: use 1-64 letters, digits, '-', '_' or '.'")
    return name


@dataclass(slots=True)
class StudySpec:
    """What a study optimises; stored with it so a resume is checked against the same question."""

    bot: str
    strategy: str
    space: list[str]  # Dimension.text() of each dimension
    objective: str
    min_trades: int
    data: str  # a description of the candles (symbol, interval, range, bars, hash)
    fill_model: str
    window: list[int | None] = field(default_factory=lambda: [None, None])

    def differences(self, other: dict[str, Any]) -> list[str]:
        mine = asdict(self)
        return [f"{k}: stored {other.get(k)!r}, now {v!r}" for k, v in mine.items() if other.get(k) != v]


def data_fingerprint(data: dict[str, Any]) -> str:
    """symbol interval first..last bars sha256[:12] of every symbol's columns."""
    parts = []
    for sym, d in sorted(data.items()):
        h = hashlib.sha256()
        for col in (d.times, d.opens, d.highs, d.lows, d.closes, d.volumes):
            h.update(col.tobytes())
        parts.append(f"{sym} {d.interval} {int(d.times[0])}..{int(d.times[-1])} {len(d)} bars {h.hexdigest()[:12]}")
    return "; ".join(parts)


@dataclass(slots=True)
class StudyResult:
    name: str
    file: str
    finished: int  # complete + pruned
    complete: int
    pruned: int
    failed: int
    new_trials: int
    best: dict[str, Any] | None
    importance: dict[str, float]
    executor: str
    seconds: float


def _sampler(seed: int):  # type: ignore[no-untyped-def]
    import optuna

    return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)


def open_study(name: str, spec: StudySpec, resume: bool, seed: int, file: Path | None = None,
               create_missing: bool = False):  # type: ignore[no-untyped-def]
    """Create the study (refused if it exists and ``resume`` is off) or load it (refused if it does
    not exist, unless ``create_missing``, or asks another question). Nothing is written before the
    checks pass."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = file or study_file(name)
    exists = path.exists() and name in study_names(path)
    if exists and not resume:
        raise ValueError(f"study {name!r} already exists in {path}: add --resume to continue it, or pick "
                         "another --study")
    if resume and not exists and not create_missing:
        raise ValueError(f"--resume: no study {name!r} in {path}")
    if exists:
        storage = optuna.storages.RDBStorage(storage_url(path))
        study = optuna.load_study(study_name=name, storage=storage)
        diff = spec.differences(study.user_attrs.get("spec", {}))
        if diff:
            raise ValueError(f"--resume: study {name!r} was run with other settings: {'; '.join(diff)}")
        done = len(study.get_trials(deepcopy=False))
        study.sampler = _sampler(seed + done)  # a resumed run does not replay its first random points
        _fail_interrupted(study)
        return study
    path.parent.mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.RDBStorage(storage_url(path))
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize", sampler=_sampler(seed))
    study.set_user_attr("spec", asdict(spec))
    return study


def study_names(path: Path) -> list[str]:
    import sqlite3

    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return [r[0] for r in con.execute("SELECT study_name FROM studies")]
        finally:
            con.close()
    except sqlite3.Error:
        return []


def stored_spec(path: Path, name: str) -> dict[str, Any]:
    """The ``spec`` user attribute of study ``name`` in ``path`` (read-only)."""
    import sqlite3

    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT a.value_json FROM study_user_attributes a JOIN studies s ON a.study_id = s.study_id "
                          "WHERE s.study_name = ? AND a.key = 'spec'", (name,)).fetchone()
    finally:
        con.close()
    return json.loads(row[0]) if row else {}


def _fail_interrupted(study) -> None:  # type: ignore[no-untyped-def]
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        study._storage.set_trial_system_attr(t._trial_id, "interrupted", True)  # noqa: SLF001
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)  # noqa: SLF001


def _suggest(trial, dims: Sequence[Dimension]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    out: dict[str, Any] = {}
    for d in dims:
        if d.kind == "int":
            out[d.name] = trial.suggest_int(d.name, int(d.low), int(d.high), step=int(d.step or 1))
        else:
            out[d.name] = trial.suggest_float(d.name, d.low, d.high, step=d.step, log=d.log)
    return out


def objective_value(metrics: dict[str, Any], objective: str, min_trades: int) -> tuple[float | None, str]:
    """(value, why pruned): the objective's metric, or None with the reason the trial is pruned."""
    trades = int(metrics.get("trades") or 0)
    if trades < min_trades:
        return None, f"too few trades ({trades} < --min-trades {min_trades})"
    v = metrics.get(OBJECTIVES[objective])
    if v is None or not math.isfinite(float(v)):
        return None, f"{objective} undefined for this run"
    return float(v), ""


def finished_count(study) -> int:  # type: ignore[no-untyped-def]
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def run_trials(study, dims: Sequence[Dimension], feasible: Callable[[dict[str, Any]], str | None],
               pool: "LocalPool | RayPool", trials: int, objective: str, min_trades: int,
               window: "Window" = (None, None), progress: Callable[[int, int], None] | None = None
               ) -> int:  # type: ignore[no-untyped-def]
    """Ask/run/tell until ``trials`` trials of ``study`` have finished; returns how many were added."""
    from optuna.trial import TrialState

    from backtest.trials import TrialOutcome, TrialTask

    added = 0
    seen = {_key(t.params): t.user_attrs["metrics"] for t in study.get_trials(
        deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)) if "metrics" in t.user_attrs}
    while (done := finished_count(study)) < trials:
        batch, again = [], []
        for _ in range(min(pool.jobs, trials - done)):
            trial = study.ask()
            params = _suggest(trial, dims)
            why = feasible(params)
            if why is not None:
                trial.set_user_attr("infeasible", why)
                study.tell(trial, state=TrialState.PRUNED)
                added += 1
                continue
            task = TrialTask(trial.number, params, window)
            # TPE proposes a point it has tried before now and then: the backtest is deterministic,
            # so its stored result is reused instead of run again
            (again if _key(params) in seen or any(_key(t.params) == _key(params) for _, t in batch)
             else batch).append((trial, task))
        outcomes: list[TrialOutcome] = pool.map([t for _, t in batch]) if batch else []
        for (_, task), out in zip(batch, outcomes):
            if not out.error:
                seen[_key(task.params)] = out.metrics
        outcomes += [TrialOutcome(t.number, t.params, seen.get(_key(t.params), {}),
                                  "" if _key(t.params) in seen else "its twin failed") for _, t in again]
        for (trial, _), out in zip(batch + again, outcomes):
            trial.set_user_attr("metrics", out.metrics)
            trial.set_user_attr("seconds", round(out.seconds, 4))
            if out.error:
                trial.set_user_attr("error", out.error)
                study.tell(trial, state=TrialState.FAIL)
                continue
            value, why = objective_value(out.metrics, objective, min_trades)
            if value is None:
                trial.set_user_attr("pruned", why)
                study.tell(trial, state=TrialState.PRUNED)
            else:
                study.tell(trial, value)
            added += 1
        if progress:
            progress(finished_count(study), trials)
        if batch and all(o.error for o in outcomes) and finished_count(study) == 0:
            raise RuntimeError(f"every trial failed; first error: {outcomes[0].error}")
    return added


def _key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


def importance(study) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """fANOVA parameter importances (empty when there are too few complete trials to tell)."""
    import optuna
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 3 or len({t.value for t in complete}) < 2:
        return {}
    try:
        imp = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    except (RuntimeError, ValueError):
        return {}
    return {k: float(v) for k, v in imp.items()}


def best_of(study) -> dict[str, Any] | None:  # type: ignore[no-untyped-def]
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return None
    t = max(complete, key=lambda x: (x.value, -x.number))
    return {"number": t.number, "value": t.value, "params": t.params, "metrics": t.user_attrs.get("metrics", {})}


def summarize(study, new_trials: int, executor: str, seconds: float, file: Path) -> StudyResult:  # type: ignore[no-untyped-def]
    from optuna.trial import TrialState

    counts = {s: len(study.get_trials(deepcopy=False, states=(s,)))
              for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    imp = importance(study)
    study.set_user_attr("importance", imp)
    study.set_user_attr("last_run", {"executor": executor, "seconds": round(seconds, 3), "new_trials": new_trials})
    c, p, f = counts[TrialState.COMPLETE], counts[TrialState.PRUNED], counts[TrialState.FAIL]
    return StudyResult(study.study_name, str(file), c + p, c, p, f, new_trials, best_of(study), imp, executor, seconds)


def trials_table(study, limit: int = 10) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The best ``limit`` complete trials, best first: number, value, params and headline metrics."""
    from optuna.trial import TrialState

    rows = []
    for t in sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)),
                    key=lambda x: (-x.value, x.number))[:limit]:
        m = t.user_attrs.get("metrics") or {}
        rows.append({"trial": t.number, "value": t.value, **t.params, "trades": m.get("trades"),
                     "return %": m.get("total_return_pct"), "sharpe": m.get("sharpe"),
                     "max DD %": m.get("max_drawdown_pct")})
    return rows


def result_json(res: StudyResult) -> str:
    return json.dumps(asdict(res), allow_nan=False, default=str)
