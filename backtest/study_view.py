"""Stored hyperopt studies as plain data for the dashboard, read-only (SQLite opened ``mode=ro``: this
module can not write a study). One call per study gives what the Backtest tab draws: counts, the
best trials, the objective history with the running best, the parameter importances the run
stored, and the walk-forward report when there is one."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from backtest.optimize import optimize_dir, storage_url, study_names, trials_table


def list_studies(folder: Path | None = None) -> list[tuple[str, str]]:
    """(file, study name) of every study under the optimize folder, newest file first."""
    base = folder or optimize_dir()
    if not base.is_dir():
        return []
    files = sorted(base.glob("*.db"), key=lambda p: p.stat().st_mtime, reverse=True)
    return [(str(f), name) for f in files for name in study_names(f)]


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


def study_view(file: str, name: str, top: int = 10) -> dict[str, Any]:
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(storage_url(Path(file), read_only=True), skip_table_creation=True)
    study = optuna.load_study(study_name=name, storage=storage)
    trials = study.get_trials(deepcopy=False)
    history, best = [], None
    for t in sorted(trials, key=lambda x: x.number):
        value = _num(t.value) if t.state == TrialState.COMPLETE else None
        if value is not None:
            best = value if best is None else max(best, value)
        history.append({"trial": t.number, "state": t.state.name, "value": value, "best": best,
                        "note": t.user_attrs.get("infeasible") or t.user_attrs.get("pruned")
                        or t.user_attrs.get("error") or ""})
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    wf_file = Path(file).with_suffix(".walkforward.json")
    wf = None
    if name.rpartition("-w")[0] == Path(file).stem or name == Path(file).stem:
        try:
            wf = json.loads(wf_file.read_text(encoding="utf-8")) if wf_file.is_file() else None
        except (OSError, ValueError):
            wf = {"error": f"unreadable walk-forward report {wf_file}"}
    return {"name": name, "file": file, "spec": study.user_attrs.get("spec") or {}, "counts": counts,
            "best": trials_table(study, top), "history": history,
            "importance": study.user_attrs.get("importance") or {}, "last_run": study.user_attrs.get("last_run"),
            "walk_forward": wf}
